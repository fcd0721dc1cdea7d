# shellcheck shell=bash disable=SC2004,SC2034,SC2153  # arrays and globals of the sourcing script
# Shared by tools/bench/run.sh, tls.sh, h2.sh and instructions.sh (sourced, not run):
# readiness helpers, the config writers for the upstream, nginx, HAProxy and phoenix
# (plain HTTP, TLS and gRPC variants), and the runner helpers of run.sh, tls.sh and h2.sh
# (start, pinning, cleanup, RSS/CPU sampling, idle-connection RSS, medians and ratios).
#
# The config writers read these globals from the sourcing script:
#   T            temp dir: configs, logs, nginx prefixes
#   PORT[name]   listen port of each server; ADMIN[name] phoenix admin port
#   UP_PORT      the upstream's port; BODY the upstream's response body (no newline)
#   WORKER_CONNS nginx worker_connections / HAProxy maxconn
#   UP_IDLE      optional: idle upstream connections nginx (keepalive) and phoenix
#                (max_idle_connections_per_host) keep; default 64 / 128. HAProxy keeps all.
#   NGX_COMMON, NGX_HTTP  set by nginx_globals
#   PHOENIX_BIN  for validate_phoenix
# grpc_upstream_conf and grpc_upstream_minimal_conf set UPSTREAM_KIND (nginx or minimal),
# which `start upstream` launches.
# The runner helpers also use PIDS, PID[name], DOWN[name], FAILED, ROOT, IDLE, the RSS0/
# RSS1/KIB arrays, PIN_* (set by setup_pinning) and the sourcing script's log().

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready NAME PID CHECK_CMD...: poll CHECK_CMD every 50 ms for up to READY_TIMEOUT
# seconds (default 10) while PID lives.
wait_ready() {
  local name=$1 pid=$2; shift 2
  for _ in $(seq $((${READY_TIMEOUT:-10} * 20))); do
    kill -0 "$pid" 2>/dev/null || { echo "bench: $name exited during startup" >&2; return 1; }
    "$@" && return 0
    sleep 0.05
  done
  echo "bench: $name not ready after ${READY_TIMEOUT:-10}s" >&2; return 1
}

# nginx_globals on|off: NGX_COMMON (master_process on|off, 1 worker) and NGX_HTTP
# (no access log, long keep-alive, temp paths under $T) for nginx_conf/upstream_conf.
nginx_globals() {
  NGX_COMMON="worker_processes 1; worker_rlimit_nofile $WORKER_CONNS; daemon off; master_process $1;
events { worker_connections $WORKER_CONNS; }"
  NGX_HTTP="access_log off; keepalive_timeout 600s; keepalive_requests 100000000;
  client_body_temp_path $T/ngx_tmp/body; proxy_temp_path $T/ngx_tmp/proxy;
  fastcgi_temp_path $T/ngx_tmp/fcgi; uwsgi_temp_path $T/ngx_tmp/uwsgi; scgi_temp_path $T/ngx_tmp/scgi;"
  mkdir -p "$T/ngx_tmp"
}

# upstream_conf: the upstream nginx on UP_PORT, answering every request with BODY.
upstream_conf() {
  mkdir -p "$T/upstream"
  cat >"$T/upstream.conf" <<EOF
$NGX_COMMON
pid $T/upstream.pid; error_log $T/upstream.err warn;
http { $NGX_HTTP
  server { listen 127.0.0.1:$UP_PORT backlog=4096; default_type text/plain;
    location / { return 200 "$BODY\n"; } }
}
EOF
}

# grpc_upstream_conf: the upstream nginx on UP_PORT speaking h2c only (`listen ... http2`),
# answering every request as a gRPC unary success: 200, content-type application/grpc,
# one empty gRPC message (5 zero bytes: not compressed, length 0) and the trailer
# grpc-status: 0 (nginx sends add_trailer as a trailing HEADERS frame over HTTP/2).
# Like a real gRPC server it reads the whole request before answering (the echo module's
# echo_read_request_body; the module comes with nginx-light). `return 200` would answer on
# the request's HEADERS and then reset the stream (RST_STREAM NO_ERROR) when its DATA came
# later, and nginx's grpc_pass fails the next request on that kept-alive connection ("upstream
# sent frame for unknown stream"). nginx's config syntax has no escape for a zero byte, so
# printf writes the five bytes into the quoted string themselves (nginx keeps strings as
# pointer + length).
NGX_ECHO_MODULE=${NGX_ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}
grpc_upstream_conf() {
  UPSTREAM_KIND=nginx
  mkdir -p "$T/upstream"
  {
    printf '%s\n' "load_module $NGX_ECHO_MODULE;" "$NGX_COMMON" \
      "pid $T/upstream.pid; error_log $T/upstream.err warn;" "http { $NGX_HTTP"
    printf '  server { listen 127.0.0.1:%s http2 backlog=4096;\n' "$UP_PORT"
    printf '    location / { default_type application/grpc; add_trailer grpc-status 0 always;\n'
    printf '                 echo_read_request_body; echo -n "\0\0\0\0\0"; } }\n}\n'
  } >"$T/upstream.conf"
}

# grpc_upstream_minimal_conf: the gRPC upstream as tools/bench/grpc_upstream.c (built into
# $T/grpc_upstream) instead of nginx: one thread, h2c, every call answered once read whole
# with 200, content-type application/grpc, one empty message and `grpc-status: 0`, each
# reply's frames in one write (see the file).
grpc_upstream_minimal_conf() {
  UPSTREAM_KIND=minimal
  cc -O2 -Wall -o "$T/grpc_upstream" "$ROOT/tools/bench/grpc_upstream.c" -lnghttp2
}

# nginx_conf NAME HTTP_EXTRA SERVER_EXTRA [LISTEN_EXTRA] [LOCATION]: a proxying nginx
# listening on PORT[NAME]; LISTEN_EXTRA goes in the listen directive (e.g. " ssl");
# LOCATION replaces the location's HTTP/1.1 proxy_pass (e.g. "grpc_pass grpc://backend;").
nginx_conf() {
  local name=$1
  local loc=${5:-'proxy_pass http://backend; proxy_http_version 1.1;
                 proxy_set_header Connection "";'}
  mkdir -p "$T/$name"
  cat >"$T/$name.conf" <<EOF
$NGX_COMMON
pid $T/$name.pid; error_log $T/$name.err warn;
http { $NGX_HTTP $2
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive ${UP_IDLE:-64}; keepalive_requests 100000000; }
  server { listen 127.0.0.1:${PORT[$name]} backlog=4096${4:-}; $3
    location / { $loc } }
}
EOF
}

# haproxy_conf NAME FRONTEND_EXTRA [BIND_EXTRA] [GLOBAL_EXTRA] [SERVER_EXTRA]: a proxying
# HAProxy listening on PORT[NAME]; BIND_EXTRA goes on the bind line (e.g. " ssl crt FILE"),
# SERVER_EXTRA on the upstream's server line (e.g. " proto h2").
# "no strict-limits": haproxy sizes fds as 2*maxconn (client+server) and would
# refuse to start above the hard ulimit; idle client conns need only one fd.
haproxy_conf() {
  local name=$1
  cat >"$T/$name.cfg" <<EOF
global
  nbthread 1
  maxconn $WORKER_CONNS
  no strict-limits
  pidfile $T/$name.pid${4:-}
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend fe
  bind 127.0.0.1:${PORT[$name]}${3:-}
  maxconn $WORKER_CONNS$2
  default_backend be
backend be
  server up 127.0.0.1:$UP_PORT${5:-}
EOF
}

# phoenix_conf NAME HCM_EXTRA [CLUSTER_EXTRA]: phoenix listening on PORT[NAME], admin on
# ADMIN[NAME]; HCM_EXTRA is YAML appended inside http_connection_manager (6-space indent),
# CLUSTER_EXTRA inside the cluster (4-space indent, e.g. "    protocol: HTTP2").
# No access_log: access logging is off.
phoenix_conf() {
  local name=$1
  {
    phoenix_head "$name"
    echo "    http_connection_manager:"
    phoenix_hcm "$2"
    phoenix_clusters "${3:-}"
  } >"$T/$name.yaml"
}

phoenix_head() {  # phoenix_head NAME: admin, and the one listener ("bench") up to its address
  cat <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: ${ADMIN[$1]} } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: ${PORT[$1]} } }
EOF
}

phoenix_hcm() {  # phoenix_hcm HCM_EXTRA: the connection manager's body at 6-space indent
  cat <<EOF
      stat_prefix: bench
      route_config:
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: { prefix: / }
            route: { cluster: upstream }$1
EOF
}

phoenix_clusters() {  # phoenix_clusters [CLUSTER_EXTRA]
  cat <<EOF
  clusters:
  - name: upstream
    connect_timeout: 1s
    max_idle_connections_per_host: ${UP_IDLE:-128}${1:+
$1}
    load_assignment:
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } }
EOF
}

# TLS variants (tls.sh): the same proxies terminating TLS with CERT/KEY (tls.sh passes
# the one ECDSA P-256 pair of tools/certs.sh), then proxying plain HTTP to the upstream.
# All three: TLS 1.2 + 1.3, the proxy's default ciphers and groups, session tickets on
# (the proxy's own ticket keys), no client certificates.

# nginx_tls_conf NAME CERT KEY: `listen ... ssl`; ssl_session_tickets on and no
# ssl_session_cache (nginx's default "none": resumption by ticket only).
nginx_tls_conf() {
  nginx_conf "$1" "" "
    ssl_certificate $2; ssl_certificate_key $3;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;" " ssl"
}

# haproxy_tls_conf NAME PEM: `bind ... ssl crt PEM` (cert then key in one file) with
# ssl-min-ver TLSv1.2; HAProxy's defaults otherwise (tickets on, its session cache).
# A stats socket, $T/NAME.sock, gives the frontend's SSL counters (ssl_sess, ssl_reused_sess).
haproxy_tls_conf() {
  haproxy_conf "$1" "" " ssl crt $2 ssl-min-ver TLSv1.2" "
  stats socket $T/$1.sock mode 600 level user"
}

# phoenix_tls_conf NAME CERT KEY [HCM_EXTRA]: the listener has one filter chain with a
# DownstreamTlsContext (defaults: TLS 1.2-1.3, tickets on) and the usual connection manager.
phoenix_tls_conf() {
  local name=$1
  {
    phoenix_head "$name"
    cat <<EOF
    filter_chains:
    - transport_socket:
        name: phoenix.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/phoenix.config.v1.DownstreamTlsContext
          common_tls_context:
            tls_certificates:
            - certificate_chain: { filename: $2 }
              private_key: { filename: $3 }
      http_connection_manager:
EOF
    phoenix_hcm "${4:-}" | sed 's/^/  /'
    phoenix_clusters
  } >"$T/$name.yaml"
}

# validate_phoenix NAME: `phoenix --mode validate` on the generated config.
validate_phoenix() {
  local out
  if ! out=$("$PHOENIX_BIN" --mode validate -c "$T/$1.yaml" 2>&1); then
    echo "bench: $1 config invalid:" >&2; echo "$out" >&2; return 1
  fi
}

# ---- Runner helpers (run.sh, tls.sh, h2.sh) ----

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do  # bounded wait, then SIGKILL stragglers
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "bench: temp dir kept: $T" >&2; else rm -rf "$T"; fi
}

setup_pinning() {
  local cpus
  read -r -a cpus <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
  if [ ${#cpus[@]} -lt 2 ]; then
    PIN_PROXY=() PIN_LOAD=() PIN_WRK=() LOAD_CPU="" PINNING="none (only 1 CPU)"
    return
  fi
  PIN_PROXY=(taskset -c "${cpus[0]}") PIN_LOAD=(taskset -c "${cpus[1]}") LOAD_CPU=${cpus[1]}
  PIN_WRK=(taskset -c "${cpus[2]:-${cpus[1]}}")
  PINNING="proxies: CPU ${cpus[0]}; upstream: CPU ${cpus[1]}; wrk+idle helper: CPU ${cpus[2]:-${cpus[1]}}"
}


# start NAME: launch one server in the background; sets PID[NAME].
start() {
  local name=$1 pid
  case $name in
    upstream)
      if [ "${UPSTREAM_KIND:-nginx}" = minimal ]; then
        "${PIN_LOAD[@]}" "$T/grpc_upstream" "$UP_PORT" >"$T/upstream.log" 2>"$T/upstream.err" &
      else
        "${PIN_LOAD[@]}" nginx -p "$T/upstream" -e "$T/upstream.err" -c "$T/upstream.conf" >"$T/upstream.log" 2>&1 &
      fi ;;
    nginx*) "${PIN_PROXY[@]}" nginx -p "$T/$name" -e "$T/$name.err" -c "$T/$name.conf" >"$T/$name.log" 2>&1 & ;;
    haproxy*) "${PIN_PROXY[@]}" haproxy -db -f "$T/$name.cfg" >"$T/$name.log" 2>&1 & ;;
    phoenix*) "${PIN_PROXY[@]}" "$PHOENIX_BIN" -c "$T/$name.yaml" --concurrency 1 --log-level warn >"$T/$name.log" 2>&1 & ;;
  esac
  pid=$!
  PIDS+=("$pid")
  PID[$name]=$pid
  case $name in
    phoenix*) wait_ready "$name" "$pid" curl -sf -o /dev/null "http://127.0.0.1:${ADMIN[$name]}/ready" ;;
    upstream) wait_ready "$name" "$pid" port_open "$UP_PORT" ;;
    *) wait_ready "$name" "$pid" port_open "${PORT[$name]}" ;;
  esac
}

# start_proxy NAME: start (validating phoenix configs first); on failure print the
# logs, mark NAME down and fail the run at the end, but bench the others.
start_proxy() {
  local name=$1
  if [[ $name == phoenix* ]] && ! validate_phoenix "$name"; then
    FAILED=1 DOWN[$name]=1; return
  fi
  if ! start "$name"; then
    echo "bench: $name failed to start; log tail:" >&2
    tail -n20 "$T/$name".{log,err} 2>/dev/null >&2 || true
    FAILED=1 DOWN[$name]=1
  fi
}


# The process whose RSS we report: nginx's worker (the master's only child).
rss_pid() {
  local pid=$1
  if [ "$2" = nginx ]; then pid=$(pgrep -P "$pid" | head -n1); fi
  echo "$pid"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# cpu_ticks PID: user+system clock ticks of PID and its children (nginx's workers), all
# threads. The fields are counted after the command name, which may hold spaces.
cpu_ticks() {
  local p total=0
  for p in "$1" $(pgrep -P "$1"); do
    total=$((total + $(cat /proc/"$p"/task/*/stat 2>/dev/null |
      sed 's/.*) //' | awk '{s += $12 + $13} END {print s + 0}')))
  done
  echo "$total"
}

# cpu_busy_ticks CPU: clock ticks CPU spent busy since boot (user, nice, system, irq and
# softirq from /proc/stat; not idle, iowait or steal), or 0 when CPU is empty.
cpu_busy_ticks() {
  if [ -z "$1" ]; then echo 0; return; fi
  awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# to_ms VALUE: wrk latency like 153.00us / 1.20ms / 2.01s -> milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1;
    if (f < 0) { print "nan"; exit } printf "%.3f", n * f }'
}


median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# measure_idle NAME PID [HELPER_ARGS...]: RSS before/after IDLE keep-alive conns held
# open by idle_conns.py, which gets HELPER_ARGS too (tls.sh: --tls ...).
measure_idle() {
  local name=$1 pid port=${PORT[$1]} hpid line
  pid=$(rss_pid "$2" "$name")
  shift 2
  RSS0[$name]=$(rss_kib "$pid")
  log "$name: opening $IDLE idle keep-alive connections${1:+ ($*)}"
  mkfifo "$T/idle_$name.out"
  "${PIN_WRK[@]}" python3 "$ROOT/tools/bench/idle_conns.py" --port "$port" --count "$IDLE" "$@" \
    >"$T/idle_$name.out" 2>"$T/idle_$name.err" </dev/null &
  hpid=$!
  PIDS+=("$hpid")
  if read -r -t 180 line <"$T/idle_$name.out" && [ "$line" = ready ]; then
    RSS1[$name]=$(rss_kib "$pid")
    KIB[$name]=$(awk -v a="${RSS0[$name]}" -v b="${RSS1[$name]}" -v n="$IDLE" 'BEGIN {printf "%.2f", (b - a) / n}')
  else
    echo "bench: idle helper failed against $name:" >&2; tail -n5 "$T/idle_$name.err" >&2; FAILED=1
  fi
  kill -TERM "$hpid" 2>/dev/null || true
  wait "$hpid" 2>/dev/null || true
}


ratio() {  # ratio A B -> A/B with 2 decimals, or n/a
  if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then echo n/a; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "x%.2f", a / b }'
}

