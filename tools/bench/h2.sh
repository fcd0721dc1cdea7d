#!/usr/bin/env bash
# Benchmark (not a test): h2c (HTTP/2 cleartext, prior knowledge) throughput of phoenix,
# nginx and HAProxy side by side, each proxying over HTTP/1.1 keep-alive to the same
# nginx upstream as run.sh. Per proxy: req/s, mean request latency (p99 with --p99), the
# proxy's CPU time per request and CPU use, the upstream's CPU time per request (what the
# proxy's way of talking to it costs the CPU it shares with h2load); ratios phoenix/nginx and phoenix/haproxy,
# then a markdown summary for the README. With --grpc: gRPC unary calls instead, proxied
# over h2c to an h2c upstream (below).
#
# Usage: tools/bench/h2.sh [--grpc [--grpc-upstream minimal|nginx]] [--duration SECS]
#                          [--rounds N] [--connections N] [--streams N] [--p99]
#   --duration 10, --rounds 3, --connections 32, --streams 10 by default
#   --p99   also report p99 latency, from h2load --log-file (h2load itself prints only
#           min/max/mean/sd); that costs h2load one write() per request on the load CPU
#   --grpc  gRPC unary throughput (see "gRPC mode")
#   --grpc-upstream  the gRPC upstream: minimal (default) or nginx (see "gRPC mode")
# Env:   PHOENIX_BIN=build/phoenix  the phoenix binary (relative to the repo root or absolute)
#        BENCH_SKIP_PHOENIX=1       bench only nginx/haproxy
#        BENCH_PORT_BASE=18500      first of the 5 ports used (all must be free)
#        BENCH_KEEP_TMP=1           keep the temp dir (configs, logs, h2load output)
# Needs nginx, haproxy, h2load and nghttp (nghttp2-client), curl and python3; for --grpc cc
# and libnghttp2-dev (the minimal upstream) or nginx's echo module (--grpc-upstream nginx);
# all from tools/setup.sh.
#
# Load: h2load -cC -mM -D SECS http://127.0.0.1:PORT/ (h2c with prior knowledge: no
# Upgrade, the connection opens with the HTTP/2 preface), after a 2 s warm-up in round 1.
# Proxies (1 worker/thread each, as run.sh):
#   nginx:   `listen ... http2;` on a plain listener (h2c only there, nginx 1.22);
#            keepalive_requests/keepalive_timeout also bound its h2 connections.
#   HAProxy: `bind ... proto h2`; http-reuse always; tune.runqueue-depth 4000 (see below).
#   phoenix: run.sh's config (but for the idle pool below): its listener detects the
#            h2 preface (codec_type AUTO, the default).
# C x M streams are in flight, each needing its own HTTP/1.1 upstream connection, so
# every proxy may keep that many idle upstream connections (nginx keepalive, phoenix
# max_idle_connections_per_host; HAProxy keeps all by default): with run.sh's 64/128 the
# rest would reconnect per request. Before measuring, each proxy must answer
# `curl --http2-prior-knowledge` with HTTP/2 and the upstream's body, else the run aborts.
# "errors" is h2load's "failed" (non-2xx/3xx and stream/connection errors); any error
# prints the h2load output and the proxy's log tail.
#
# gRPC mode (--grpc): h2load POSTs one small gRPC message (12 bytes: a 5-byte prefix and a
# 7-byte protobuf) to $GRPC_PATH with `content-type: application/grpc` and `te: trailers`.
# The upstream answers every call, once it has read the request, as a gRPC success: 200,
# one empty message (5 zero bytes) and the trailer `grpc-status: 0`. By default it is
# tools/bench/grpc_upstream.c ("minimal": h2c, one thread, the headers a gRPC server sends,
# a reply's frames in one write, as gRPC servers typically do); with --grpc-upstream nginx,
# nginx with `listen ... http2` (lib.sh grpc_upstream_conf), which writes each reply in
# two writes (HEADERS, then DATA and trailers) and adds server and date. Why not nginx by
# default: it costs the load CPU 6-7 us per call, so the load CPU saturated first
# (99-100%, phoenix at 78%) and req/s measured h2load + nginx rather than the proxies.
# The upstream's way of writing also changes a proxy's own cost: at its default run-queue
# depth HAProxy 2.6 sent the frames of replies that arrive together on one by one (see
# HAPROXY_GLOBAL below). Proxies, talking h2c to it:
#   nginx:   `grpc_pass grpc://backend` with keepalive; nginx sends one stream per upstream
#            connection (no multiplexing), so it keeps up to C x M of them.
#   HAProxy: `bind ... proto h2`, backend `server ... proto h2` (multiplexed, http-reuse always).
#   phoenix: the cluster has `protocol: HTTP2` (multiplexed).
# Before measuring, nghttp must get from each proxy HTTP/2 200, a message and
# `grpc-status: 0` in the trailers, else the run aborts. h2load does not read grpc-status
# (a gRPC error can be an HTTP 200), so every run also checks h2load's DATA byte count:
# at least the 5 bytes of the reply per succeeded request (a Trailers-Only error has none);
# "errors" then also counts the succeeded requests that had no reply message.
#
# Pinning (as run.sh): every proxy runs on the same single CPU; the upstream and
# h2load share the other CPU (with 3+ CPUs h2load gets its own). "proxy CPU %" is the
# proxy's CPU time over the h2load run: well under 100% means the load side, not the
# proxy, limits req/s, and CPU us/req is then the fairer comparison. Rounds interleave
# the proxies (rotating the order) and report medians.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
source "$ROOT/tools/bench/lib.sh"
PHOENIX_BIN=${PHOENIX_BIN:-build/phoenix}
[[ $PHOENIX_BIN == /* ]] || PHOENIX_BIN="$ROOT/$PHOENIX_BIN"
DURATION=10 CONNS=32 STREAMS=10 ROUNDS=3 WITH_P99=0 GRPC=0 GRPC_UPSTREAM=
GRPC_PATH=/phoenix.test.Echo/Unary
# Set by write_configs: the request path, h2load's extra arguments, the check per proxy,
# and how the report names the load.
URL_PATH=/ LOAD_ARGS=() CHECK=check_h2c LOAD_DESC="h2c" LOAD_NAME="h2c"
SKIP_PHOENIX=${BENCH_SKIP_PHOENIX:-0}
BASE=${BENCH_PORT_BASE:-18500}
BODY="hello from upstream"
WORKER_CONNS=4096  # 3 proxies x C*M upstream connections, all open at once at the upstream
PIDS=() FAILED=0
# HAProxy runs at most tune.runqueue-depth tasks at once (by default "between 35 and 280"
# by thread count; 280 measured the same as the default here). With 320 streams in flight
# and replies arriving together from the gRPC upstream, that split its work into small
# batches and it sent each frame on by itself: ~13-14.5 us per call. From 1000 on it takes
# them in one pass: ~7 us per call, ~1.8x the req/s; h2c does not change. Measured on
# 2026-12-07 with 280, 500, 1000, 4000 and 10000.
HAPROXY_GLOBAL=$'\n  tune.runqueue-depth 4000'
UP_PORT=$BASE
declare -A PORT=([nginx]=$((BASE + 1)) [haproxy]=$((BASE + 2)) [phoenix]=$((BASE + 3)))
declare -A ADMIN=([phoenix]=$((BASE + 4)))
# PID: server pid per name; DOWN[name]=1: failed to start or its h2c check.
declare -A PID=() DOWN=()
# RPS req/s, MEAN and P99 latency (ms), CPU (proxy us per request), USE (proxy CPU %).
# LOAD and LUSE: the load CPU's (h2load + upstream) busy us per request and busy %.
declare -A RPS MEAN P99 CPU USE UP ERRS RPS_ALL MEAN_ALL P99_ALL CPU_ALL USE_ALL UP_ALL
declare -A LOAD LUSE LOAD_ALL LUSE_ALL

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --duration) DURATION=$2; shift 2 ;;
      --rounds) ROUNDS=$2; shift 2 ;;
      --connections) CONNS=$2; shift 2 ;;
      --streams) STREAMS=$2; shift 2 ;;
      --p99) WITH_P99=1; shift ;;
      --grpc) GRPC=1; shift ;;
      --grpc-upstream)
        [[ $2 == minimal || $2 == nginx ]] || die "--grpc-upstream: minimal or nginx, not '$2'"
        GRPC_UPSTREAM=$2; shift 2 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  if [ "$GRPC" = 1 ]; then GRPC_UPSTREAM=${GRPC_UPSTREAM:-minimal}
  elif [ -n "$GRPC_UPSTREAM" ]; then die "--grpc-upstream needs --grpc"; fi
}

write_configs() {
  UP_IDLE=$((CONNS * STREAMS))
  nginx_globals on
  if [ "$GRPC" = 1 ]; then
    case $GRPC_UPSTREAM in
      minimal) grpc_upstream_minimal_conf || die "cannot build tools/bench/grpc_upstream.c" ;;
      nginx) grpc_upstream_conf ;;
    esac
    nginx_conf nginx "" "" " http2" "grpc_pass grpc://backend;"
    haproxy_conf haproxy "" " proto h2" "$HAPROXY_GLOBAL" " proto h2"
    phoenix_conf phoenix "" "    protocol: HTTP2"
    # One gRPC message: not compressed, length 7, protobuf field 1 = "hello".
    printf '\0\0\0\0\7\n\5hello' >"$T/grpc_req.bin"
    URL_PATH=$GRPC_PATH CHECK=check_grpc LOAD_NAME="gRPC"
    LOAD_ARGS=(-d "$T/grpc_req.bin" -H 'content-type: application/grpc' -H 'te: trailers')
    LOAD_DESC="gRPC unary over h2c (POST $GRPC_PATH, 12-byte request, 5-byte reply + grpc-status trailer), h2c to the upstream ($GRPC_UPSTREAM)"
  else
    upstream_conf
    nginx_conf nginx "" "" " http2"
    haproxy_conf haproxy "" " proto h2" "$HAPROXY_GLOBAL"
    phoenix_conf phoenix ""
    LOAD_DESC="h2c (prior knowledge), HTTP/1.1 keep-alive to the upstream"
  fi
}

# check_h2c NAME: the proxy must answer an h2c prior-knowledge request with HTTP/2 and the
# upstream's body; otherwise h2load would measure something else (or nothing).
check_h2c() {
  local name=$1 url="http://127.0.0.1:${PORT[$1]}/" ver got
  ver=$(curl -sS --http2-prior-knowledge --max-time 5 -o "$T/h2c_$name.body" \
    -w '%{http_version}' "$url" 2>"$T/h2c_$name.err" || true)
  got=$(cat "$T/h2c_$name.body" 2>/dev/null || true)
  if [ "$ver" != 2 ] || [ "$got" != "$BODY" ]; then
    echo "bench: $name does not answer h2c (prior knowledge) with HTTP/2 and the upstream's" \
      "body: http_version '$ver', body '${got:0:80}' $(head -c 200 "$T/h2c_$name.err")" >&2
    FAILED=1 DOWN[$name]=1
  fi
}

# check_grpc NAME: one gRPC unary call to PORT[NAME] with nghttp (curl 7.88 fails an HTTP/2
# upload whose response has trailers, "Stream error in the HTTP/2 framing layer"): HTTP/2
# 200, at least one DATA byte, and grpc-status 0 in a HEADERS frame after the DATA (the
# trailers). nghttp -v prints a frame's header fields as they arrive, so a grpc-status line
# after a DATA line is a trailer.
check_grpc() {
  local name=$1 out="$T/grpc_check_$1.txt" got status data trailer head
  timeout 5 nghttp -v -n -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$T/grpc_req.bin" "http://127.0.0.1:${PORT[$name]}$GRPC_PATH" >"$out" 2>&1 || true
  got=$(awk '
    /recv \(stream_id=[0-9]+\) :status: / {status = $NF}
    /recv DATA frame <length=/ {l = $0; sub(/.*length=/, "", l); data += l + 0}
    /recv \(stream_id=[0-9]+\) grpc-status: / {if (data > 0) trailer = $NF; else head = $NF}
    END {printf "%s %d %s %s", status == "" ? "none" : status, data,
                trailer == "" ? "none" : trailer, head == "" ? "none" : head}' "$out")
  read -r status data trailer head <<<"$got"
  if [ "$status" != 200 ] || [ "$data" -lt 5 ] || [ "$trailer" != 0 ]; then
    echo "bench: $name does not answer a gRPC unary call with HTTP/2 200, the reply message" \
      "and grpc-status 0 in the trailers: :status $status, $data DATA bytes, trailer" \
      "grpc-status $trailer, header grpc-status $head; nghttp output tail:" >&2
    tail -n 15 "$out" >&2
    FAILED=1 DOWN[$name]=1
  fi
}

# h2load_field OUT WHAT: a figure of an h2load output: rps, requests (done), succeeded,
# failed, mean (the "time for request" mean, e.g. 1.23ms) or data (response body bytes).
h2load_field() {
  awk -v w="$2" '
    w == "rps" && /^finished in/ {print $4}
    w == "requests" && /^requests:/ {print $6}
    w == "succeeded" && /^requests:/ {print $8}
    w == "failed" && /^requests:/ {print $10}
    w == "mean" && /^time for request:/ {print $6}
    w == "data" && /^traffic:/ {for (i = 2; i <= NF; i++) if ($i == "data") {
      v = $(i - 1); gsub(/[()]/, "", v); print v }}' "$1"
}

# p99_ms LOG: nearest-rank p99 of the durations (us, 3rd column) in an h2load --log-file.
p99_ms() {
  cut -f3 "$1" | sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "nan"; exit } i = int(NR * 0.99); if (i < NR * 0.99) i++;
          printf "%.3f", v[i] / 1000 }'
}

# bench_target NAME ROUND: one h2load run; figures are appended to NAME's per-round lists.
bench_target() {
  local name=$1 round=$2 url="http://127.0.0.1:${PORT[$1]}$URL_PATH" out="$T/h2load_$1_$2.txt"
  local pid=${PID[$1]} hz t0 ticks up0 up_ticks load0 load_ticks n failed ok data logargs=()
  hz=$(getconf CLK_TCK)
  if [ "$WITH_P99" = 1 ]; then logargs=(--log-file "$T/h2load_$1_$2.log"); fi
  log "$name (round $round/$ROUNDS): $LOAD_NAME, ${DURATION}s with $CONNS connections x $STREAMS streams"
  if [ "$round" = 1 ]; then
    "${PIN_WRK[@]}" h2load -c"$CONNS" -m"$STREAMS" -D 2 "${LOAD_ARGS[@]}" "$url" >/dev/null 2>&1 || true
  fi
  t0=$(cpu_ticks "$pid") up0=$(cpu_ticks "${PID[upstream]}") load0=$(cpu_busy_ticks "$LOAD_CPU")
  if ! "${PIN_WRK[@]}" h2load -c"$CONNS" -m"$STREAMS" -D "$DURATION" "${LOAD_ARGS[@]}" \
      "${logargs[@]}" "$url" >"$out" 2>&1 || [ -z "$(h2load_field "$out" requests)" ]; then
    echo "bench: h2load failed against $name:" >&2; tail -n20 "$out" >&2
    echo "bench: $name log tail:" >&2; tail -n20 "$T/$name".{log,err} 2>/dev/null >&2 || true
    FAILED=1; return
  fi
  load_ticks=$(($(cpu_busy_ticks "$LOAD_CPU") - load0))
  ticks=$(($(cpu_ticks "$pid") - t0)) up_ticks=$(($(cpu_ticks "${PID[upstream]}") - up0))
  n=$(h2load_field "$out" requests) failed=$(h2load_field "$out" failed)
  RPS_ALL[$name]+="$(awk -v r="$(h2load_field "$out" rps)" 'BEGIN {printf "%.0f", r}') "
  MEAN_ALL[$name]+="$(to_ms "$(h2load_field "$out" mean)") "
  if [ "$WITH_P99" = 1 ]; then P99_ALL[$name]+="$(p99_ms "$T/h2load_$1_$2.log") "; fi
  # The proxy's CPU time per request (user + system, us): what throughput costs it, also
  # when the load side, not the proxy, is what limits req/s.
  CPU_ALL[$name]+="$(awk -v t="$ticks" -v hz="$hz" -v n="$n" \
    'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n}') "
  # The upstream's CPU time per request: what the proxy's way of talking to it costs the
  # upstream, which shares the load CPU with h2load.
  UP_ALL[$name]+="$(awk -v t="$up_ticks" -v hz="$hz" -v n="$n" \
    'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n}') "
  USE_ALL[$name]+="$(awk -v t="$ticks" -v hz="$hz" -v d="$DURATION" 'BEGIN {printf "%.0f", t / hz / d * 100}') "
  # The load CPU (h2load, the upstream and the kernel work they cause there): when it is
  # saturated, it bounds req/s whatever the proxy.
  if [ -n "$LOAD_CPU" ]; then
    LOAD_ALL[$name]+="$(awk -v t="$load_ticks" -v hz="$hz" -v n="$n" \
      'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n}') "
    LUSE_ALL[$name]+="$(awk -v t="$load_ticks" -v hz="$hz" -v d="$DURATION" 'BEGIN {printf "%.0f", t / hz / d * 100}') "
  fi
  ERRS[$name]=$(( ${ERRS[$name]:-0} + failed ))
  if [ "$failed" != 0 ]; then
    echo "bench: $name: $failed failed requests; h2load output:" >&2; cat "$out" >&2
    echo "bench: $name log tail:" >&2; tail -n20 "$T/$name".{log,err} 2>/dev/null >&2 || true
    FAILED=1
  fi
  # gRPC: h2load counts any 2xx as success, but a gRPC error may be a 200 without a message
  # (Trailers-Only). h2load counts the DATA of completed requests only: 5 bytes per reply.
  ok=$(h2load_field "$out" succeeded) data=$(h2load_field "$out" data)
  if [ "$GRPC" = 1 ] && [ "${data:-0}" -lt $((5 * ok)) ]; then
    echo "bench: $name: $ok succeeded requests but only ${data:-0} response DATA bytes" \
      "(5 per reply): some answers carried no gRPC message (error statuses?); h2load output:" >&2
    cat "$out" >&2
    echo "bench: $name log tail:" >&2; tail -n20 "$T/$name".{log,err} 2>/dev/null >&2 || true
    ERRS[$name]=$(( ${ERRS[$name]} + (5 * ok - ${data:-0} + 4) / 5 ))
    FAILED=1
  fi
}

report() {
  local t vs_ngx vs_hap lat_hdr lat_cols p99r_ngx="" p99r_hap=""
  echo
  echo "Pinning: $PINNING"
  echo "$LOAD_NAME, h2load -c$CONNS -m$STREAMS -D $DURATION (median of $ROUNDS rounds):"
  printf '%-10s %10s %9s %9s %12s %12s %15s %13s %10s %8s\n' proxy rps "mean ms" "p99 ms" \
    "CPU us/req" "proxy CPU %" "upstream us/req" "load us/req" "load CPU%" errors
  for t in "${PROXIES[@]}"; do
    printf '%-10s %10s %9s %9s %12s %12s %15s %13s %10s %8s\n' "$t" "${RPS[$t]:--}" "${MEAN[$t]:--}" \
      "${P99[$t]:-n/a}" "${CPU[$t]:--}" "${USE[$t]:--}" "${UP[$t]:--}" "${LOAD[$t]:--}" \
      "${LUSE[$t]:--}" "${ERRS[$t]:--}"
  done
  echo "(load: the CPU that h2load and the upstream share, busy us per request and busy %)"
  if [ "$WITH_P99" != 1 ]; then
    echo "(p99: h2load reports only min/max/mean/sd of request time; --p99 computes it from a per-request log)"
  fi
  echo
  if [ "$WITH_P99" = 1 ]; then
    p99r_ngx=", p99 $(ratio "${P99[phoenix]:-}" "${P99[nginx]:-}")"
    p99r_hap=", p99 $(ratio "${P99[phoenix]:-}" "${P99[haproxy]:-}")"
  fi
  vs_ngx="rps $(ratio "${RPS[phoenix]:-}" "${RPS[nginx]:-}"), CPU/req $(ratio "${CPU[phoenix]:-}" "${CPU[nginx]:-}"), mean latency $(ratio "${MEAN[phoenix]:-}" "${MEAN[nginx]:-}")$p99r_ngx"
  vs_hap="rps $(ratio "${RPS[phoenix]:-}" "${RPS[haproxy]:-}"), CPU/req $(ratio "${CPU[phoenix]:-}" "${CPU[haproxy]:-}"), mean latency $(ratio "${MEAN[phoenix]:-}" "${MEAN[haproxy]:-}")$p99r_hap"
  echo "phoenix/nginx:   $vs_ngx"
  echo "phoenix/haproxy: $vs_hap"
  echo
  echo "---- README summary (markdown) ----"
  echo "$(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p' | head -n1), pinning: $PINNING."
  echo "$LOAD_DESC; \`h2load -c$CONNS -m$STREAMS -D $DURATION\`, median of $ROUNDS interleaved rounds; 1 worker/thread per proxy."
  echo
  lat_hdr="mean ms" lat_cols="---:"
  if [ "$WITH_P99" = 1 ]; then lat_hdr+=" | p99 ms" lat_cols+="|---:"; fi
  echo "| proxy | $LOAD_NAME req/s | $lat_hdr | CPU µs/req | proxy CPU % | errors |"
  echo "|---|---:|$lat_cols|---:|---:|---:|"
  for t in "${PROXIES[@]}"; do
    if [ "$WITH_P99" = 1 ]; then
      echo "| $t | ${RPS[$t]:--} | ${MEAN[$t]:--} | ${P99[$t]:--} | ${CPU[$t]:--} | ${USE[$t]:--} | ${ERRS[$t]:--} |"
    else
      echo "| $t | ${RPS[$t]:--} | ${MEAN[$t]:--} | ${CPU[$t]:--} | ${USE[$t]:--} | ${ERRS[$t]:--} |"
    fi
  done
  echo
  for t in "${!DOWN[@]}"; do echo "($t failed to start or its $LOAD_NAME check)"; done
  if [ ${#DOWN[@]} -gt 0 ]; then echo; fi
  echo "phoenix/nginx: $vs_ngx. phoenix/haproxy: $vs_hap."
}

main() {
  parse_args "$@"
  PROXIES=(nginx haproxy)
  if [ "$SKIP_PHOENIX" != 1 ]; then
    [ -x "$PHOENIX_BIN" ] || die "$PHOENIX_BIN not found: run tools/build.sh first"
    PROXIES+=(phoenix)
  fi
  for cmd in nginx haproxy h2load nghttp curl python3; do
    command -v "$cmd" >/dev/null || die "$cmd missing: run tools/setup.sh"
  done
  if [ "$GRPC_UPSTREAM" = minimal ] && ! command -v cc >/dev/null; then
    die "cc (for tools/bench/grpc_upstream.c) missing: run tools/setup.sh"
  fi
  if [ "$GRPC_UPSTREAM" = nginx ] && [ ! -f "$NGX_ECHO_MODULE" ]; then
    die "$NGX_ECHO_MODULE (libnginx-mod-http-echo, for the gRPC upstream) missing: run tools/setup.sh"
  fi
  for p in "$UP_PORT" "${PORT[@]}" "${ADMIN[@]}"; do
    if port_open "$p"; then die "port $p already in use (set BENCH_PORT_BASE)"; fi
  done
  if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then  # e.g. a build running
    echo "bench: WARNING: load average $(cut -d' ' -f1 /proc/loadavg) > 0.5; figures will be noisy" >&2
  fi
  ulimit -n "$(ulimit -Hn)"  # inherited by every proxy and the upstream
  [ "$(ulimit -n)" -ge $((WORKER_CONNS + 100)) ] || die "ulimit -n $(ulimit -n) too low"

  T=$(mktemp -d /tmp/phoenix-bench-h2.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  setup_pinning
  PINNING=${PINNING//wrk+idle helper/h2load}
  log "pinning: $PINNING; temp dir $T"
  write_configs

  start upstream || die "upstream ${UPSTREAM_KIND:-nginx} failed: $(tail -n5 "$T/upstream.err" "$T/upstream.log")"
  # The gRPC upstream must pass the proxies' check itself, else they would be blamed.
  if [ "$GRPC" = 1 ]; then
    PORT[upstream]=$UP_PORT
    check_grpc upstream
    [ "$FAILED" = 0 ] || die "aborting: the gRPC upstream ($GRPC_UPSTREAM) fails the check (see above)"
  fi
  local t
  for t in "${PROXIES[@]}"; do start_proxy "$t"; done
  for t in "${PROXIES[@]}"; do
    if [ -z "${DOWN[$t]:-}" ]; then "$CHECK" "$t"; fi
  done
  # A proxy that does not speak h2c (or gRPC) would make the ratios meaningless: stop here.
  if [ "$FAILED" != 0 ]; then
    die "aborting: $(for t in "${!DOWN[@]}"; do printf '%s ' "$t"; done)failed to start or its $LOAD_NAME check (see above)"
  fi

  local round i n=${#PROXIES[@]}
  for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
      t=${PROXIES[$(( (i + round - 1) % n ))]}
      bench_target "$t" "$round"
    done
  done
  for t in "${PROXIES[@]}"; do
    [ -n "${RPS_ALL[$t]:-}" ] || continue
    RPS[$t]=$(median <<<"${RPS_ALL[$t]}")
    MEAN[$t]=$(median <<<"${MEAN_ALL[$t]}")
    CPU[$t]=$(median <<<"${CPU_ALL[$t]}")
    USE[$t]=$(median <<<"${USE_ALL[$t]}")
    UP[$t]=$(median <<<"${UP_ALL[$t]}")
    if [ -n "${LOAD_ALL[$t]:-}" ]; then LOAD[$t]=$(median <<<"${LOAD_ALL[$t]}"); fi
    if [ -n "${LUSE_ALL[$t]:-}" ]; then LUSE[$t]=$(median <<<"${LUSE_ALL[$t]}"); fi
    if [ -n "${P99_ALL[$t]:-}" ]; then P99[$t]=$(median <<<"${P99_ALL[$t]}"); fi
  done
  report
  if [ "$FAILED" != 0 ]; then echo "bench: some targets failed (see above)" >&2; exit 1; fi
}

main "$@"
