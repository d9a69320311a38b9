#!/bin/sh
# Quick start, part 1: install what is missing, build adapterd, and run it on its embedded
# defaults (MLLP on 127.0.0.1:2575, store in ./var/adapterd.db, metrics on 127.0.0.1:9575).
# Extra arguments go to `adapterd serve`, e.g. scripts/run.sh --config config/adapterd.json
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh run
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DADAPTER_BUILD_TESTS=OFF -DADAPTER_BUILD_BENCH=OFF >/dev/null
cmake --build build/release --target adapterd -j "$(nproc)"
exec build/release/adapter/adapterd serve "$@"
