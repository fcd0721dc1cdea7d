# shellcheck shell=bash
# Shared by tools/bench/run.sh and tools/bench/instructions.sh (sourced, not run):
# readiness helpers and the config writers for the upstream, nginx, HAProxy and phoenix.
#
# The config writers read these globals from the sourcing script:
#   T            temp dir: configs, logs, nginx prefixes
#   PORT[name]   listen port of each server; ADMIN[name] phoenix admin port
#   UP_PORT      the upstream nginx's port; BODY the upstream's response body (no newline)
#   WORKER_CONNS nginx worker_connections / HAProxy maxconn
#   NGX_COMMON, NGX_HTTP  set by nginx_globals
#   PHOENIX_BIN  for validate_phoenix

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

# nginx_conf NAME HTTP_EXTRA SERVER_EXTRA: a proxying nginx listening on PORT[NAME].
nginx_conf() {
  local name=$1
  mkdir -p "$T/$name"
  cat >"$T/$name.conf" <<EOF
$NGX_COMMON
pid $T/$name.pid; error_log $T/$name.err warn;
http { $NGX_HTTP $2
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; keepalive_requests 100000000; }
  server { listen 127.0.0.1:${PORT[$name]} backlog=4096; $3
    location / { proxy_pass http://backend; proxy_http_version 1.1;
                 proxy_set_header Connection ""; } }
}
EOF
}

# haproxy_conf NAME FRONTEND_EXTRA: a proxying HAProxy listening on PORT[NAME].
# "no strict-limits": haproxy sizes fds as 2*maxconn (client+server) and would
# refuse to start above the hard ulimit; idle client conns need only one fd.
haproxy_conf() {
  local name=$1
  cat >"$T/$name.cfg" <<EOF
global
  nbthread 1
  maxconn $WORKER_CONNS
  no strict-limits
  pidfile $T/$name.pid
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout http-keep-alive 600s
frontend fe
  bind 127.0.0.1:${PORT[$name]}
  maxconn $WORKER_CONNS$2
  default_backend be
backend be
  server up 127.0.0.1:$UP_PORT
EOF
}

# phoenix_conf NAME HCM_EXTRA: phoenix listening on PORT[NAME], admin on ADMIN[NAME];
# HCM_EXTRA is YAML appended inside http_connection_manager (6-space indent).
# No access_log: access logging is off.
phoenix_conf() {
  local name=$1
  cat >"$T/$name.yaml" <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: ${ADMIN[$name]} } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: ${PORT[$name]} } }
    http_connection_manager:
      stat_prefix: bench
      route_config:
        virtual_hosts:
        - name: all
          domains: ["*"]
          routes:
          - match: { prefix: / }
            route: { cluster: upstream }$2
  clusters:
  - name: upstream
    connect_timeout: 1s
    max_idle_connections_per_host: 128
    load_assignment:
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } }
EOF
}

# validate_phoenix NAME: `phoenix --mode validate` on the generated config.
validate_phoenix() {
  local out
  if ! out=$("$PHOENIX_BIN" --mode validate -c "$T/$1.yaml" 2>&1); then
    echo "bench: $1 config invalid:" >&2; echo "$out" >&2; return 1
  fi
}
