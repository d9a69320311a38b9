#!/bin/sh
# Prints the project's C++ files below the given folders, for the format and tidy checks:
#   scripts/source_files.sh [--cpp] FOLDER...     (--cpp: .cpp files only, no headers)
# In a clone, the files git tracks. Without git (an unpacked archive of the repository, a fresh
# machine that has no git yet), every such file below the folders, npm's node_modules aside.
set -eu
cd "$(dirname "$0")/.."
headers=yes
if [ "${1:-}" = "--cpp" ]; then
  headers=no
  shift
fi
if command -v git >/dev/null 2>&1 && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  for folder in "$@"; do
    if [ $headers = yes ]; then git ls-files "$folder/*.h"; fi
    git ls-files "$folder/*.cpp"
  done
else
  for folder in "$@"; do
    if [ $headers = yes ]; then
      find "$folder" -name node_modules -prune -o -type f -name '*.h' -print | LC_ALL=C sort
    fi
    find "$folder" -name node_modules -prune -o -type f -name '*.cpp' -print | LC_ALL=C sort
  done
fi
