#!/bin/sh
# Runs clang-tidy (profile in .clang-tidy) over the adapter sources, using a build directory's
# compile_commands.json. Any finding fails the run.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build/ci-gcc}
files=$(scripts/source_files.sh --cpp adapter)
# The build's compile commands are GCC's: a GCC-only flag (-Wno-restrict, CMakeLists.txt) is no
# finding of ours.
# One clang-tidy per file, as many at once as there are cores (one run over every file used one
# core: four minutes of CI's twenty on two cores).
jobs=$(nproc)
out=$(printf '%s\n' $files | xargs -P "$jobs" -n 1 clang-tidy -p "$build" --quiet \
  --extra-arg=-Wno-unknown-warning-option 2>/dev/null || true)
if echo "$out" | grep -qE '(warning|error):'; then
  echo "$out"
  echo "clang-tidy: findings above"
  exit 1
fi
echo "clang-tidy: ok"
