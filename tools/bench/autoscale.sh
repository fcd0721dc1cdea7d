#!/usr/bin/env bash
# Acceptance run of the supervisor (benchmark, not a test): phoenix runs the demo app
# (build/phoenix-demo-app) as a SUPERVISED cluster with autoscaling (target 10 requests per
# second per instance), and a client drives the load from 5 to 50 requests per second and back
# down while an instance is crashed every FAULT_EVERY seconds (GET /crash through a second
# listener that has no deny rule). Records per second the requests that succeeded and failed,
# and the app's instances (GET /apps); checks that
#   - the client sees at least 99.9% success,
#   - every crashed instance was back (ready) within its back-off plus 2 s,
#   - instances were added above 10 rps per instance (more than min_instances at the peak)
#     and removed when idle (back to min_instances at the end),
# and draws instances, requests per second and errors per second into a PNG (gnuplot).
#
# Usage: tools/bench/autoscale.sh [--out DIR] [--step SECS] [--fault-every SECS]
#   --out DIR  where the CSV, the PNG and the logs go (default: a temp dir, printed)
# Exit status: 0 when every check holds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PHOENIX_BIN=${PHOENIX_BIN:-$ROOT/build/phoenix}
APP_BIN=${APP_BIN:-$ROOT/build/phoenix-demo-app}
BASE=18400  # phoenix +10, fault listener +12, admin +11, app instances +21..+28
PORT=$((BASE + 10)) FAULT_PORT=$((BASE + 12)) ADMIN=$((BASE + 11))
STEP=10 FAULT_EVERY=8
# Requests per second, one step each: up from 5 to 50, down again, then idle long enough for
# the scale-down window.
PROFILE=5,10,20,30,40,50,50,40,30,20,10,5,5,5,5
OUT=""
PHOENIX_PID=""

die() { echo "autoscale: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --step) STEP=$2; shift 2 ;;
    --fault-every) FAULT_EVERY=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
for bin in "$PHOENIX_BIN" "$APP_BIN"; do
  [ -x "$bin" ] || die "$bin is missing: build first (tools/build.sh)"
done
command -v gnuplot >/dev/null || die "gnuplot is missing: tools/setup.sh installs gnuplot-nox"
for p in $PORT $FAULT_PORT $ADMIN $(seq $((BASE + 21)) $((BASE + 28))); do
  if port_open "$p"; then die "127.0.0.1:$p is in use"; fi
done
OUT=${OUT:-$(mktemp -d /tmp/phoenix-autoscale.XXXXXX)}
mkdir -p "$OUT"

cleanup() {
  if [ -n "$PHOENIX_PID" ] && kill -0 "$PHOENIX_PID" 2>/dev/null; then
    kill -KILL "$PHOENIX_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

cat >"$OUT/phoenix.yaml" <<YAML
admin: { address: { socket_address: { address: 127.0.0.1, port_value: $ADMIN } } }
drain_timeout: 5s
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: $PORT } }
    http_connection_manager:
      route_config:
        virtual_hosts:
        - name: app
          domains: ["*"]
          routes:
          - match: { prefix: / }
            route:
              cluster: app
              timeout: 15s
              # A request on an instance that crashes is reset: it goes again, to another.
              retry_policy:
                retry_on: connect-failure,reset
                num_retries: 5
                retry_back_off: { base_interval: 0.05s, max_interval: 0.5s }
      http_filters:
      - name: phoenix.filters.http.access_policy
        typed_config:
          "@type": type.googleapis.com/phoenix.config.v1.AccessPolicy
          rules:
          - name: deny_crash
            action: DENY
            match: { path: { prefix: /crash } }
      - name: phoenix.filters.http.router
  # The fault: the same app, no deny rule, no retries.
  - name: fault
    address: { socket_address: { address: 127.0.0.1, port_value: $FAULT_PORT } }
    http_connection_manager:
      route_config:
        virtual_hosts:
        - name: app
          domains: ["*"]
          routes:
          - match: { prefix: / }
            route: { cluster: app }
  clusters:
  - name: app
    type: SUPERVISED
    connect_timeout: 1s
supervisor:
  apps:
  - name: app
    command: $APP_BIN
    args: [--name, app]
    port_range: { start: $((BASE + 21)), end: $((BASE + 28)) }
    min_instances: 2
    max_instances: 8
    readiness: { http_path: /healthz, interval: 0.05s }
    cluster: app
    restart_back_off: { initial: 0.25s, max: 5s }
    crash_loop: { max_crashes: 10, interval: 60s }
    stop_grace_period: 5s
    log_path: $OUT/app.log
    autoscaling:
      target_rps_per_instance: 10
      scale_up_window: 3s
      scale_down_window: 10s
      sample_interval: 0.5s
YAML
"$PHOENIX_BIN" --mode validate -c "$OUT/phoenix.yaml" >/dev/null

log "phoenix on :$PORT (fault listener :$FAULT_PORT, admin :$ADMIN); output in $OUT"
"$PHOENIX_BIN" -c "$OUT/phoenix.yaml" --concurrency 2 >"$OUT/phoenix.out" 2>"$OUT/phoenix.log" &
PHOENIX_PID=$!
ready=0
for _ in $(seq 200); do
  if [ "$(curl -sf --max-time 1 "http://127.0.0.1:$ADMIN/apps" | grep -o '"state":"READY"' | wc -l)" -ge 2 ]; then
    ready=1
    break
  fi
  kill -0 "$PHOENIX_PID" 2>/dev/null || die "phoenix exited: $(tail -5 "$OUT/phoenix.log")"
  sleep 0.05
done
[ $ready = 1 ] || die "the app's 2 instances are not ready after 10 s"

log "load: $PROFILE rps, ${STEP} s each; an instance crashed every ${FAULT_EVERY} s"
python3 "$ROOT/tools/bench/autoscale_load.py" --port "$PORT" --fault-port "$FAULT_PORT" \
  --admin-port "$ADMIN" --profile "$PROFILE" --step "$STEP" --fault-every "$FAULT_EVERY" \
  --csv "$OUT/run.csv" | tee "$OUT/summary.txt"

log "stopping phoenix (SIGTERM: drain, then the instances)"
kill -TERM "$PHOENIX_PID"
status=0
wait "$PHOENIX_PID" || status=$?
PHOENIX_PID=""

# Restart times: each crash's back-off ("restarting it in D ms") and the new instance's start
# to ready ("ready after R ms"), from phoenix's log.
python3 - "$OUT/phoenix.log" >>"$OUT/summary.txt" <<'PY'
import re, sys
pending = {}
times = []
for line in open(sys.argv[1]):
    m = re.search(r"instance (\d+) \(pid \d+, port \d+\) (?:exited|was killed).* restarting it in (\d+) ms", line)
    if m:
        pending[m.group(1)] = int(m.group(2))
        continue
    m = re.search(r"instance (\d+) \(pid \d+, port \d+\) ready after (\d+) ms", line)
    if m and m.group(1) in pending:
        times.append((pending.pop(m.group(1)), int(m.group(2))))
print(f"restarts_measured={len(times)}")
print(f"restarts_not_back={len(pending)}")
if times:
    total = [d + r for d, r in times]
    print(f"restart_backoff_ms={','.join(str(d) for d, _ in times)}")
    print(f"restart_ready_after_ms={','.join(str(r) for _, r in times)}")
    print(f"restart_total_max_ms={max(total)}")
    print(f"restart_within_backoff_plus_2s={all(r <= 2000 for _, r in times)}")
PY

gnuplot <<GP
set terminal pngcairo size 1200,700 noenhanced
set output "$OUT/autoscale.png"
set datafile separator ","
set key top left
set xlabel "seconds"
set ylabel "requests per second"
set y2label "instances"
set ytics nomirror
set y2tics 1
set y2range [0:10]
set grid
set title "phoenix supervisor: load 5 -> 50 -> 5 rps, an instance crashed every ${FAULT_EVERY} s"
plot "$OUT/run.csv" every ::1 using 1:2 with steps lw 1 dt 2 lc rgb "gray" title "offered rps", \
     "" every ::1 using 1:3 with lines lw 2 lc rgb "#22aa77" title "ok rps", \
     "" every ::1 using 1:4 with impulses lw 3 lc rgb "red" title "errors per second", \
     "" every ::1 using 1:5 axes x1y2 with steps lw 2 lc rgb "#2277cc" title "instances ready", \
     "" every ::1 using 1:6 axes x1y2 with steps lw 1 dt 3 lc rgb "#2277cc" title "instances (all states)"
GP

get() { sed -n "s/^$1=//p" "$OUT/summary.txt" | tail -1; }
fails=0
check() {  # check DESCRIPTION CONDITION...
  local what=$1; shift
  if "$@"; then echo "PASS: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
check "success $(get success_pct)% >= 99.9%" python3 -c "import sys; sys.exit(float('$(get success_pct)') < 99.9)"
check "every crashed instance back within its back-off + 2 s (max $(get restart_total_max_ms) ms)" \
  test "$(get restart_within_backoff_plus_2s)" = True -a "$(get restarts_not_back)" = 0 -a "$(get restarts_measured)" -gt 0
check "instances added at the peak (max ready $(get max_ready) > 2)" test "$(get max_ready)" -gt 2
check "instances removed when idle (ready at the end: $(get final_ready) = 2)" test "$(get final_ready)" -eq 2
check "phoenix drained and exited 0 (status $status)" test "$status" -eq 0
echo "CSV: $OUT/run.csv  PNG: $OUT/autoscale.png  logs: $OUT/phoenix.log $OUT/app.log"
exit $((fails > 0))
