#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + integration).
#   tools/test.sh                 # normal build in build/
#   SANITIZE=1 tools/test.sh      # ASan+UBSan build in build-asan/
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
# Integration tests open thousands of sockets at most; make sure the limit allows it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 300 -j "${TEST_JOBS:-2}" "$@"
