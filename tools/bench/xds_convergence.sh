#!/usr/bin/env bash
# Benchmark (not a test): how fast proxies converge on one control-plane change, and what each
# connected proxy costs phoenix-cp. phoenix-cp serves a small resource directory (a listener
# with rds, a route configuration "main" with five routes, an EDS cluster and its load
# assignment); ONE node process (tools/bench/xds_convergence.js, grpc-js) holds N ADS streams
# to it, each a simulated proxy with its own node id (sidecar-0..N-1), subscribed to all five
# types and ACKing every response. This is one process holding N streams, not N phoenix
# processes: the streams share one event loop, so the times include the client's own queueing.
#
# Each change is a route edit applied the user's way, `phoenixctl apply -f routes.yaml`; per
# stream, the convergence time runs from just before phoenixctl starts to that stream's ACK of
# the new RouteConfiguration version. K changes, one after another (each once every stream
# has ACKed the previous); p50/p99/max over all streams and changes. Goal: p99 < 1 s.
# phoenix-cp's VmRSS and CPU time (utime + stime, /proc) are read before the streams connect,
# once all have ACKed the initial state, and after the changes: KiB of RSS per stream, CPU ms
# per stream for the initial state and per stream per change.
#
# Usage: tools/bench/xds_convergence.sh [--streams N] [--changes K] [--streams-per-connection S]
#   --streams N   one run with N streams (repeatable); default: a run with 100, then 1000
#   --changes K   changes per run (default 5)
#   --streams-per-connection S   streams per HTTP/2 connection (default 1: each simulated
#                 proxy has its own TCP connection, as real proxies do; grpc-js channels with
#                 'grpc.use_local_subchannel_pool' so they do not share one)
# Env:   PHOENIX_CP_BIN=build/phoenix-cp, PHOENIXCTL_BIN=build/phoenixctl (relative to the repo
#        root or absolute): copied to the temp dir first, so a rebuild meanwhile does not matter
#        CP_LOG_LEVEL=info  phoenix-cp's --log-level (info, its default, logs every ACK)
#        BENCH_KEEP_TMP=1   keep the temp dir (resources, phoenix-cp logs)
# Needs node and the grpc-js of test/integration/grpc/node_modules (tools/setup.sh).
#
# Each run starts its own phoenix-cp (default log level info, logging to a file) on a fresh
# copy of the resources, on a port it picks (--listen 127.0.0.1:0), ready once it logs
# "serving ADS on". The open-file limit is raised to the hard limit (N streams = N sockets).
# No CPU pinning: phoenix-cp and the node process share the machine's CPUs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PHOENIX_CP_BIN=${PHOENIX_CP_BIN:-build/phoenix-cp}
PHOENIXCTL_BIN=${PHOENIXCTL_BIN:-build/phoenixctl}
[[ $PHOENIX_CP_BIN == /* ]] || PHOENIX_CP_BIN="$ROOT/$PHOENIX_CP_BIN"
[[ $PHOENIXCTL_BIN == /* ]] || PHOENIXCTL_BIN="$ROOT/$PHOENIXCTL_BIN"
CLIENT_JS="$ROOT/tools/bench/xds_convergence.js"
CP_LOG_LEVEL=${CP_LOG_LEVEL:-info}
STREAMS=() CHANGES=5 PER_CONN=1
CP_PID="" CLIENT_PID="" RESULTS=() FAILED=0

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --streams) STREAMS+=("$2"); shift 2 ;;
    --changes) CHANGES=$2; shift 2 ;;
    --streams-per-connection) PER_CONN=$2; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[ ${#STREAMS[@]} -gt 0 ] || STREAMS=(100 1000)
command -v node >/dev/null || die "node not found (tools/setup.sh installs it)"
[ -d "$ROOT/test/integration/grpc/node_modules/@grpc/grpc-js" ] ||
  die "no grpc-js in test/integration/grpc/node_modules (tools/setup.sh runs npm ci there)"
for bin in "$PHOENIX_CP_BIN" "$PHOENIXCTL_BIN"; do
  [ -x "$bin" ] || die "no binary at $bin (tools/build.sh)"
done

T=$(mktemp -d /tmp/phoenix-bench-xds.XXXXXX)
stop_cp() {
  if [ -n "$CP_PID" ]; then
    kill -TERM "$CP_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CP_PID" 2>/dev/null || true
    wait "$CP_PID" 2>/dev/null || true
    CP_PID=""
  fi
}
cleanup() {
  if [ -n "$CLIENT_PID" ]; then kill -KILL "$CLIENT_PID" 2>/dev/null || true; fi
  stop_cp
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "bench: temp dir kept: $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

# The binaries as they are now: the build dir may be rebuilt while this runs.
mkdir -p "$T/bin"
cp "$PHOENIX_CP_BIN" "$T/bin/phoenix-cp"
cp "$PHOENIXCTL_BIN" "$T/bin/phoenixctl"
ulimit -n "$(ulimit -Hn)"

# resources DIR: the directory phoenix-cp serves (routes.yaml is what each change rewrites).
resources() {
  mkdir -p "$1"
  cat >"$1/listeners.yaml" <<'EOF'
listeners:
- name: ingress
  address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
  http_connection_manager:
    stat_prefix: ingress
    rds: { route_config_name: main }
EOF
  cat >"$1/clusters.yaml" <<'EOF'
clusters:
- name: app
  type: EDS
  connect_timeout: 1s
cluster_load_assignments:
- cluster_name: app
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8081 } } }
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8082 } } }
EOF
  node "$CLIENT_JS" --print-routes 0 >"$1/routes.yaml"
}

# run N: a fresh phoenix-cp and resource directory, the client with N streams.
run() {
  local n=$1 dir="$T/run$1" port line
  resources "$dir/resources"
  mkdir -p "$dir/work"
  "$T/bin/phoenix-cp" --resources "$dir/resources" --listen 127.0.0.1:0 \
    --audit-log "$dir/audit.jsonl" --log-level "$CP_LOG_LEVEL" </dev/null >/dev/null 2>"$dir/phoenix-cp.log" &
  CP_PID=$!
  # Ready once it logs its port (checked every 50 ms, for up to 10 s).
  port=""
  for _ in $(seq 200); do
    kill -0 "$CP_PID" 2>/dev/null || break
    line=$(grep -m1 'phoenix-cp: serving ADS on' "$dir/phoenix-cp.log" || true)
    if [ -n "$line" ]; then port=${line##*:}; port=${port%%,*}; break; fi
    sleep 0.05
  done
  if [ -z "$port" ]; then
    tail -n20 "$dir/phoenix-cp.log" >&2
    die "phoenix-cp did not start"
  fi
  log "$n streams (one node process), $CHANGES changes; phoenix-cp pid $CP_PID on 127.0.0.1:$port"
  node "$CLIENT_JS" --target "127.0.0.1:$port" --cp-pid "$CP_PID" --phoenixctl "$T/bin/phoenixctl" \
    --work "$dir/work" --cp-log "$dir/phoenix-cp.log" --streams "$n" --changes "$CHANGES" --streams-per-connection "$PER_CONN" \
    >"$dir/client.out" 2>&1 &
  CLIENT_PID=$!
  local rc=0
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  grep -v '^RESULT ' "$dir/client.out" || true
  # phoenix-cp's warnings and errors, each distinct message once with its count.
  echo "phoenix-cp log: $(wc -l <"$dir/phoenix-cp.log") lines; warnings/errors (count, message):"
  sed -n 's/^[^ ]* \[\(warn\|error\|critical\)\] /[\1] /p' "$dir/phoenix-cp.log" | sort | uniq -c |
    sed 's/^/  /' | cut -c1-170
  stop_cp
  if [ "$rc" != 0 ]; then
    echo "bench: the run with $n streams failed (client exit $rc); phoenix-cp log tail:" >&2
    tail -n10 "$dir/phoenix-cp.log" >&2
    FAILED=1
    return
  fi
  RESULTS+=("$(sed -n 's/^RESULT //p' "$dir/client.out")")
  echo
}

for n in "${STREAMS[@]}"; do run "$n"; done

echo "Summary: ONE node process holding N ADS streams (grpc-js), not N phoenix processes;" \
  "$PER_CONN stream(s) per HTTP/2 connection; $CHANGES route changes via phoenixctl apply;" \
  "convergence = apply start -> each stream's ACK of the new RouteConfiguration (ms, over all streams x changes)"
printf '%7s %6s %8s %8s %8s %10s %10s %11s %12s %15s\n' streams conns "p50 ms" "p99 ms" "max ms" \
  "cp RSS MiB" "KiB/stream" "initial ms" "CPU ms/strm" "CPU ms/strm/chg"
for r in "${RESULTS[@]}"; do
  node -e '
    const r = JSON.parse(process.argv[1]);
    const f = (x, d) => x.toFixed(d);
    console.log([String(r.streams).padStart(7), String(r.connections).padStart(6),
      f(r.p50, 1).padStart(8), f(r.p99, 1).padStart(8), f(r.max, 1).padStart(8),
      f(r.rss_connected_kib / 1024, 1).padStart(10), f(r.kib_per_stream, 1).padStart(10),
      f(r.connect_ms, 0).padStart(11), f(r.cpu_connect_ms_per_stream, 2).padStart(12),
      f(r.cpu_ms_per_stream_per_change_net, 3).padStart(15)].join(" "));' "$r"
done
echo "(cp RSS: phoenix-cp's with all streams connected, and its growth per stream; initial ms: until all"
echo " streams ACKed all 5 types; CPU: phoenix-cp's utime+stime per stream for the initial state, and per"
echo " stream per change net of what a change costs it with no stream connected)"
[ "$FAILED" = 0 ] || exit 1
