#!/bin/sh
# Quick start, part 2: install what is missing, build, and pass the whole test suite.
#   1. format check (clang-format) and the layering rule
#   2. GCC build with warnings as errors: unit, integration (real clients) and fuzz-replay tests
#   3. clang build with AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer: the same
#      tests again, plus a short fuzzing run of each target
#   4. clang-tidy on the adapter sources (beside steps 2 and 3, at the lowest priority)
# Options: --quick skips steps 3 and 4.
set -eu
cd "$(dirname "$0")/.."
quick=no
[ "${1:-}" = "--quick" ] && quick=yes
jobs=$(nproc)
# Tests run two per core: about half of their time is spent waiting (servers starting, retries
# backing off, clients awaiting answers), so with one per core the cores sat half idle. Measured
# in clean CI runs on 2 cores: gcc tests 99 s with 4 at once and the long tests first (their CTest
# COST), 158 s with 2 at once in test-number order; sanitizer tests 138 s instead of 230 s.
test_jobs=$((jobs * 2))
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "dependencies"
scripts/deps.sh test
# The npm MLLP clients (and the Node 22 they run on) come pinned from package-lock.json.
npm ci --prefix tests/integration/node --no-audit --no-fund --loglevel=error
npm ci --prefix tests/fhir_server --no-audit --no-fund --loglevel=error

step "format and layering"
scripts/check_format.sh
tests/check_layering.sh adapter

step "gcc build (warnings are errors)"
# Line tables only (-g1): a failure's backtrace still names files and lines, and the Beast-heavy
# sources compile about a quarter faster than with full debug information.
cmake -S . -B build/ci-gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DADAPTER_WERROR=ON >/dev/null
cmake --build build/ci-gcc -j "$jobs"
if [ "$quick" = no ]; then
  # clang-tidy needs only this build's compile commands. It runs from here to the end beside
  # everything else, at the lowest priority, so that it takes only the CPU the tests leave idle
  # (about half of theirs: servers and clients waiting on each other), its output in a log; a
  # finding fails the run once the tests have ended. Measured: started with the sanitizer tests,
  # it still needed 120 s after them once they ran two per core.
  nice -n 19 scripts/check_tidy.sh build/ci-gcc >build/ci-tidy.log 2>&1 &
  tidy=$!
  trap 'kill "$tidy" 2>/dev/null || true' EXIT  # a failed step stops it too
fi
step "gcc tests"
(cd build/ci-gcc && ctest --output-on-failure -j "$test_jobs" --timeout 600)

if [ "$quick" = no ]; then
  step "clang build with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer"
  # -O1 with line tables, as sanitizer builds usually are: reports keep file:line, and the build
  # is a sixth faster than -O2 with full debug information.
  CC=clang CXX=clang++ cmake -S . -B build/ci-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DADAPTER_WERROR=ON \
    -DADAPTER_SANITIZE=address,undefined -DADAPTER_BUILD_FUZZERS=ON -DADAPTER_BUILD_BENCH=OFF >/dev/null
  cmake --build build/ci-asan -j "$jobs"

  step "sanitizer tests"
  sanitizer_tests=0
  (cd build/ci-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions="$PWD/../../tests/ubsan.supp" \
    ctest --output-on-failure -j "$test_jobs" --timeout 900) || sanitizer_tests=$?

  step "clang-tidy (finishing)"
  tidy_ok=0
  wait "$tidy" || tidy_ok=$?
  trap - EXIT
  cat build/ci-tidy.log
  [ "$sanitizer_tests" -eq 0 ] || { echo "sanitizer tests failed"; exit 1; }
  [ "$tidy_ok" -eq 0 ] || exit 1
fi
step "all tests passed"
