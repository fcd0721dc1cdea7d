#!/usr/bin/env bash
# Chaos run (benchmark, not a test): continuous wrk load through a proxy while its
# upstream instances are SIGKILLed and restarted, for phoenix, nginx and HAProxy
# in turn. Reports success rate, p99 and rps per proxy. Goal: phoenix's success
# rate above both others at no worse p99.
#
# Usage: tools/bench/chaos.sh [--duration SECS] [--kill-every SECS]
# Env:   CHAOS_KEEP_TMP=1  keep the temp dir (configs, logs, wrk output, chaos log)
#
# Upstreams: 3 build/phoenix-demo-app instances. Chaos schedule (identical for
# every proxy): at k*KILL_EVERY s (k = 1, 2, ...) SIGKILL u1, u2, u3, u1... in turn, restart
# it RESTART_AFTER s later on the same port; only events that fit in DURATION run.
# Each proxy gets its nearest equivalent of phoenix's retries + outlier detection +
# active health checks (see the configs below). Pinning: proxy on one CPU, wrk and
# the upstreams on another. Success = (requests - non-2xx/3xx - read/write/timeout
# socket errors) / requests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PHOENIX_BIN="$ROOT/build/phoenix" APP_BIN="$ROOT/build/phoenix-demo-app"
DURATION=15 KILL_EVERY=1.5 RESTART_AFTER=0.7 CONNS=32
BASE=18300  # ports: upstreams BASE+1..3, phoenix +10 (admin +11), nginx +20, haproxy +30
UPORT=([1]=$((BASE + 1)) [2]=$((BASE + 2)) [3]=$((BASE + 3)))
declare -A PORT=([phoenix]=$((BASE + 10)) [nginx]=$((BASE + 20)) [haproxy]=$((BASE + 30)))
ADMIN=$((BASE + 11))
PROXIES=(phoenix nginx haproxy)
PROXY_PID="" WRK_PID="" FAILED=0 T=""
UPID=()  # UPID[N]: pid of upstream instance uN (a child of this shell)
declare -A REQS FAILS SUCC RPS P99

die() { echo "chaos: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
now_us() { echo "${EPOCHREALTIME/./}"; }  # wall clock in microseconds
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --kill-every) KILL_EVERY=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
if ! [[ $DURATION =~ ^[0-9]+$ ]] || [ "$DURATION" -lt 2 ]; then die "--duration: integer >= 2 expected"; fi
awk -v k="$KILL_EVERY" -v r="$RESTART_AFTER" 'BEGIN { exit !(k + 0 == k && 3 * k > r) }' ||
  die "--kill-every: a number > $RESTART_AFTER/3 expected (an instance must be back before its next kill)"
for b in "$PHOENIX_BIN" "$APP_BIN"; do [ -x "$b" ] || die "missing $b (build first)"; done
for t in nginx haproxy wrk curl taskset; do command -v "$t" >/dev/null || die "missing $t"; done

# ---- processes and cleanup --------------------------------------------------
# Everything (proxy, wrk, upstreams) is a direct child of this shell, which plays
# the chaos schedule itself while wrk runs in the background: pids stay exact and
# every killed process is reaped here. Upstreams are disowned so that bash does
# not print a "Killed" line for each SIGKILL of the schedule.
stop_pid() {  # stop_pid PID [SIG]: signal, bounded wait until gone, then SIGKILL
  local pid=$1
  kill "-${2:-TERM}" "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  set +e
  local pid
  for pid in "$WRK_PID" "$PROXY_PID"; do [ -z "$pid" ] || stop_pid "$pid"; done
  for pid in "${UPID[@]}"; do stop_pid "$pid" KILL; done
  if [ -z "$T" ]; then return; fi
  if [ "${CHAOS_KEEP_TMP:-0}" = 1 ]; then echo "chaos: temp dir kept: $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
T=$(mktemp -d /tmp/phoenix-chaos.XXXXXX)

read -r -a CPUS <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
if [ ${#CPUS[@]} -ge 2 ]; then
  PIN_PROXY=(taskset -c "${CPUS[0]}") PIN_LOAD=(taskset -c "${CPUS[1]}")
  PINNING="proxy: CPU ${CPUS[0]}; wrk + upstreams: CPU ${CPUS[1]}"
else
  PIN_PROXY=() PIN_LOAD=() PINNING="none (1 CPU)"
fi

# ---- upstreams and chaos ----------------------------------------------------
start_upstream() {  # start_upstream N: (re)start instance uN, no waiting
  "${PIN_LOAD[@]}" "$APP_BIN" --port "${UPORT[$1]}" --name "u$1" >>"$T/u$1.log" 2>&1 &
  UPID[$1]=$!
  disown "$!"
}
upstream_alive() { [ -n "${UPID[$1]:-}" ] && kill -0 "${UPID[$1]}" 2>/dev/null; }
# ensure_upstreams [WHEN]: restart any dead instance, then poll until all 3 accept.
ensure_upstreams() {
  local i
  for i in 1 2 3; do
    if upstream_alive "$i"; then continue; fi
    if [ -n "${1:-}" ]; then echo "chaos: u$i was down $1 (a restart failed?)" >&2; fi
    start_upstream "$i"
  done
  for i in 1 2 3; do
    for _ in $(seq 100); do port_open "${UPORT[$i]}" && continue 2; sleep 0.05; done
    die "upstream u$i not listening on ${UPORT[$i]}; log tail: $(tail -n3 "$T/u$i.log")"
  done
}

# The schedule: "offset_us kill|start N" lines, sorted; the same for every run.
# Events end RESTART_AFTER before DURATION at the latest: every kill is undone.
awk -v d="$DURATION" -v k="$KILL_EVERY" -v r="$RESTART_AFTER" 'BEGIN {
  for (n = 1; n * k + r < d; n++) {
    printf "%d kill %d\n", n * k * 1e6, (n - 1) % 3 + 1
    printf "%d start %d\n", (n * k + r) * 1e6, (n - 1) % 3 + 1 } }' | sort -n -k1,1 >"$T/schedule"

# play_chaos T0_US: play the schedule relative to T0_US (sleeps are the schedule,
# not synchronisation); logs each event's actual offset to $T/chaos.log.
play_chaos() {
  local t0=$1 at what n left
  : >"$T/chaos.log"
  while read -r at what n; do
    left=$((t0 + at - $(now_us)))
    if [ "$left" -gt 0 ]; then sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"; fi
    if [ "$what" = kill ]; then kill -KILL "${UPID[$n]}" 2>/dev/null || true; else start_upstream "$n"; fi
    echo "$(( ($(now_us) - t0) / 1000 ))ms $what u$n" >>"$T/chaos.log"
  done <"$T/schedule"
}

# ---- proxies ----------------------------------------------------------------
write_configs() {
  sed -e "s/ADMIN/$ADMIN/; s/PORT/${PORT[phoenix]}/; s/U1/${UPORT[1]}/; s/U2/${UPORT[2]}/; s/U3/${UPORT[3]}/" \
    >"$T/phoenix.yaml" <<'EOF'
admin: { address: { socket_address: { address: 127.0.0.1, port_value: ADMIN } } }
static_resources:
  listeners:
  - name: chaos
    address: { socket_address: { address: 127.0.0.1, port_value: PORT } }
    http_connection_manager:
      stat_prefix: chaos
      route_config:
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: { prefix: / }
            route:
              cluster: app
              timeout: 5s
              retry_policy:
                retry_on: "5xx,reset,connect-failure"
                num_retries: 3
                per_try_timeout: 1s
                retry_back_off: { base_interval: 0.005s, max_interval: 0.05s }
  clusters:
  - name: app
    connect_timeout: 0.25s
    lb_policy: LEAST_REQUEST
    outlier_detection: { consecutive_gateway_failure: 2, consecutive_5xx: 3, base_ejection_time: 1s, max_ejection_percent: 67 }
    health_checks:
    - { interval: 0.2s, timeout: 0.2s, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /healthz } }
    load_assignment:
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: U1 } } }
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: U2 } } }
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: U3 } } }
EOF
  # nginx: passive failure detection (max_fails) + next-upstream retries; no active checks in OSS.
  mkdir -p "$T/nginx/tmp"
  cat >"$T/nginx.conf" <<EOF
worker_processes 1; daemon off; master_process on;
pid $T/nginx.pid; error_log $T/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/nginx/tmp/body; proxy_temp_path $T/nginx/tmp/proxy;
  fastcgi_temp_path $T/nginx/tmp/fcgi; uwsgi_temp_path $T/nginx/tmp/uwsgi; scgi_temp_path $T/nginx/tmp/scgi;
  upstream app {
    server 127.0.0.1:${UPORT[1]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${UPORT[2]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${UPORT[3]} max_fails=1 fail_timeout=1s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${PORT[nginx]};
    location / {
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
      proxy_next_upstream_tries 4; proxy_connect_timeout 250ms; proxy_read_timeout 5s;
    }
  }
}
EOF
  # HAProxy: retries + redispatch, layer-7 observation and active health checks.
  local i srv=""
  for i in 1 2 3; do
    srv+="  server u$i 127.0.0.1:${UPORT[$i]} check inter 200ms fall 1 rise 1 observe layer7 error-limit 2 on-error mark-down
"
  done
  cat >"$T/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  option http-keep-alive
  timeout connect 250ms
  timeout server 5s
  timeout client 10s
  retries 3
  option redispatch 1
  retry-on all-retryable-errors
  http-reuse safe
frontend fe
  bind 127.0.0.1:${PORT[haproxy]}
  default_backend app
backend app
  balance leastconn
  option httpchk GET /healthz
$srv
EOF
}

# start_proxy NAME: launch NAME and poll until it is ready; sets PROXY_PID.
start_proxy() {
  local name=$1 cmd
  if port_open "${PORT[$name]}" || { [ "$name" = phoenix ] && port_open "$ADMIN"; }; then
    echo "chaos: a port of $name is already in use" >"$T/$name.log"; return 1
  fi
  case $name in
    phoenix) cmd=("$PHOENIX_BIN" -c "$T/phoenix.yaml" --concurrency 1 --log-level warn) ;;
    nginx) cmd=(nginx -p "$T/nginx" -e "$T/nginx.err" -c "$T/nginx.conf") ;;
    haproxy) cmd=(haproxy -db -f "$T/haproxy.cfg") ;;
  esac
  "${PIN_PROXY[@]}" "${cmd[@]}" >"$T/$name.log" 2>&1 &
  PROXY_PID=$!  # the proxy itself (taskset execs it); nginx: the master
  for _ in $(seq 200); do  # up to 10 s
    kill -0 "$PROXY_PID" 2>/dev/null || return 1
    if [ "$name" = phoenix ]; then curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/ready" && return 0
    else port_open "${PORT[$name]}" && return 0; fi
    sleep 0.05
  done
  return 1
}

# to_ms VALUE: wrk latency like 153.00us / 1.20ms / 2.01s -> milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1;
    if (f < 0) print "nan"; else printf "%.2f", n * f }'
}

# run_proxy NAME: one chaos run through NAME; fills REQS/FAILS/SUCC/RPS/P99.
run_proxy() {
  local name=$1 out="$T/wrk_$1.txt" code non2xx sock t0
  ensure_upstreams
  if [ "$name" = phoenix ] && ! "$PHOENIX_BIN" --mode validate -c "$T/phoenix.yaml" >"$T/phoenix.log" 2>&1; then
    echo "chaos: phoenix config invalid:" >&2; cat "$T/phoenix.log" >&2; FAILED=1; return
  fi
  if ! start_proxy "$name" || ! code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
      "http://127.0.0.1:${PORT[$name]}/") || [ "$code" != 200 ]; then
    echo "chaos: $name failed to start or to proxy (HTTP ${code:-none}); log tail:" >&2
    tail -n20 "$T/$name".{log,err} >&2 2>/dev/null || true
    stop_pid "$PROXY_PID"; PROXY_PID="" FAILED=1; return
  fi
  log "$name: ${DURATION}s of wrk -t1 -c$CONNS while killing an upstream every ${KILL_EVERY}s"
  t0=$(now_us)
  "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$name]}/" >"$out" &
  WRK_PID=$!
  play_chaos "$t0"  # returns before wrk ends: the last event is < DURATION
  wait "$WRK_PID" || echo "chaos: wrk failed against $name" >&2
  WRK_PID=""
  stop_pid "$PROXY_PID"; PROXY_PID=""
  log "$name: chaos events: $(tr '\n' ',' <"$T/chaos.log" | sed 's/,$//; s/,/, /g' | grep . || echo none)"
  if [ "$(wc -l <"$T/chaos.log")" != "$(wc -l <"$T/schedule")" ]; then
    echo "chaos: $name: schedule not played in full" >&2; FAILED=1
  fi
  ensure_upstreams "after the $name run"
  REQS[$name]=$(awk '/requests in/ {print $1}' "$out")
  if [ -z "${REQS[$name]}" ]; then echo "chaos: no wrk result for $name" >&2; FAILED=1; return; fi
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  # "Socket errors: connect A, read B, write C, timeout D": count read+write+timeout.
  sock=$(awk '/Socket errors/ {gsub(/,/, ""); print $6 + $8 + $10}' "$out")
  log "$name: ${REQS[$name]} requests, non-2xx/3xx ${non2xx:-0}, socket errors: $(awk '/Socket errors/ {
    sub(/^ *Socket errors: */, ""); print}' "$out" | grep . || echo none)"
  FAILS[$name]=$(( ${non2xx:-0} + ${sock:-0} ))
  SUCC[$name]=$(awk -v n="${REQS[$name]}" -v f="${FAILS[$name]}" 'BEGIN { printf "%.3f", n ? (n - f) * 100 / n : 0 }')
  RPS[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
}

# ---- main -------------------------------------------------------------------
write_configs
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for p in "${PROXIES[@]}"; do run_proxy "$p"; done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

cmp_line() {  # cmp_line OTHER: phoenix's success and p99 against OTHER's
  local o=$1
  if [ -z "${SUCC[phoenix]:-}" ] || [ -z "${SUCC[$o]:-}" ]; then echo "vs $o: n/a"; return; fi
  awk -v o="$o" -v s="${SUCC[phoenix]}" -v so="${SUCC[$o]}" -v p="${P99[phoenix]}" -v po="${P99[$o]}" 'BEGIN {
    printf "vs %s: success %.3f%% vs %.3f%% (%+.3f pts, %s), p99 %.2f vs %.2f ms (%s)",
      o, s, so, s - so, (s > so ? "higher" : s == so ? "equal" : "LOWER"), p, po, (p <= po ? "no worse" : "WORSE") }'
}
goal() {  # goal met: success strictly above and p99 no worse than each other proxy
  local o
  for o in "${PROXIES[@]}"; do if [ -z "${SUCC[$o]:-}" ]; then echo "n/a ($o missing)"; return; fi; done
  for o in nginx haproxy; do
    awk -v s="${SUCC[phoenix]}" -v so="${SUCC[$o]}" -v p="${P99[phoenix]}" -v po="${P99[$o]}" \
      'BEGIN { exit !(s > so && p <= po) }' || { echo "NOT MET"; return; }
  done
  echo MET
}

echo
echo "Chaos run: ${DURATION}s per proxy, wrk -t1 -c$CONNS; SIGKILL one of 3 upstreams every ${KILL_EVERY}s (round robin), restart after ${RESTART_AFTER}s"
echo "Kills at (s): $(awk '$2 == "kill" {printf "%s%g", sep, $1 / 1e6; sep = " "}' "$T/schedule"); pinning: $PINNING"
echo "Load average before/after: $LOAD_BEFORE / $LOAD_AFTER$(awk -v l="${LOAD_BEFORE%% *}" \
  'BEGIN { if (l >= 1) print " (other work was running: figures are noisy)" }')"
printf '%-8s %9s %9s %10s %8s %9s\n' proxy requests failures "success %" rps "p99 ms"
for p in "${PROXIES[@]}"; do
  printf '%-8s %9s %9s %10s %8s %9s\n' "$p" "${REQS[$p]:--}" "${FAILS[$p]:--}" "${SUCC[$p]:--}" "${RPS[$p]:--}" "${P99[$p]:--}"
done
echo "phoenix $(cmp_line nginx); $(cmp_line haproxy)"
echo "goal (success above both, p99 no worse): $(goal)"
echo
echo "| proxy | requests | failures | success % | req/s | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|"
for p in "${PROXIES[@]}"; do
  echo "| $p | ${REQS[$p]:--} | ${FAILS[$p]:--} | ${SUCC[$p]:--} | ${RPS[$p]:--} | ${P99[$p]:--} |"
done
exit "$FAILED"
