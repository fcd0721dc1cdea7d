#!/usr/bin/env bash
# Runs the Phoenix demo on a fresh Debian 12 machine: installs packages, builds, then starts the
# demo "Phoenix app" (127.0.0.1:8081, restarted whenever it exits) and Phoenix in front of it
# (HTTP 127.0.0.1:8080, HTTPS 127.0.0.1:8443, admin 127.0.0.1:9901) with config/phoenix-app.yaml,
# and waits until Ctrl-C. Logs go to .demo/; the HTTPS listener's certificates (the demo PKI of
# tools/certs.sh) to .demo/certs/, made once and kept. With DEMO_NO_WAIT=1 it stops everything
# once the demo is up (smoke test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONFIG=config/phoenix-app.yaml
LOG_DIR=.demo
PHOENIX_LOG=$LOG_DIR/phoenix.log
APP_LOG=$LOG_DIR/app-1.log
CERTS_DIR=$LOG_DIR/certs  # config/phoenix-app.yaml names the files here (relative to the repo root).
READY_TIMEOUT_S=20

phoenix_pid=""
supervisor_pid=""

# shellcheck disable=SC2317  # Invoked by the traps.
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$phoenix_pid" ]; then kill "$phoenix_pid" 2>/dev/null || true; fi
  if [ -n "$supervisor_pid" ]; then kill "$supervisor_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [ -n "$phoenix_pid$supervisor_pid" ]; then echo "demo: stopped phoenix and app-1" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "demo: $*" >&2
  exit 1
}

# Like die, also showing the end of the logs.
fail() {
  echo "demo: $*" >&2
  for f in "$PHOENIX_LOG" "$APP_LOG"; do
    if [ -f "$f" ]; then
      echo "---- last lines of $f ----" >&2
      tail -n 20 "$f" >&2
    fi
  done
  exit 1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tools/setup.sh
tools/build.sh
for bin in build/phoenix build/phoenix-demo-app; do
  [ -x "$bin" ] || die "$bin was not built (see tools/build.sh)"
done
for port in 8080 8081 8443 9901; do
  if port_in_use "$port"; then
    die "127.0.0.1:$port is already in use (is another demo still running?)"
  fi
done

mkdir -p "$LOG_DIR"
if [ ! -e "$CERTS_DIR/ca.crt" ]; then
  tools/certs.sh "$CERTS_DIR" >&2 || die "could not make the demo certificates in $CERTS_DIR"
fi
: >"$PHOENIX_LOG"
: >"$APP_LOG"

# The app, kept alive like an orchestrator would: restarted whenever it exits (e.g. after /crash).
(
  trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' TERM
  while true; do
    build/phoenix-demo-app --port 8081 --name app-1 >>"$APP_LOG" 2>&1 &
    app_pid=$!
    status=0
    wait "$app_pid" || status=$?
    echo "demo: app-1 (pid $app_pid) exited with status $status; restarting it" | tee -a "$APP_LOG" >&2
    sleep 0.2  # Back-off, so that an app that cannot start does not spin.
  done
) &
supervisor_pid=$!

build/phoenix -c "$CONFIG" >"$PHOENIX_LOG" 2>&1 &
phoenix_pid=$!

# Ready once Phoenix says so, the app answers, and a request makes it through Phoenix to the app,
# over HTTP and over HTTPS (the certificate checked against the demo CA).
ready() {
  curl -sf -o /dev/null --max-time 1 http://127.0.0.1:9901/ready &&
    curl -sf -o /dev/null --max-time 1 http://127.0.0.1:8081/healthz &&
    curl -sf -o /dev/null --max-time 1 http://127.0.0.1:8080/healthz &&
    curl -sf -o /dev/null --max-time 1 --cacert "$CERTS_DIR/ca.crt" https://localhost:8443/healthz
}
deadline=$((SECONDS + READY_TIMEOUT_S))
until ready; do
  kill -0 "$phoenix_pid" 2>/dev/null || fail "phoenix exited during startup"
  ((SECONDS < deadline)) ||
    fail "not ready after ${READY_TIMEOUT_S} s (admin /ready, app :8081, proxy :8080 and :8443)"
  sleep 0.1
done

cat <<EOF

Phoenix (pid $phoenix_pid) is serving http://127.0.0.1:8080 and https://localhost:8443 in front of
the Phoenix app app-1 (127.0.0.1:8081).
What to try, from another terminal:

  curl -i http://127.0.0.1:8080/                          # the app's page, via Phoenix
  curl -i http://127.0.0.1:8080/crash                     # 403 from Phoenix: the app is never asked
  curl -i --path-as-is http://127.0.0.1:8080/CRASH        # path tricks are denied too (403):
  curl -i --path-as-is http://127.0.0.1:8080//crash
  curl -i --path-as-is http://127.0.0.1:8080/%63rash
  curl -i --path-as-is http://127.0.0.1:8080/x/../crash
      (the deny is the access_policy rule "deny_crash" in $CONFIG; Phoenix normalizes
       the path before any rule sees it, and the app receives the normalized path)
  curl -i http://127.0.0.1:8081/crash                     # crash the app directly: it is restarted,
  curl -i http://127.0.0.1:8080/                          #   and meanwhile Phoenix retries (the
      route's retry_policy), so this request waits for the new app-1 rather than failing
  curl -i 'http://127.0.0.1:8080/generatecert?ms=300'     # a CPU-heavy request (default 200 ms)

  HTTPS (127.0.0.1:8443, same routes and policies; certificates of the demo CA in $CERTS_DIR):
  curl -i --cacert $CERTS_DIR/ca.crt https://localhost:8443/
  curl -i --cacert $CERTS_DIR/ca.crt https://localhost:8443/crash      # 403 here too
  openssl s_client -brief -connect 127.0.0.1:8443 -servername localhost -CAfile $CERTS_DIR/ca.crt </dev/null
      (protocol, cipher, "Signature type: ECDSA"; with -sigalgs rsa_pss_rsae_sha256 added, the
       client takes RSA signatures only and gets the listener's RSA certificate: "RSA-PSS")

  Admin (127.0.0.1:9901):
  curl http://127.0.0.1:9901/stats
  curl http://127.0.0.1:9901/stats/prometheus
  curl http://127.0.0.1:9901/clusters
  curl http://127.0.0.1:9901/config_dump
  curl http://127.0.0.1:9901/server_info
  curl http://127.0.0.1:9901/certs                        # the HTTPS listener's certificates
  curl http://127.0.0.1:9901/stats | grep '\.tls\.'       # handshakes, resumptions, failures
  curl -X POST http://127.0.0.1:9901/certs/reload         # re-read them (edits are also picked up)

  Reload the config after editing $CONFIG:
  kill -HUP $phoenix_pid        or        curl -X POST http://127.0.0.1:9901/reload

  Logs: tail -f $PHOENIX_LOG $APP_LOG     (Phoenix's access log is in $PHOENIX_LOG)

EOF

if [ "${DEMO_NO_WAIT:-0}" = 1 ]; then
  echo "demo: DEMO_NO_WAIT=1, stopping" >&2
  exit 0
fi

echo "Press Ctrl-C to stop."
status=0
wait "$phoenix_pid" || status=$?
phoenix_pid=""
# SIGTERM to phoenix drains it and it exits 0: the demo is over, not failed.
if [ "$status" -eq 0 ]; then
  echo "demo: phoenix drained and exited" >&2
  exit 0
fi
fail "phoenix exited with status $status"
