#!/usr/bin/env bash
# Benchmark (not a test): phoenix vs nginx vs HAProxy terminating TLS, side by side, in
# front of the same plain-HTTP nginx upstream as run.sh. Three figures per proxy, with
# ratios phoenix/nginx and phoenix/haproxy and a markdown summary for the README:
#   1. keep-alive HTTPS req/s: wrk -t1 -cC https://127.0.0.1:PORT/ (one handshake per
#      connection, then requests), with p50/p99 and the proxy's CPU time per request;
#   2. new handshakes/s: every request on a new TLS connection with a FULL handshake
#      (no resumption), with the proxy's CPU time per handshake and its CPU use;
#   3. RSS per idle TLS connection: idle_conns.py --tls opens N connections, each with a
#      full handshake and one GET, then holds them idle; (RSS after - before) / N, KiB.
# Goals (the TLS issue): phoenix >= nginx on both rates; KiB/idle conn <= nginx.
#
# Usage: tools/bench/tls.sh [--duration SECS] [--rounds N] [--connections N]
#                           [--idle-conns N]
#   --duration 10, --rounds 3, --connections 32, --idle-conns 10000 by default (as run.sh)
# Env:   PHOENIX_BIN=build/phoenix  the phoenix binary (relative to the repo root or absolute)
#        BENCH_SKIP_PHOENIX=1       bench only nginx/haproxy
#        BENCH_PORT_BASE=18400      first of the 5 ports used (all must be free)
#        BENCH_KEEP_TMP=1           keep the temp dir (certs, configs, logs, wrk output)
# Needs nginx, haproxy, wrk, curl, openssl, python3 and cc (for the wrk shim below).
#
# TLS setup, the same for the three: one certificate, the ECDSA P-256 server-ecdsa.crt
# of tools/certs.sh (CN/SAN localhost + 127.0.0.1, signed by its demo CA), made once per
# run in the temp dir; TLS 1.2 + 1.3; each proxy's default ciphers and groups; session
# tickets on; no client certificates; plain HTTP to the upstream.
#   nginx:   listen ... ssl; ssl_certificate/ssl_certificate_key; ssl_protocols TLSv1.2
#            TLSv1.3; ssl_session_tickets on; no ssl_session_cache (default "none").
#   HAProxy: bind ... ssl crt server-ecdsa.pem (cert + key in one file) ssl-min-ver
#            TLSv1.2; defaults otherwise (tickets on, its default session cache).
#   phoenix: filter_chains[0].transport_socket phoenix.transport_sockets.tls with a
#            DownstreamTlsContext holding the cert and key; defaults otherwise (TLS
#            1.2-1.3, tickets on, ticket-only resumption).
# Before measuring, each proxy must serve BODY over HTTPS with the certificate verifying
# for "localhost" against the demo CA (curl), accept TLS 1.2, and resume a session by
# ticket (openssl s_client -sess_out/-sess_in); the negotiated TLS 1.3 suite and group
# are printed. All three clients (wrk, openssl, python) negotiate TLS 1.3 by default.
#
# Handshakes/s method: wrk -H 'Connection: close': each response closes the connection
# and wrk reconnects. Plain wrk (and h2load) would RESUME: wrk keeps the last session
# in its SSL object (SSL_clear) and offers it on reconnect; about half of its
# handshakes were resumptions in phoenix's listener.bench.tls.session_reused. So wrk
# runs with LD_PRELOAD=no_resume.so (tools/bench/no_resume.c, built into the temp dir
# with cc), which drops that session: every handshake is full (X25519 + an ECDSA
# signature). Verified on every run: phoenix's listener.bench.tls.handshake and
# .session_reused deltas, and HAProxy's frontend ssl_sess / ssl_reused_sess (stats
# socket), must show as many handshakes as wrk's requests (give or take the C
# connections in flight at the ends) and 0 resumed; else the run fails. nginx has no
# such counter; its client is the same wrk. "proxy CPU %" is the proxy's CPU time over
# the wrk run: under ~95% the load side (wrk and the upstream share one CPU, and a
# client handshake costs about as much as a server one) is what limits handshakes/s,
# and CPU us/handshake is then the fairer comparison.
#
# Pinning (as run.sh): every proxy runs on the same single CPU; the upstream nginx, wrk
# and the idle-connection helper share the other CPU (with 3+ CPUs wrk gets its own).
# 1 worker/thread per proxy. Rounds interleave the proxies and report medians.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
source "$ROOT/tools/bench/lib.sh"
PHOENIX_BIN=${PHOENIX_BIN:-build/phoenix}
[[ $PHOENIX_BIN == /* ]] || PHOENIX_BIN="$ROOT/$PHOENIX_BIN"
DURATION=10 CONNS=32 IDLE=10000 ROUNDS=3
SKIP_PHOENIX=${BENCH_SKIP_PHOENIX:-0}
BASE=${BENCH_PORT_BASE:-18400}
BODY="hello from upstream"
PIDS=() FAILED=0
UP_PORT=$BASE
declare -A PORT=([nginx]=$((BASE + 1)) [haproxy]=$((BASE + 2)) [phoenix]=$((BASE + 3)))
declare -A ADMIN=([phoenix]=$((BASE + 4)))
# PID: server pid per name; DOWN[name]=1: failed to start or its TLS checks.
declare -A PID=() DOWN=()
# Keep-alive HTTPS: RPS/P50/P99/CPU (us per request); handshakes: HPS (per second),
# HCPU (us per handshake), HUSE (proxy CPU %), HCHECK (what the proxy counted).
declare -A RPS P50 P99 ERRS CPU RPS_ALL P50_ALL P99_ALL CPU_ALL
declare -A HPS HCPU HUSE HERRS HPS_ALL HCPU_ALL HUSE_ALL HCHECK
declare -A RSS0 RSS1 KIB TLSINFO

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --duration) DURATION=$2; shift 2 ;;
      --rounds) ROUNDS=$2; shift 2 ;;
      --connections) CONNS=$2; shift 2 ;;
      --idle-conns) IDLE=$2; shift 2 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
}

write_configs() {
  CERTS=$T/certs
  "$ROOT/tools/certs.sh" "$CERTS" >/dev/null
  cat "$CERTS/server-ecdsa.crt" "$CERTS/server-ecdsa.key" >"$CERTS/server-ecdsa.pem"
  WORKER_CONNS=$((IDLE + 1000))
  nginx_globals on
  upstream_conf
  nginx_tls_conf nginx "$CERTS/server-ecdsa.crt" "$CERTS/server-ecdsa.key"
  haproxy_tls_conf haproxy "$CERTS/server-ecdsa.pem"
  phoenix_tls_conf phoenix "$CERTS/server-ecdsa.crt" "$CERTS/server-ecdsa.key"
  cc -shared -fPIC -O2 -o "$T/no_resume.so" "$ROOT/tools/bench/no_resume.c" -ldl ||
    die "cannot build tools/bench/no_resume.c"
}

# s_client PORT ARGS...: one HTTP/1.0 GET over openssl s_client, verifying the certificate
# for localhost against the demo CA; prints s_client's output.
s_client() {
  local port=$1; shift
  printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
    -servername localhost -verify_hostname localhost -CAfile "$CERTS/ca.crt" -ign_eof "$@" 2>&1 || true
}

# check_tls NAME: HTTPS with a verified certificate, TLS 1.2 accepted, ticket resumption
# works; records the negotiated TLS 1.3 suite and group in TLSINFO[NAME].
check_tls() {
  local name=$1 port=${PORT[$1]} got out bad=0
  got=$(curl -s --max-time 5 --cacert "$CERTS/ca.crt" --resolve "localhost:$port:127.0.0.1" \
    "https://localhost:$port/" || true)
  if [ "$got" != "$BODY" ]; then
    echo "bench: $name does not proxy / over verified HTTPS (got: '${got:0:80}')" >&2; bad=1
  fi
  out=$(s_client "$port" -sess_out "$T/$name.sess")
  TLSINFO[$name]="$(sed -n 's/^New, \(TLSv1.3\), Cipher is \(.*\)/\1 \2/p' <<<"$out" | head -n1)"
  TLSINFO[$name]+=" $(sed -n 's/^Server Temp Key: \([^,]*\),.*/\1/p' <<<"$out" | head -n1)"
  if ! grep -q '^New, TLSv1.3' <<<"$out" || ! grep -q 'Verify return code: 0 (ok)' <<<"$out"; then
    echo "bench: $name: no verified TLS 1.3 handshake:" >&2; tail -n5 <<<"$out" >&2; bad=1
  fi
  if ! s_client "$port" -sess_in "$T/$name.sess" | grep -q '^Reused, TLSv1.3'; then
    echo "bench: $name does not resume a TLS 1.3 session by ticket" >&2; bad=1
  fi
  if ! s_client "$port" -tls1_2 | grep -q '^New, TLSv1.2'; then
    echo "bench: $name does not accept TLS 1.2" >&2; bad=1
  fi
  if [ "$bad" = 1 ]; then FAILED=1 DOWN[$name]=1; fi
}

# tls_counters NAME -> "HANDSHAKES RESUMED" as the proxy counts them (all handshakes,
# resumed or not), or nothing when it has no such counter (nginx).
tls_counters() {
  case $1 in
    phoenix) curl -s --max-time 5 "http://127.0.0.1:${ADMIN[$1]}/stats" |
      awk -F': *' '$1 == "listener.bench.tls.handshake" {h = $2}
                   $1 == "listener.bench.tls.session_reused" {r = $2} END {print h + 0, r + 0}' ;;
    haproxy) python3 - "$T/$1.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
lines = data.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
for line in lines[1:]:
    row = dict(zip(head, line.split(",")))
    if row.get("svname") == "FRONTEND":
        print(int(row["ssl_sess"] or 0), int(row["ssl_reused_sess"] or 0))
EOF
    ;;
  esac
}

# wrk_run NAME OUT [WRK_ARGS...]: wrk on NAME's HTTPS port, CPU ticks of the proxy before
# and after in TICKS.
wrk_run() {
  local name=$1 out=$2 pid=${PID[$1]} t0; shift 2
  t0=$(cpu_ticks "$pid")
  "$@" -t1 -c"$CONNS" -d"${DURATION}s" --latency "https://127.0.0.1:${PORT[$name]}/" >"$out"
  TICKS=$(($(cpu_ticks "$pid") - t0))
}

# wrk_errors OUT: non-2xx + socket errors in a wrk output.
wrk_errors() {
  awk '/Non-2xx/ {e += $NF} /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10}
       END {print e + 0}' "$1"
}
wrk_requests() { awk '/ requests in / {print $1}' "$1"; }

# bench_keepalive NAME ROUND: keep-alive HTTPS requests; appends to the per-round lists.
bench_keepalive() {
  local name=$1 round=$2 out="$T/wrk_$1_ka_$2.txt" hz
  hz=$(getconf CLK_TCK)
  log "$name (round $round/$ROUNDS): keep-alive HTTPS, ${DURATION}s with $CONNS connections"
  if [ "$round" = 1 ]; then
    "${PIN_WRK[@]}" wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:${PORT[$name]}/" >/dev/null
  fi
  wrk_run "$name" "$out" "${PIN_WRK[@]}" wrk
  RPS_ALL[$name]+="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out") "
  P50_ALL[$name]+="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")") "
  P99_ALL[$name]+="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")") "
  CPU_ALL[$name]+="$(awk -v t="$TICKS" -v hz="$hz" -v n="$(wrk_requests "$out")" \
    'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n}') "
  ERRS[$name]=$(( ${ERRS[$name]:-0} + $(wrk_errors "$out") ))
}

# bench_handshakes NAME ROUND: one request per connection, full handshakes only (the
# no_resume.so shim); checks the proxy's own handshake/resumption counters.
bench_handshakes() {
  local name=$1 round=$2 out="$T/wrk_$1_hs_$2.txt" hz c0 c1 n h r
  hz=$(getconf CLK_TCK)
  log "$name (round $round/$ROUNDS): new TLS connection per request, ${DURATION}s with $CONNS connections"
  c0=$(tls_counters "$name")
  wrk_run "$name" "$out" "${PIN_WRK[@]}" env LD_PRELOAD="$T/no_resume.so" wrk -H 'Connection: close'
  c1=$(tls_counters "$name")
  n=$(wrk_requests "$out")
  HPS_ALL[$name]+="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out") "
  HCPU_ALL[$name]+="$(awk -v t="$TICKS" -v hz="$hz" -v n="$n" \
    'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n}') "
  HUSE_ALL[$name]+="$(awk -v t="$TICKS" -v hz="$hz" -v d="$DURATION" 'BEGIN {printf "%.0f", t / hz / d * 100}') "
  HERRS[$name]=$(( ${HERRS[$name]:-0} + $(wrk_errors "$out") ))
  if [ -n "$c0" ] && [ -n "$c1" ]; then
    read -r h r <<<"$(awk -v a="$c0" -v b="$c1" 'BEGIN {split(a, x, " "); split(b, y, " ");
      print y[1] - x[1], y[2] - x[2]}')"
    HCHECK[$name]+="${HCHECK[$name]:+; }$h handshakes ($r resumed) / $n requests"
    if [ "$r" != 0 ] || [ "$h" -lt "$n" ] || [ "$h" -gt $((n + 2 * CONNS)) ]; then
      echo "bench: $name counted $h handshakes, $r resumed, for $n requests:" \
        "not one full handshake per request" >&2
      FAILED=1
    fi
  fi
}

report() {
  local t vs_ngx vs_hap
  echo
  echo "Pinning: $PINNING"
  for t in "${PROXIES[@]}"; do echo "$t TLS 1.3: ${TLSINFO[$t]:--}"; done
  echo
  echo "Keep-alive HTTPS (wrk -t1 -c$CONNS -d${DURATION}s):"
  printf '%-10s %10s %9s %9s %8s %12s\n' proxy rps "p50 ms" "p99 ms" errors "CPU us/req"
  for t in "${PROXIES[@]}"; do
    printf '%-10s %10s %9s %9s %8s %12s\n' "$t" "${RPS[$t]:--}" "${P50[$t]:--}" "${P99[$t]:--}" \
      "${ERRS[$t]:--}" "${CPU[$t]:--}"
  done
  echo
  echo "New TLS connection per request, full handshakes (wrk -H 'Connection: close' + no_resume.so):"
  printf '%-10s %12s %13s %12s %8s\n' proxy handshakes/s "CPU us/hs" "proxy CPU %" errors
  for t in "${PROXIES[@]}"; do
    printf '%-10s %12s %13s %12s %8s\n' "$t" "${HPS[$t]:--}" "${HCPU[$t]:--}" "${HUSE[$t]:--}" "${HERRS[$t]:--}"
  done
  for t in "${PROXIES[@]}"; do
    if [ -n "${HCHECK[$t]:-}" ]; then echo "  $t counted: ${HCHECK[$t]}"; fi
  done
  echo
  echo "Idle TLS connections ($IDLE, each after a full handshake and one GET):"
  printf '%-10s %12s %12s %18s\n' proxy "RSS0 KiB" "RSS1 KiB" "KiB/idle TLS conn"
  for t in "${PROXIES[@]}"; do
    printf '%-10s %12s %12s %18s\n' "$t" "${RSS0[$t]:--}" "${RSS1[$t]:--}" "${KIB[$t]:--}"
  done
  echo
  vs_ngx="rps $(ratio "${RPS[phoenix]:-}" "${RPS[nginx]:-}"), handshakes/s $(ratio "${HPS[phoenix]:-}" "${HPS[nginx]:-}"), KiB/idle TLS conn $(ratio "${KIB[phoenix]:-}" "${KIB[nginx]:-}"); CPU/req $(ratio "${CPU[phoenix]:-}" "${CPU[nginx]:-}"), CPU/handshake $(ratio "${HCPU[phoenix]:-}" "${HCPU[nginx]:-}")"
  vs_hap="rps $(ratio "${RPS[phoenix]:-}" "${RPS[haproxy]:-}"), handshakes/s $(ratio "${HPS[phoenix]:-}" "${HPS[haproxy]:-}"), KiB/idle TLS conn $(ratio "${KIB[phoenix]:-}" "${KIB[haproxy]:-}"); CPU/req $(ratio "${CPU[phoenix]:-}" "${CPU[haproxy]:-}"), CPU/handshake $(ratio "${HCPU[phoenix]:-}" "${HCPU[haproxy]:-}")"
  echo "phoenix/nginx:   $vs_ngx"
  echo "phoenix/haproxy: $vs_hap"
  if [ -n "${RPS[phoenix]:-}" ] && [ -n "${RPS[nginx]:-}" ]; then
    echo "goals vs nginx: rps $(goal "${RPS[phoenix]}" ge "${RPS[nginx]}"), handshakes/s $(goal "${HPS[phoenix]:-}" ge "${HPS[nginx]:-}"), KiB/idle TLS conn $(goal "${KIB[phoenix]:-}" le "${KIB[nginx]:-}")"
  fi
  echo
  echo "---- README summary (markdown) ----"
  echo "$(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p' | head -n1), pinning: $PINNING."
  echo "TLS 1.3 (${TLSINFO[phoenix]:-${TLSINFO[nginx]:-}}), one ECDSA P-256 certificate, tickets on; wrk -t1 -c$CONNS -d${DURATION}s, median of $ROUNDS interleaved rounds; 1 worker/thread per proxy. Handshakes: a new connection per request (\`Connection: close\`), full handshakes only (checked with the proxies' counters); idle RSS with $IDLE TLS conns."
  echo
  echo "| proxy | HTTPS req/s (keep-alive) | p99 ms | CPU µs/req | full handshakes/s | CPU µs/handshake | proxy CPU % | KiB/idle TLS conn |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${PROXIES[@]}"; do
    echo "| $t | ${RPS[$t]:--} | ${P99[$t]:--} | ${CPU[$t]:--} | ${HPS[$t]:--} | ${HCPU[$t]:--} | ${HUSE[$t]:--} | ${KIB[$t]:--} |"
  done
  echo
  for t in "${!DOWN[@]}"; do echo "($t failed to start or its TLS checks)"; done
  if [ ${#DOWN[@]} -gt 0 ]; then echo; fi
  echo "phoenix/nginx: $vs_ngx. phoenix/haproxy: $vs_hap."
}

goal() {  # goal A ge|le B -> met / NOT met
  if [ -z "${1:-}" ] || [ -z "${3:-}" ]; then echo n/a; return; fi
  awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { ok = (op == "ge") ? a >= b : a <= b;
    print ok ? "met" : "NOT met" }'
}

main() {
  parse_args "$@"
  PROXIES=(nginx haproxy)
  if [ "$SKIP_PHOENIX" != 1 ]; then
    [ -x "$PHOENIX_BIN" ] || die "$PHOENIX_BIN not found: run tools/build.sh first"
    PROXIES+=(phoenix)
  fi
  for cmd in nginx haproxy wrk curl openssl python3 cc; do
    command -v "$cmd" >/dev/null || die "$cmd missing: run tools/setup.sh"
  done
  for p in "$UP_PORT" "${PORT[@]}" "${ADMIN[@]}"; do
    if port_open "$p"; then die "port $p already in use (set BENCH_PORT_BASE)"; fi
  done
  if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then  # e.g. a build running
    echo "bench: WARNING: load average $(cut -d' ' -f1 /proc/loadavg) > 0.5; figures will be noisy" >&2
  fi
  ulimit -n "$(ulimit -Hn)"  # inherited by every proxy and the idle helper
  [ "$(ulimit -n)" -ge $((IDLE + 1100)) ] || die "ulimit -n $(ulimit -n) too low for --idle-conns $IDLE"

  T=$(mktemp -d /tmp/phoenix-bench-tls.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  setup_pinning
  log "pinning: $PINNING; temp dir $T"
  write_configs

  start upstream || die "upstream nginx failed: $(tail -n5 "$T/upstream.err" "$T/upstream.log")"
  local t
  for t in "${PROXIES[@]}"; do start_proxy "$t"; done
  for t in "${PROXIES[@]}"; do
    if [ -z "${DOWN[$t]:-}" ]; then check_tls "$t"; fi
  done

  # Rounds interleave the proxies (rotating the order) and report medians.
  local round i n=${#PROXIES[@]}
  for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
      t=${PROXIES[$(( (i + round - 1) % n ))]}
      if [ -n "${DOWN[$t]:-}" ]; then continue; fi
      bench_keepalive "$t" "$round"
      bench_handshakes "$t" "$round"
    done
  done
  for t in "${PROXIES[@]}"; do
    [ -n "${RPS_ALL[$t]:-}" ] || continue
    RPS[$t]=$(median <<<"${RPS_ALL[$t]}")
    P50[$t]=$(median <<<"${P50_ALL[$t]}")
    P99[$t]=$(median <<<"${P99_ALL[$t]}")
    CPU[$t]=$(median <<<"${CPU_ALL[$t]}")
    HPS[$t]=$(median <<<"${HPS_ALL[$t]}")
    HCPU[$t]=$(median <<<"${HCPU_ALL[$t]}")
    HUSE[$t]=$(median <<<"${HUSE_ALL[$t]}")
  done
  for t in "${PROXIES[@]}"; do
    if [ -n "${DOWN[$t]:-}" ]; then continue; fi
    measure_idle "$t" "${PID[$t]}" --tls --cafile "$CERTS/ca.crt"
  done
  report
  if [ "$FAILED" != 0 ]; then echo "bench: some targets failed (see above)" >&2; exit 1; fi
}

main "$@"
