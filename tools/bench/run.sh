#!/usr/bin/env bash
# Benchmark (not a test): phoenix vs nginx vs HAProxy, side by side, in front of
# the same nginx upstream. Prints throughput/latency ratios, each proxy's CPU time
# per request (user + system, from /proc: what the throughput costs it, also when the
# load side is what limits req/s), RSS per idle keep-alive connection and the
# per-request cost of the Phoenix-app policy
# (deny /crash + per-client rate limit), then a markdown summary for the README.
#
# Usage: tools/bench/run.sh [--duration SECS] [--rounds N] [--connections N]
#                           [--idle-conns N] [--no-policy]
# Env:   PHOENIX_BIN=build/phoenix  the phoenix binary (relative to the repo root or absolute)
#        BENCH_SKIP_PHOENIX=1  bench only direct/nginx/haproxy (no build/phoenix)
#        BENCH_PORT_BASE=18100 first of the 9 ports used (all must be free)
#        BENCH_KEEP_TMP=1      keep the temp dir (configs, logs, wrk output)
#
# Policy cost: each proxy also runs a second instance ("<proxy>-policy") with the
# Phoenix-app policy: a case-insensitive deny of ^/crash([/;].*)?$ (403) and a
# rate limit keyed by client address, set so high it never triggers: we measure
# the cost of evaluating the policy on every request, not of rejecting. nginx:
# `location ~*` + limit_req; HAProxy: path_reg deny + stick-table track-sc0;
# phoenix: access_policy + local_ratelimit filters. --no-policy skips them.
#
# Pinning: every proxy runs on the same single CPU (PROXY_CPU) so they all get
# identical treatment; the upstream nginx, wrk and the idle-connection helper
# share the other CPU. The "direct" row (wrk -> upstream, same CPU) is thus the
# ceiling the load side can sustain: a proxy close to it is not the bottleneck.
# With 3+ CPUs wrk gets its own CPU; with 1 CPU nothing is pinned.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
source "$ROOT/tools/bench/lib.sh"
PHOENIX_BIN=${PHOENIX_BIN:-build/phoenix}
[[ $PHOENIX_BIN == /* ]] || PHOENIX_BIN="$ROOT/$PHOENIX_BIN"
DURATION=10 CONNS=32 IDLE=10000 ROUNDS=3 POLICY=1
SKIP_PHOENIX=${BENCH_SKIP_PHOENIX:-0}
BASE=${BENCH_PORT_BASE:-18100}
BODY="hello from upstream"
# The policy (same regex for all three proxies) and the never-reached rate.
CRASH_RE='^/crash([/;].*)?$'
HUGE_RATE=1000000
PIDS=() FAILED=0
declare -A PORT=([direct]=$BASE [nginx]=$((BASE + 1)) [haproxy]=$((BASE + 2)) [phoenix]=$((BASE + 3))
                 [nginx-policy]=$((BASE + 5)) [haproxy-policy]=$((BASE + 6)) [phoenix-policy]=$((BASE + 7)))
declare -A ADMIN=([phoenix]=$((BASE + 4)) [phoenix-policy]=$((BASE + 8)))
UP_PORT=${PORT[direct]}
# PID: server pid per name; DOWN[name]=1: failed to start or to enforce its policy.
declare -A PID=() DOWN=()
declare -A RPS P50 P99 ERRS RSS0 RSS1 KIB RPS_ALL P50_ALL P99_ALL CPU CPU_ALL LOAD LOAD_ALL LUSE LUSE_ALL

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --duration) DURATION=$2; shift 2 ;;
      --rounds) ROUNDS=$2; shift 2 ;;
      --connections) CONNS=$2; shift 2 ;;
      --idle-conns) IDLE=$2; shift 2 ;;
      --no-policy) POLICY=0; shift ;;
      -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
}

write_configs() {
  WORKER_CONNS=$((IDLE + 1000))
  nginx_globals on
  upstream_conf
  nginx_conf nginx "" ""
  haproxy_conf haproxy ""
  phoenix_conf phoenix ""

  # Policy variants. nginx: the regex location answers in the rewrite phase, before
  # limit_req (preaccess), so every other request goes through the server-level limit_req.
  nginx_conf nginx-policy "
  limit_req_zone \$binary_remote_addr zone=bench:10m rate=${HUGE_RATE}r/s;" "
    limit_req zone=bench burst=$HUGE_RATE nodelay;
    location ~* \"$CRASH_RE\" { return 403; }"  # quoted: the regex holds a ';'
  haproxy_conf haproxy-policy "
  stick-table type ip size 100k expire 10s store http_req_rate(1s)
  http-request track-sc0 src
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt $HUGE_RATE }
  http-request deny deny_status 403 if { path_reg -i $CRASH_RE }"
  # phoenix's safe_regex is a full match, hence no ^...$ here.
  phoenix_conf phoenix-policy "
      http_filters:
      - name: phoenix.filters.http.access_policy
        typed_config:
          \"@type\": type.googleapis.com/phoenix.config.v1.AccessPolicy
          rules:
          - name: deny_crash
            action: DENY
            match:
              path: { safe_regex: { regex: \"/crash([/;].*)?\" }, ignore_case: true }
      - name: phoenix.filters.http.local_ratelimit
        typed_config:
          \"@type\": type.googleapis.com/phoenix.config.v1.LocalRateLimit
          limits:
          - name: per_client
            key: { client_address: true }
            token_bucket: { max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s }
      - name: phoenix.filters.http.router"
}

# check_policy NAME: a policy variant must deny /crash in every spelling the regex
# covers, let lookalikes through, and still proxy / - else its rps would be meaningless.
check_policy() {
  local name=$1 url="http://127.0.0.1:${PORT[$1]}" path_want path want code got bad=0
  for path_want in /CRASH:403 /crash:403 /Crash/x:403 "/crash;a=b:403" /crashed:200 /x/crash:200; do
    path=${path_want%:*} want=${path_want##*:}
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --path-as-is "$url$path" || true)
    if [ "$code" != "$want" ]; then
      echo "bench: POLICY NOT ENFORCED by $name: $path -> $code (want $want)" >&2; bad=1
    fi
  done
  got=$(curl -s --max-time 5 "$url/" || true)
  if [ "$got" != "$BODY" ]; then
    echo "bench: $name does not proxy / (got: '${got:0:80}')" >&2; bad=1
  fi
  if [ "$bad" = 1 ]; then FAILED=1 DOWN[$name]=1; fi
}

# bench_target NAME ROUND: one wrk run; figures are appended to the NAME's per-round lists.
bench_target() {
  local name=$1 round=$2 url="http://127.0.0.1:${PORT[$1]}/" out="$T/wrk_$1_$2.txt" got
  got=$(curl -s --max-time 5 "$url" || true)
  if [ "$got" != "$BODY" ]; then
    echo "bench: $name does not proxy (got: '${got:0:80}')" >&2; FAILED=1; return
  fi
  log "$name (round $round/$ROUNDS): ${DURATION}s with $CONNS connections"
  if [ "$round" = 1 ]; then "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null; fi
  local ticks0=0 ticks1=0 pid=${PID[$name]:-} load0 load1 hz
  hz=$(getconf CLK_TCK)
  if [ -n "$pid" ]; then ticks0=$(cpu_ticks "$pid"); fi
  load0=$(cpu_busy_ticks "$LOAD_CPU")
  "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out"
  load1=$(cpu_busy_ticks "$LOAD_CPU")
  if [ -n "$pid" ]; then ticks1=$(cpu_ticks "$pid"); fi
  # The load CPU's busy time per request (wrk, the upstream and the kernel work they
  # cause there): when that CPU is saturated it is what bounds req/s, for every target.
  if [ -n "$LOAD_CPU" ]; then
    LOAD_ALL[$name]+="$(awk -v t=$((load1 - load0)) -v hz="$hz" \
      '/ requests in / {if ($1 > 0) printf "%.1f", t / hz * 1e6 / $1}' "$out") "
    LUSE_ALL[$name]+="$(awk -v t=$((load1 - load0)) -v hz="$hz" -v d="$DURATION" \
      'BEGIN {printf "%.0f", t / hz / d * 100}') "
  fi
  # The proxy's CPU time per request (user + system, µs): what throughput costs it, also
  # when the load side, not the proxy, is what limits req/s on a small machine.
  if [ -n "$pid" ] && [ "$name" != direct ]; then
    CPU_ALL[$name]+="$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" \
      '/ requests in / {if ($1 > 0) printf "%.1f", t / hz * 1e6 / $1}' "$out") "
  fi
  RPS_ALL[$name]+="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out") "
  P50_ALL[$name]+="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")") "
  P99_ALL[$name]+="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")") "
  ERRS[$name]=$(( ${ERRS[$name]:-0} + $(awk '/Non-2xx/ {e += $NF}
      /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$out") ))
}

# cost WITHOUT WITH -> (1 - with/without) * 100 with 1 decimal, or n/a
cost() {
  if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then echo n/a; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == 0) print "n/a"; else printf "%.1f", (1 - b / a) * 100 }'
}

# round_costs PROXY -> the cost of each round ("2.1/-0.4/3.0"): rounds run the two
# variants close together, so the spread shows how much of the cost is noise.
round_costs() {
  local -a a b
  local i out=""
  read -r -a a <<<"${RPS_ALL[$1]:-}"
  read -r -a b <<<"${RPS_ALL[$1-policy]:-}"
  if [ ${#a[@]} = 0 ] || [ ${#a[@]} != ${#b[@]} ]; then echo n/a; return; fi
  for i in "${!a[@]}"; do out+="${out:+/}$(cost "${a[$i]}" "${b[$i]}")"; done
  echo "$out"
}

report() {
  local t
  echo
  echo "Pinning: $PINNING"
  printf '%-15s %10s %9s %9s %8s %12s %14s %10s\n' target rps "p50 ms" "p99 ms" errors "CPU us/req" \
    "load us/req" "load CPU%"
  for t in "${TARGETS[@]}"; do
    printf '%-15s %10s %9s %9s %8s %12s %14s %10s\n' "$t" "${RPS[$t]:--}" "${P50[$t]:--}" "${P99[$t]:--}" \
      "${ERRS[$t]:--}" "${CPU[$t]:--}" "${LOAD[$t]:--}" "${LUSE[$t]:--}"
  done
  echo "(CPU us/req: the proxy's; load us/req and load CPU%: the CPU of wrk and the upstream)"
  echo
  printf '%-10s %12s %12s %14s\n' proxy "RSS0 KiB" "RSS1 KiB" "KiB/idle conn"
  for t in "${PROXIES[@]}"; do
    printf '%-10s %12s %12s %14s\n' "$t" "${RSS0[$t]:--}" "${RSS1[$t]:--}" "${KIB[$t]:--}"
  done
  echo
  local vs_ngx vs_hap
  vs_ngx="rps $(ratio "${RPS[phoenix]:-}" "${RPS[nginx]:-}"), CPU/req $(ratio "${CPU[phoenix]:-}" "${CPU[nginx]:-}"), p99 $(ratio "${P99[phoenix]:-}" "${P99[nginx]:-}"), KiB/idle conn $(ratio "${KIB[phoenix]:-}" "${KIB[nginx]:-}")"
  vs_hap="rps $(ratio "${RPS[phoenix]:-}" "${RPS[haproxy]:-}"), CPU/req $(ratio "${CPU[phoenix]:-}" "${CPU[haproxy]:-}"), p99 $(ratio "${P99[phoenix]:-}" "${P99[haproxy]:-}"), KiB/idle conn $(ratio "${KIB[phoenix]:-}" "${KIB[haproxy]:-}")"
  echo "phoenix/nginx:   $vs_ngx"
  echo "phoenix/haproxy: $vs_hap"
  if [ "$POLICY" = 1 ]; then
    echo
    echo "Policy cost (deny ^/crash([/;].*)?\$ + per-client rate limit that never triggers):"
    printf '%-10s %10s %10s %8s %18s %12s %12s\n' proxy "rps off" "rps on" "cost %" "cost %/round" "p99 off ms" "p99 on ms"
    for t in "${PROXIES[@]}"; do
      printf '%-10s %10s %10s %8s %18s %12s %12s\n' "$t" "${RPS[$t]:--}" "${RPS[$t-policy]:--}" \
        "$(cost "${RPS[$t]:-}" "${RPS[$t-policy]:-}")" "$(round_costs "$t")" "${P99[$t]:--}" "${P99[$t-policy]:--}"
    done
    if [ -n "${RPS[phoenix-policy]:-}" ]; then
      echo "phoenix policy cost: $(cost "${RPS[phoenix]:-}" "${RPS[phoenix-policy]}")% of rps (goal: < 5%)"
    fi
  fi
  echo
  echo "---- README summary (markdown) ----"
  echo "$(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p' | head -n1), pinning: $PINNING."
  echo "wrk -t1 -c$CONNS -d${DURATION}s, median of $ROUNDS interleaved rounds; 1 worker/thread per proxy; idle RSS with $IDLE keep-alive conns."
  echo
  echo "| target | req/s | p50 ms | p99 ms | errors | CPU µs/req | KiB/idle conn |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in "${TARGETS[@]}"; do
    echo "| $t | ${RPS[$t]:--} | ${P50[$t]:--} | ${P99[$t]:--} | ${ERRS[$t]:--} | ${CPU[$t]:--} | ${KIB[$t]:--} |"
  done
  echo
  for t in "${!DOWN[@]}"; do echo "($t failed to start or to enforce its policy)"; done
  if [ ${#DOWN[@]} -gt 0 ]; then echo; fi
  echo "phoenix/nginx: $vs_ngx. phoenix/haproxy: $vs_hap."
  if [ "$POLICY" = 1 ]; then
    echo
    echo "Policy cost: \`<proxy>-policy\` denies \`^/crash([/;].*)?\$\` (case-insensitive, 403) and rate-limits per client address at a rate never reached (nginx \`location ~*\` + \`limit_req\`; HAProxy \`path_reg\` deny + stick-table \`track-sc0\`; phoenix \`access_policy\` + \`local_ratelimit\`)."
    echo
    echo "| proxy | req/s without policy | req/s with policy | cost % | p99 ms without | p99 ms with |"
    echo "|---|---:|---:|---:|---:|---:|"
    for t in "${PROXIES[@]}"; do
      echo "| $t | ${RPS[$t]:--} | ${RPS[$t-policy]:--} | $(cost "${RPS[$t]:-}" "${RPS[$t-policy]:-}") | ${P99[$t]:--} | ${P99[$t-policy]:--} |"
    done
  fi
}

main() {
  parse_args "$@"
  # Each policy variant follows its plain twin, so rounds mostly run the two back to back.
  TARGETS=(direct nginx) PROXIES=(nginx haproxy)
  if [ "$POLICY" = 1 ]; then TARGETS+=(nginx-policy); fi
  TARGETS+=(haproxy)
  if [ "$POLICY" = 1 ]; then TARGETS+=(haproxy-policy); fi
  if [ "$SKIP_PHOENIX" != 1 ]; then
    [ -x "$PHOENIX_BIN" ] || die "$PHOENIX_BIN not found: run tools/build.sh first"
    TARGETS+=(phoenix) PROXIES+=(phoenix)
    if [ "$POLICY" = 1 ]; then TARGETS+=(phoenix-policy); fi
  fi
  for cmd in nginx haproxy wrk curl python3; do
    command -v "$cmd" >/dev/null || die "$cmd missing: run tools/setup.sh"
  done
  for p in "${PORT[@]}" "${ADMIN[@]}"; do
    if port_open "$p"; then die "port $p already in use (set BENCH_PORT_BASE)"; fi
  done
  if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then  # e.g. a build running
    echo "bench: WARNING: load average $(cut -d' ' -f1 /proc/loadavg) > 0.5; figures will be noisy" >&2
  fi
  ulimit -n "$(ulimit -Hn)"  # inherited by every proxy and the idle helper
  [ "$(ulimit -n)" -ge $((IDLE + 1100)) ] || die "ulimit -n $(ulimit -n) too low for --idle-conns $IDLE"

  T=$(mktemp -d /tmp/phoenix-bench.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  setup_pinning
  log "pinning: $PINNING; temp dir $T"
  write_configs

  start upstream || die "upstream nginx failed: $(tail -n5 "$T/upstream.err" "$T/upstream.log")"
  start nginx || die "nginx failed: $(tail -n5 "$T/nginx.err" "$T/nginx.log")"
  start haproxy || die "haproxy failed: $(tail -n5 "$T/haproxy.log")"
  local t
  for t in "${TARGETS[@]}"; do
    case $t in direct|nginx|haproxy) ;; *) start_proxy "$t" ;; esac
  done
  for t in "${TARGETS[@]}"; do
    if [[ $t == *-policy ]] && [ -z "${DOWN[$t]:-}" ]; then check_policy "$t"; fi
  done

  # Rounds interleave the targets (rotating the order) and report medians, so a noisy
  # neighbour on a shared machine skews one sample rather than one target.
  local round i n=${#TARGETS[@]}
  for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
      t=${TARGETS[$(( (i + round - 1) % n ))]}
      if [ -n "${DOWN[$t]:-}" ]; then continue; fi
      bench_target "$t" "$round"
    done
  done
  for t in "${TARGETS[@]}"; do
    [ -n "${RPS_ALL[$t]:-}" ] || continue
    RPS[$t]=$(median <<<"${RPS_ALL[$t]}")
    P50[$t]=$(median <<<"${P50_ALL[$t]}")
    P99[$t]=$(median <<<"${P99_ALL[$t]}")
    if [ -n "${CPU_ALL[$t]:-}" ]; then CPU[$t]=$(median <<<"${CPU_ALL[$t]}"); fi
    if [ -n "${LOAD_ALL[$t]:-}" ]; then LOAD[$t]=$(median <<<"${LOAD_ALL[$t]}"); fi
    if [ -n "${LUSE_ALL[$t]:-}" ]; then LUSE[$t]=$(median <<<"${LUSE_ALL[$t]}"); fi
  done
  # Idle-connection RSS: the plain proxies only (the policy does not change it).
  for t in "${PROXIES[@]}"; do
    if [ -n "${DOWN[$t]:-}" ]; then continue; fi
    measure_idle "$t" "${PID[$t]}"
  done
  report
  if [ "$FAILED" != 0 ]; then echo "bench: some targets failed (see above)" >&2; exit 1; fi
}

main "$@"
