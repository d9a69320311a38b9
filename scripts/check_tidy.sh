#!/bin/sh
# Runs clang-tidy (profile in .clang-tidy) over the adapter sources, using a build directory's
# compile_commands.json. Any finding fails the run.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build/ci-gcc}
files=$(scripts/source_files.sh --cpp adapter)
# The build's compile commands are GCC's: a GCC-only flag (-Wno-restrict, CMakeLists.txt) is no
# finding of ours.
out=$(clang-tidy -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option $files 2>/dev/null ||
  true)
if echo "$out" | grep -qE '(warning|error):'; then
  echo "$out"
  echo "clang-tidy: findings above"
  exit 1
fi
echo "clang-tidy: ok"
