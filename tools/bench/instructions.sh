#!/usr/bin/env bash
# Benchmark (not a test): deterministic per-request cost of phoenix, nginx and HAProxy,
# in user-space instructions (callgrind Ir) per proxied HTTP/1.1 keep-alive request.
# Each proxy has a single worker/thread and proxies to the same native nginx upstream
# answering a small fixed body. Prints a markdown table with ratios, and writes
# phoenix's top 15 functions (self and inclusive Ir per request) to a file whose path it
# prints, next to the two callgrind files. Takes about 45 s on 2 cores.
#
# Usage: tools/bench/instructions.sh [--requests N] [--connections N]
#                                    [--only phoenix|nginx|haproxy] [--out DIR]
#   --requests 20000, --connections 8 by default; --out .bench (profile + callgrind files)
# Env:   PHOENIX_BIN=build/phoenix   the phoenix binary (relative to the repo root or absolute)
#        BENCH_PORT_BASE=18200       first of the 5 ports used (all must be free)
#        BENCH_KEEP_TMP=1            keep the temp dir (configs, logs, callgrind files)
#
# Method: per proxy, two runs under `valgrind --tool=callgrind --collect-atstart=yes`:
#   load: start, readiness, `h2load --h1 -n N -c C -m 1`, clean stop;
#   idle: start, readiness, clean stop (no request).
# (Ir(load) - Ir(idle)) / N excludes startup and shutdown. nginx runs with
# `daemon off; master_process off;` (the worker is the traced process), HAProxy with
# -db and nbthread 1, phoenix with --concurrency 1, router only, no access log.
# Readiness is polled in /proc/net/tcp (LISTEN state), so the wait never connects to
# the traced process; phoenix then gets exactly one admin GET /ready per run. Stops:
# nginx SIGQUIT (graceful), HAProxy and phoenix SIGTERM; we wait for the process, and
# so for callgrind's output file. Every h2load request must succeed with a 2xx and
# the expected body bytes, else the run fails. Instruction counts do not depend on
# CPU speed or load, only a little on how events batch: runs agree within ~0.3%.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
source "$ROOT/tools/bench/lib.sh"
PHOENIX_BIN=${PHOENIX_BIN:-build/phoenix}
[[ $PHOENIX_BIN == /* ]] || PHOENIX_BIN="$ROOT/$PHOENIX_BIN"
REQUESTS=20000 CONNS=8 ONLY="" OUT="$ROOT/.bench"
BASE=${BENCH_PORT_BASE:-18200}
BODY="hello from upstream"
WORKER_CONNS=1024
READY_TIMEOUT=180    # startup under callgrind is slow (phoenix: protobuf/gRPC static init)
STOP_TIMEOUT=120     # seconds for a stopped proxy to exit and callgrind to write its file
LOAD_TIMEOUT=1800    # seconds for one h2load run
declare -A PORT=([upstream]=$BASE [nginx]=$((BASE + 1)) [haproxy]=$((BASE + 2)) [phoenix]=$((BASE + 3)))
declare -A ADMIN=([phoenix]=$((BASE + 4)))
UP_PORT=${PORT[upstream]}
PIDS=() T=""
declare -A IR_LOAD IR_IDLE PER_REQ

die() { echo "instructions: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --requests) REQUESTS=$2; shift 2 ;;
      --connections) CONNS=$2; shift 2 ;;
      --only) ONLY=$2; shift 2 ;;
      --out) OUT=$2; shift 2 ;;
      -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests wants a positive integer"
  [[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "--connections wants a positive integer"
  case $ONLY in
    "") PROXIES=(phoenix nginx haproxy) ;;
    phoenix|nginx|haproxy) PROXIES=("$ONLY") ;;
    *) die "--only wants phoenix, nginx or haproxy" ;;
  esac
}

# stop_pid PID SIGNAL: signal PID, wait up to STOP_TIMEOUT s for it to exit, then SIGKILL.
# Returns 1 if it had to be killed. A signal that lands just before an event loop
# blocks with no timer pending (nginx with master_process off: the flag set by its
# handler is checked only after epoll_wait returns) is lost; wait_idle avoids that
# window, and a stop signal is resent every 10 s as a fallback (with a warning).
stop_pid() {
  local pid=$1 sig=$2 i
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 1; i <= STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
    if ((i % 100 == 0)); then
      echo "instructions: WARNING: pid $pid still running $((i / 10)) s after SIG$sig; resending" >&2
      kill "-$sig" "$pid" 2>/dev/null || true
    fi
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 1
}

# wait_idle PID: wait (up to STOP_TIMEOUT s) until PID's main thread sleeps in epoll_wait,
# so a stop signal interrupts the wait instead of racing the loop's flag check.
wait_idle() {
  local pid=$1 i
  for ((i = 0; i < STOP_TIMEOUT * 50; i++)); do
    case $(cat "/proc/$pid/wchan" 2>/dev/null) in *epoll*) return 0 ;; esac
    sleep 0.02
  done
  echo "instructions: WARNING: pid $pid never seen idle in epoll_wait" >&2
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then stop_pid "$pid" TERM || true; fi
  done
  if [ -z "$T" ]; then return; fi
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "instructions: temp dir kept: $T" >&2; else rm -rf "$T"; fi
}

# listening PORT: a socket on 127.0.0.1:PORT is in LISTEN state (without connecting to it).
listening() {
  local hex
  hex=$(printf '0100007F:%04X' "$1")
  awk -v a="$hex" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

phoenix_ready() {
  listening "${PORT[phoenix]}" && listening "${ADMIN[phoenix]}" &&
    curl -sf -o /dev/null --max-time 30 "http://127.0.0.1:${ADMIN[phoenix]}/ready"
}

write_configs() {
  nginx_globals off   # proxies: one process, the worker itself
  nginx_conf nginx "" ""
  haproxy_conf haproxy ""
  phoenix_conf phoenix "
      http_filters:
      - name: phoenix.filters.http.router"
  # The upstream runs natively, as a master + 1 worker like run.sh's.
  local proxy_common=$NGX_COMMON
  nginx_globals on
  upstream_conf
  NGX_COMMON=$proxy_common
}

start_upstream() {
  nginx -p "$T/upstream" -e "$T/upstream.err" -c "$T/upstream.conf" >"$T/upstream.log" 2>&1 &
  PIDS+=("$!")
  READY_TIMEOUT=10 wait_ready upstream "$!" listening "$UP_PORT" ||
    die "upstream nginx failed: $(tail -n5 "$T/upstream.err" "$T/upstream.log")"
}

# measure NAME KIND: one callgrind run of proxy NAME; KIND is load (h2load) or idle.
# Sets IR_LOAD[NAME] or IR_IDLE[NAME].
measure() {
  local name=$1 kind=$2 run="$1.$2" pid sig=TERM out ir
  local -a vg cmd
  out="$T/callgrind.$run.out"
  vg=(valgrind --tool=callgrind --collect-atstart=yes --callgrind-out-file="$out"
      --log-file="$T/valgrind.$run.log")
  case $name in
    nginx) cmd=(nginx -p "$T/nginx" -e "$T/nginx.err" -c "$T/nginx.conf"); sig=QUIT ;;
    haproxy) cmd=(haproxy -db -f "$T/haproxy.cfg") ;;
    phoenix) cmd=("$PHOENIX_BIN" -c "$T/phoenix.yaml" --concurrency 1 --log-level warn) ;;
  esac
  log "$name ($kind): starting under callgrind"
  "${vg[@]}" "${cmd[@]}" >"$T/$run.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  local -a check=(listening "${PORT[$name]}")
  if [ "$name" = phoenix ]; then check=(phoenix_ready); fi
  if ! READY_TIMEOUT=$READY_TIMEOUT wait_ready "$name" "$pid" "${check[@]}"; then
    tail -n20 "$T/$run.log" "$T/valgrind.$run.log" >&2 2>/dev/null || true
    die "$name did not start"
  fi
  if [ "$kind" = load ]; then
    log "$name ($kind): h2load --h1 -n $REQUESTS -c $CONNS -m 1"
    if ! timeout "$LOAD_TIMEOUT" h2load --h1 -n "$REQUESTS" -c "$CONNS" -m 1 \
        "http://127.0.0.1:${PORT[$name]}/" >"$T/h2load.$name.txt" 2>&1; then
      cat "$T/h2load.$name.txt" >&2; die "h2load against $name failed"
    fi
    check_h2load "$name"
  fi
  wait_idle "$pid"
  stop_pid "$pid" "$sig" || die "$name did not exit within ${STOP_TIMEOUT}s of SIG$sig"
  [ -s "$out" ] || { cat "$T/valgrind.$run.log" >&2; die "no callgrind output for $name ($kind)"; }
  # totals: (what callgrind_annotate reports as PROGRAM TOTALS), else summary:.
  ir=$(awk '$1 == "summary:" { s = $2 } $1 == "totals:" { t = $2 } END { print (t != "" ? t : s) }' "$out")
  [[ $ir =~ ^[0-9]+$ ]] || die "no Ir total in $out"
  if [ "$kind" = load ]; then IR_LOAD[$name]=$ir; else IR_IDLE[$name]=$ir; fi
  log "$name ($kind): $ir Ir"
}

# check_h2load NAME: every request succeeded with a 2xx and carried BODY + newline.
check_h2load() {
  local f="$T/h2load.$1.txt" ok two data want=$(( REQUESTS * (${#BODY} + 1) ))
  ok=$(awk '/^requests:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^succeeded/) print $i }' "$f")
  two=$(awk '/^status codes:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^2xx/) print $i }' "$f")
  # "traffic: 328.13KB (336000) total, 212.89KB (218000) headers (...), 39.06KB (40000) data"
  data=$(sed -n 's/^traffic:.*(\([0-9]*\)) data.*/\1/p' "$f")
  if [ "$ok" != "$REQUESTS" ] || [ "$two" != "$REQUESTS" ] || [ "$data" != "$want" ]; then
    cat "$f" >&2
    die "$1: want $REQUESTS succeeded 2xx responses and $want body bytes, got ${ok:-?} / ${two:-?} / ${data:-?}"
  fi
}

# annotate_ir FILE INCLUSIVE(yes|no): "Ir<TAB>file:function" for every function of FILE
# (the " [object]" suffix dropped: callgrind_annotate does not print it on every line).
# Run from $T: in the source tree, callgrind_annotate splits functions whose debug info
# names files relative to it into a "source/x.cc" and a "/abs/source/x.cc" entry.
annotate_ir() {
  (cd "$T" && callgrind_annotate --threshold=100 --auto=no --inclusive="$2" "$1" 2>/dev/null) |
    awk '/^Ir +file:function/ { table = 1; next }   # the table sits between two rules
         /^-+$/ { if (table) table++; next }
         table == 2 && /^ *[0-9,]+ / {
           ir = $1; gsub(/,/, "", ir); fn = $0
           sub(/^ *[0-9,]+ +(\([ 0-9.]+%\) +)?/, "", fn); sub(/ \[[^]]*\]$/, "", fn)
           print ir "\t" fn }'
}

# top_per_request INCLUSIVE(yes|no) [FUNCTION_REGEX]: phoenix's 15 costliest functions
# (matching the awk regex, if given) per request, (load - idle) / N, with their share of
# the per-request total, as a table.
top_per_request() {
  local total=${PER_REQ[phoenix]} re=${2:-.}
  printf '%10s %7s  %s\n' "Ir/req" share "function (file)"
  awk -F'\t' -v n="$REQUESTS" '
      FNR == NR { idle[$2] += $1; next }
      { load[$2] += $1 }
      END { for (f in load) printf "%.1f\t%s\n", (load[f] - idle[f]) / n, f }' \
    <(annotate_ir "$T/callgrind.phoenix.idle.out" "$1") <(annotate_ir "$T/callgrind.phoenix.load.out" "$1") |
    sort -t$'\t' -k1,1gr |
    awk -F'\t' -v total="$total" -v re="$re" '{
      fn = $2; file = "?"
      if (match(fn, /^[^:]*:/)) { file = substr(fn, 1, RLENGTH - 1); fn = substr(fn, RLENGTH + 1) }
      if (fn !~ re || ++n > 15) next
      sub(/.*\//, "", file)
      if (length(fn) > 110) fn = substr(fn, 1, 107) "..."
      printf "%10.0f %6.1f%%  %s (%s)\n", $1, 100 * $1 / total, fn, file }'
}

# profile: phoenix's top functions per request, by self and by inclusive Ir, to a file.
profile() {
  local f="$OUT/instructions-phoenix-profile.txt"
  mkdir -p "$OUT"
  cp "$T/callgrind.phoenix.load.out" "$T/callgrind.phoenix.idle.out" "$OUT/"
  {
    echo "phoenix: Ir per request = (load run - idle run) / $REQUESTS = ${PER_REQ[phoenix]}"
    echo "h2load --h1 -n $REQUESTS -c $CONNS -m 1; $(date -u '+%F %T') UTC; $PHOENIX_BIN"
    echo
    echo "Top 15 functions by self Ir per request:"
    top_per_request no
    echo
    echo "Top 15 phoenix:: functions by inclusive Ir per request (callees included; the"
    echo "thread and libuv frames above Dispatcher::Run left out):"
    top_per_request yes '^phoenix::'
    echo
    echo "Callgrind files (callgrind_annotate / kcachegrind): $OUT/callgrind.phoenix.{load,idle}.out"
  } >"$f"
  PROFILE=$f
}

ratio() {  # ratio A B -> xA/B with 2 decimals, or n/a
  if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then echo n/a; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "x%.2f", a / b }'
}

report() {
  local p
  echo
  printf '%-8s %16s %16s %12s\n' proxy "Ir load run" "Ir idle run" "Ir/request"
  for p in "${PROXIES[@]}"; do
    printf '%-8s %16s %16s %12s\n' "$p" "${IR_LOAD[$p]}" "${IR_IDLE[$p]}" "${PER_REQ[$p]}"
  done
  echo
  echo "User-space instructions per proxied HTTP/1.1 keep-alive request (callgrind Ir,"
  echo "(load run - idle run) / $REQUESTS; h2load --h1 -n $REQUESTS -c $CONNS -m 1; 1 worker/thread):"
  echo
  echo "| proxy | instructions per request | ratio vs phoenix |"
  echo "|---|---:|---:|"
  for p in "${PROXIES[@]}"; do
    echo "| $p | ${PER_REQ[$p]} | $(ratio "${PER_REQ[$p]}" "${PER_REQ[phoenix]:-}") |"
  done
  echo
  echo "phoenix/nginx: $(ratio "${PER_REQ[phoenix]:-}" "${PER_REQ[nginx]:-}")," \
       "phoenix/haproxy: $(ratio "${PER_REQ[phoenix]:-}" "${PER_REQ[haproxy]:-}")"
  if [ -n "${PROFILE:-}" ]; then echo "phoenix profile (top 15 functions): $PROFILE"; fi
}

main() {
  parse_args "$@"
  local cmd p start=$SECONDS
  for cmd in valgrind callgrind_annotate h2load nginx curl; do
    command -v "$cmd" >/dev/null || die "$cmd missing: run tools/setup.sh"
  done
  for p in "${PROXIES[@]}"; do
    case $p in
      haproxy) command -v haproxy >/dev/null || die "haproxy missing: run tools/setup.sh" ;;
      phoenix) [ -x "$PHOENIX_BIN" ] || die "$PHOENIX_BIN not found: run tools/build.sh first" ;;
    esac
  done
  for p in "${PORT[@]}" "${ADMIN[@]}"; do
    if listening "$p" || port_open "$p"; then die "port $p already in use (set BENCH_PORT_BASE)"; fi
  done

  T=$(mktemp -d /tmp/phoenix-instructions.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  write_configs
  if [[ " ${PROXIES[*]} " == *" phoenix "* ]]; then
    validate_phoenix phoenix || die "generated phoenix config rejected"
  fi
  start_upstream

  for p in "${PROXIES[@]}"; do
    measure "$p" load
    measure "$p" idle
    PER_REQ[$p]=$(( (IR_LOAD[$p] - IR_IDLE[$p] + REQUESTS / 2) / REQUESTS ))
  done
  if [ -n "${PER_REQ[phoenix]:-}" ]; then profile; fi
  report
  echo "($((SECONDS - start)) s)" >&2
}

main "$@"
