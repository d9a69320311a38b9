#!/bin/sh
# Fails when a C++ file differs from .clang-format. Fix with: scripts/check_format.sh --fix
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files 'adapter/*.h' 'adapter/*.cpp' 'tests/*.h' 'tests/*.cpp' 'bench/*.h' 'bench/*.cpp' 2>/dev/null)
if [ "${1:-}" = "--fix" ]; then
  clang-format -i $files
  exit 0
fi
clang-format --dry-run --Werror $files
echo "format: ok"
