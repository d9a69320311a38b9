#!/bin/sh
# Installs what is missing on a Debian 12 machine (as root). Quick when everything is there.
#   scripts/deps.sh          what building and running adapterd needs
#   scripts/deps.sh fhir     plus node and npm, for the local FHIR server scripts/run.sh starts
#   scripts/deps.sh test     plus what the test suite needs (clients, clang, node)
set -eu
mode=${1:-run}

packages="build-essential cmake libboost1.81-dev rapidjson-dev catch2 libxml2-dev libssl-dev libsqlite3-dev libpq-dev"
# mllp_send (python3-hl7) and curl, to try the running daemon as the README shows.
packages="$packages python3-hl7 curl"
if [ "$mode" = fhir ]; then
  command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"
fi
if [ "$mode" = test ]; then
  # mllp_send and python3-hl7 are real MLLP clients; openssl makes test certificates; clang
  # builds the sanitizer and libFuzzer pass; clang-format/clang-tidy keep the code in shape.
  packages="$packages python3 openssl clang libclang-rt-14-dev clang-format clang-tidy"
  command -v npm >/dev/null 2>&1 || packages="$packages nodejs npm"
fi

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: run as root (or install these packages):$missing" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # libboost1.81-dev replaces Debian's default libboost-dev (1.74) if that is installed.
  apt-get install -y -q --no-install-recommends $missing
fi
