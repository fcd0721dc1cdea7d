#!/usr/bin/env bash
# Benchmark (not a test): what the global_ratelimit filter costs. The same phoenix config
# without the filter, with it counting exactly (phoenix-grl: every request pays one Redis
# round trip, one EVALSHA of the increment script), and with token leases (phoenix-lease,
# max_lease: 100: one round trip per lease of up to 100 requests), in front of run.sh's nginx
# upstream; the limit is keyed by client address and set so high it never triggers, so none
# is refused. Prints req/s of each, the ratios to without, the p99 latency the filter adds,
# and phoenix's CPU time per request (on 2 CPUs Redis shares the load side's CPU, so req/s
# partly measures that).
#
# Usage: tools/bench/global_ratelimit.sh [--duration SECS] [--rounds N] [--connections N]
#   --duration 10, --rounds 3, --connections 32 by default
# Env:   PHOENIX_BIN=build/phoenix  the phoenix binary (relative to the repo root or absolute)
#        BENCH_PORT_BASE=18700      first of the 8 ports used (all must be free)
#        BENCH_KEEP_TMP=1           keep the temp dir (configs, logs, wrk output)
# Needs nginx, wrk, redis-server, curl and python3 (tools/setup.sh).
#
# Pinning (as run.sh): phoenix (1 worker) on one CPU; the upstream nginx, redis-server and
# wrk share the other. Rounds alternate the two variants and report medians.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
source "$ROOT/tools/bench/lib.sh"
PHOENIX_BIN=${PHOENIX_BIN:-build/phoenix}
[[ $PHOENIX_BIN == /* ]] || PHOENIX_BIN="$ROOT/$PHOENIX_BIN"
DURATION=10 CONNS=32 ROUNDS=3
BASE=${BENCH_PORT_BASE:-18700}
BODY="hello from upstream"
WORKER_CONNS=4096
PIDS=() FAILED=0
UP_PORT=$BASE REDIS_PORT=$((BASE + 5))
declare -A PORT=([phoenix]=$((BASE + 1)) [phoenix-grl]=$((BASE + 2)) [phoenix-lease]=$((BASE + 6)))
declare -A ADMIN=([phoenix]=$((BASE + 3)) [phoenix-grl]=$((BASE + 4)) [phoenix-lease]=$((BASE + 7)))
VARIANTS=(phoenix phoenix-grl phoenix-lease)
declare -A PID=() DOWN=() RPS_ALL P99_ALL CPU_ALL RPS P99 CPU ERRS

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
for tool in nginx wrk redis-server redis-cli curl; do
  command -v "$tool" >/dev/null || die "$tool not found (tools/setup.sh installs it)"
done
[ -x "$PHOENIX_BIN" ] || die "no phoenix binary at $PHOENIX_BIN (tools/build.sh)"

T=$(mktemp -d /tmp/phoenix-bench-grl.XXXXXX)
trap cleanup EXIT
setup_pinning
nginx_globals on
upstream_conf
phoenix_conf phoenix ""
grl_filters() {  # grl_filters MAX_LEASE: the filter (a limit that never triggers), the router
  echo "
      http_filters:
      - name: phoenix.filters.http.global_ratelimit
        typed_config:
          \"@type\": type.googleapis.com/phoenix.config.v1.GlobalRateLimit
          stat_prefix: bench
          redis: { addresses: [\"127.0.0.1:$REDIS_PORT\"], timeout: 0.1s }
          failure_mode: FAIL_CLOSED
          max_lease: $1
          limits:
          - name: per_client
            key: { client_address: true }
            requests_per_unit: 1000000000
            unit: SECOND
      - name: phoenix.filters.http.router"
}
phoenix_conf phoenix-grl "$(grl_filters 0)"
phoenix_conf phoenix-lease "$(grl_filters 100)"

"${PIN_LOAD[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$T" --logfile "$T/redis.log" &
PIDS+=("$!")
wait_ready redis "$!" sh -c "redis-cli -p $REDIS_PORT ping 2>/dev/null | grep -q PONG"
start upstream
for name in "${VARIANTS[@]}"; do start_proxy "$name"; done
[ "$FAILED" = 0 ] || die "a phoenix did not start"

bench() {  # bench NAME ROUND
  local name=$1 round=$2 url="http://127.0.0.1:${PORT[$1]}/" out="$T/wrk_$1_$2.txt" got
  got=$(curl -s --max-time 5 "$url" || true)
  [ "$got" = "$BODY" ] || die "$name does not proxy (got: '${got:0:80}')"
  log "$name (round $round/$ROUNDS): ${DURATION}s with $CONNS connections"
  if [ "$round" = 1 ]; then "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null; fi
  local ticks0 ticks1
  ticks0=$(cpu_ticks "${PID[$name]}")
  "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out"
  ticks1=$(cpu_ticks "${PID[$name]}")
  # phoenix's CPU time per request (user + system, us): the filter's cost on the proxy itself,
  # also when the load side (which Redis shares here) is what limits req/s.
  CPU_ALL[$name]+="$(awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" \
    '/ requests in / {if ($1 > 0) printf "%.1f", t / hz * 1e6 / $1}' "$out") "
  RPS_ALL[$name]+="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out") "
  P99_ALL[$name]+="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")") "
  ERRS[$name]=$(( ${ERRS[$name]:-0} + $(awk '/Non-2xx/ {e += $NF}
      /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$out") ))
}

for round in $(seq "$ROUNDS"); do
  for ((i = 0; i < ${#VARIANTS[@]}; i++)); do  # The order rotates from round to round.
    bench "${VARIANTS[$(( (i + round - 1) % ${#VARIANTS[@]} ))]}" "$round"
  done
done
for name in "${VARIANTS[@]}"; do
  RPS[$name]=$(echo "${RPS_ALL[$name]}" | median)
  P99[$name]=$(echo "${P99_ALL[$name]}" | median)
  CPU[$name]=$(echo "${CPU_ALL[$name]}" | median)
done
# The filter must have counted in Redis, and refused nothing.
counted=$(redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,:]' '/^cmdstat_(evalsha|eval):/ {n += $3} END {print n + 0}')
errors=0
for name in phoenix-grl phoenix-lease; do
  stats=$(curl -s "http://127.0.0.1:${ADMIN[$name]}/stats")
  errors=$((errors + $(echo "$stats" | awk '/global_ratelimit.bench.redis_error:/ {n += $2} END {print n + 0}')))
  if [ "$name" = phoenix-lease ]; then
    leased=$(echo "$stats" | awk '/global_ratelimit.bench.lease_hit:/ {n += $2} END {print n + 0}')
  fi
done

echo
echo "Pinning: $PINNING"
printf '%-14s %8s %20s %8s %20s %11s\n' variant rps "rps/round" "p99 ms" "p99/round ms" "CPU us/req"
for name in "${VARIANTS[@]}"; do
  printf '%-14s %8s %20s %8s %20s %11s\n' "$name" "${RPS[$name]}" "$(echo ${RPS_ALL[$name]} | tr ' ' /)" \
    "${P99[$name]}" "$(echo ${P99_ALL[$name]} | tr ' ' /)" "${CPU[$name]}"
done
echo
echo "Redis round trips (EVALSHA/EVAL, both variants): ${counted:-0}; requests on a lease: ${leased:-0}; redis_error: ${errors:-0}; non-2xx/socket errors: off ${ERRS[phoenix]}, exact ${ERRS[phoenix-grl]}, leases ${ERRS[phoenix-lease]}"
for name in phoenix-grl phoenix-lease; do
  echo "global_ratelimit ($name): rps $(ratio "${RPS[$name]}" "${RPS[phoenix]}") of without (cost $(awk -v a="${RPS[phoenix]}" -v b="${RPS[$name]}" 'BEGIN { printf "%.1f", (1 - b / a) * 100 }')%, goal < 10%), p99 +$(awk -v a="${P99[phoenix]}" -v b="${P99[$name]}" 'BEGIN { printf "%.3f", b - a }') ms, phoenix CPU/req $(ratio "${CPU[$name]}" "${CPU[phoenix]}")"
done
[ "${ERRS[phoenix-grl]}" = 0 ] && [ "${ERRS[phoenix-lease]}" = 0 ] && [ "$errors" = 0 ] && [ "${leased:-0}" -gt 0 ] ||
  { echo "bench: errors with the filter on (or no request on a lease)" >&2; exit 1; }
