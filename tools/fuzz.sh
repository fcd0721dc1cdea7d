#!/usr/bin/env bash
# libFuzzer targets (test/fuzz/*_fuzz.cc), built with clang, ASan and UBSan in build-fuzz/.
#   tools/fuzz.sh --list                  # the target names
#   tools/fuzz.sh build                   # configure (once) and build every target
#   tools/fuzz.sh TARGET SECONDS [FLAGS]  # fuzz one target; FLAGS go to libFuzzer (-runs=N, -jobs=...)
#   tools/fuzz.sh all SECONDS [FLAGS]     # every target in turn, SECONDS each
#   tools/fuzz.sh smoke                   # every target for a few seconds, under ctest (tools/test.sh)
# A run starts from the seeds in test/fuzz/corpus/TARGET/, copied into build-fuzz/corpus/TARGET/,
# where new inputs accumulate (the seeds in the repo are never written to). The whole log goes to
# build-fuzz/logs/TARGET.log; a crash leaves its input in build-fuzz/artifacts/TARGET/ and makes
# the script exit non-zero. Replay an input: build-fuzz/test/fuzz/phoenix_fuzz_TARGET FILE.
#
# Builds and fuzz runs hold /tmp/phoenix-build.lock (one build at a time on the machine).
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
LOCK=/tmp/phoenix-build.lock
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

targets() {
  for f in test/fuzz/*_fuzz.cc; do basename "$f" _fuzz.cc; done
}

# True if this process inherited an open descriptor on the lock file, i.e. it runs under
# `flock /tmp/phoenix-build.lock ...` (taking the lock again would deadlock).
holds_lock() {
  local fd
  for fd in /proc/$$/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "$LOCK" ] && return 0
  done
  return 1
}

build() {
  tools/setup.sh
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    # -O1 with assertions: quick to build, fast enough to fuzz, readable stack traces.
    CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
      -DPHOENIX_BUILD_FUZZERS=ON -DPHOENIX_BUILD_TESTS=OFF -DPHOENIX_BUILD_BENCHMARKS=OFF
  fi
  ninja -C "$BUILD_DIR" -j "${JOBS:-2}" phoenix_fuzzers
}

# Prints one "stat" value from a libFuzzer log (0 if absent).
stat_of() {
  local value
  value=$(grep -a "^stat::$2:" "$1" | tail -n 1 | awk '{print $2}')
  echo "${value:-0}"
}

# run_target NAME SECONDS [FLAGS...]; returns libFuzzer's exit status.
run_target() {
  local name=$1 seconds=$2
  shift 2
  local bin=$BUILD_DIR/test/fuzz/phoenix_fuzz_$name
  if [ ! -x "$bin" ]; then
    echo "fuzz: no target '$name' (tools/fuzz.sh --list)" >&2
    return 2
  fi
  local corpus=$BUILD_DIR/corpus/$name artifacts=$BUILD_DIR/artifacts/$name
  local log=$BUILD_DIR/logs/$name.log
  mkdir -p "$corpus" "$artifacts" "$BUILD_DIR/logs"
  cp -u test/fuzz/corpus/"$name"/* "$corpus"/
  echo "fuzz: $name for ${seconds}s $* (log: $log)"
  local rc=0 start=$SECONDS
  "$bin" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$corpus" >"$log" 2>&1 || rc=$?
  local execs units
  execs=$(stat_of "$log" number_of_executed_units)
  units=$(ls "$corpus" | wc -l)
  printf 'fuzz: %s: %s executions in %ss (%s/s), corpus %s inputs, exit %s\n' "$name" "$execs" \
    "$((SECONDS - start))" "$(stat_of "$log" average_exec_per_sec)" "$units" "$rc"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $name FAILED; end of $log:" >&2
    grep -av '^#[0-9]' "$log" | tail -n 60 >&2
    echo "fuzz: crashing input(s) in $artifacts/:" >&2
    ls -1 "$artifacts" >&2
  fi
  return "$rc"
}

[ $# -ge 1 ] || usage
case "$1" in
  --list | list)
    targets
    exit 0
    ;;
  -h | --help) usage ;;
esac

if ! holds_lock; then exec flock "$LOCK" "$SELF" "$@"; fi

case "$1" in
  build)
    build
    ;;
  smoke)
    build
    ctest --test-dir "$BUILD_DIR" -L fuzz --output-on-failure -j "${TEST_JOBS:-2}"
    ;;
  all)
    [ $# -ge 2 ] || usage
    seconds=$2
    shift 2
    build
    failed=()
    for name in $(targets); do
      run_target "$name" "$seconds" "$@" || failed+=("$name")
    done
    if [ ${#failed[@]} -ne 0 ]; then
      echo "fuzz: crashed: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  *)
    [ $# -ge 2 ] || usage
    name=$1 seconds=$2
    shift 2
    case " $(targets | tr '\n' ' ') " in
      *" $name "*) ;;
      *)
        echo "fuzz: no target '$name' (tools/fuzz.sh --list)" >&2
        exit 2
        ;;
    esac
    build
    run_target "$name" "$seconds" "$@"
    ;;
esac
