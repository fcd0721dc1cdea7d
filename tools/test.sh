#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + integration), after
# a smoke run of the libFuzzer targets (tools/fuzz.sh smoke: a clang build in build-fuzz/).
#   tools/test.sh                 # normal build in build/
#   SANITIZE=1 tools/test.sh      # ASan+UBSan build in build-asan/
#   PHOENIX_SKIP_FUZZ=1 tools/test.sh   # without the fuzz smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [ "${SANITIZE:-0}" = "1" ]; then
  export BUILD_DIR=build-asan PHOENIX_SANITIZE=ON BUILD_TYPE=Debug PHOENIX_SANITIZED=1
  # A small quarantine keeps RSS meaningful for the bounded-memory streaming tests.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=8:thread_local_quarantine_size_kb=64}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
BUILD_DIR=${BUILD_DIR:-build}
tools/build.sh
# Every fuzz target for a few seconds, and its past crashers replayed (ctest -L fuzz). A failure
# here fails the run, but only after the main suite has run too.
fuzz_status=0
if [ "${PHOENIX_SKIP_FUZZ:-0}" != "1" ]; then
  tools/fuzz.sh smoke || fuzz_status=$?
fi
# Integration tests open thousands of sockets at most; make sure the limit allows it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 300 -j "${TEST_JOBS:-2}" "$@"
if [ "$fuzz_status" -ne 0 ]; then
  echo "test: the fuzz smoke run failed (see its output above; tools/fuzz.sh smoke)" >&2
  exit "$fuzz_status"
fi
