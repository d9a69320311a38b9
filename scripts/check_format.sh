#!/bin/sh
# Fails when a C++ file differs from .clang-format. Fix with: scripts/check_format.sh --fix
set -eu
cd "$(dirname "$0")/.."
files=$(scripts/source_files.sh adapter tests bench)
if [ "${1:-}" = "--fix" ]; then
  clang-format -i $files
  exit 0
fi
clang-format --dry-run --Werror $files
echo "format: ok"
