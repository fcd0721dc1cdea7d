#!/usr/bin/env bash
# Runs the Phoenix demo on a fresh Debian 12 machine: installs packages, builds, then starts
# Phoenix (HTTP 127.0.0.1:8080, HTTPS 127.0.0.1:8443, admin 127.0.0.1:9901) with
# config/phoenix-app.yaml, which runs the demo "Phoenix app" itself (its supervisor section:
# instances on 127.0.0.1:8081-8084, restarted when they crash, added under load), and waits until
# Ctrl-C; phoenix then drains, stops the app's instances and exits 0. Logs go to .demo/; the HTTPS
# listener's certificates (the demo PKI of tools/certs.sh) to .demo/certs/, made once and kept.
# With DEMO_NO_WAIT=1 it stops everything once the demo is up (smoke test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONFIG=config/phoenix-app.yaml
LOG_DIR=.demo
PHOENIX_LOG=$LOG_DIR/phoenix.log
APP_LOG=$LOG_DIR/app.log  # The supervisor section's log_path: every instance's output.
CERTS_DIR=$LOG_DIR/certs  # config/phoenix-app.yaml names the files here (relative to the repo root).
READY_TIMEOUT_S=20

phoenix_pid=""

# shellcheck disable=SC2317  # Invoked by the traps.
cleanup() {
  trap - EXIT INT TERM
  # SIGTERM: phoenix drains, stops the app's instances (SIGTERM, then SIGKILL after the grace
  # period) and exits.
  if [ -n "$phoenix_pid" ]; then kill "$phoenix_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [ -n "$phoenix_pid" ]; then echo "demo: stopped phoenix and the app's instances" >&2; fi
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
for port in 8080 8081 8082 8083 8084 8443 9901; do
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

# Phoenix starts the app itself (config/phoenix-app.yaml, supervisor): no loop of our own.
build/phoenix -c "$CONFIG" >"$PHOENIX_LOG" 2>&1 &
phoenix_pid=$!

# Ready once Phoenix says so, both of the app's instances are (GET /apps), and a request makes it
# through Phoenix to the app, over HTTP and over HTTPS (the certificate checked against the
# demo CA).
ready() {
  curl -sf -o /dev/null --max-time 1 http://127.0.0.1:9901/ready &&
    [ "$(curl -sf --max-time 1 http://127.0.0.1:9901/apps | grep -o '"state":"READY"' | wc -l)" -ge 2 ] &&
    curl -sf -o /dev/null --max-time 1 http://127.0.0.1:8080/healthz &&
    curl -sf -o /dev/null --max-time 1 --cacert "$CERTS_DIR/ca.crt" https://localhost:8443/healthz
}
deadline=$((SECONDS + READY_TIMEOUT_S))
until ready; do
  kill -0 "$phoenix_pid" 2>/dev/null || fail "phoenix exited during startup"
  ((SECONDS < deadline)) ||
    fail "not ready after ${READY_TIMEOUT_S} s (admin /ready, 2 app instances in /apps, proxy :8080 and :8443)"
  sleep 0.1
done

cat <<EOF

Phoenix (pid $phoenix_pid) is serving http://127.0.0.1:8080 and https://localhost:8443 in front of
the Phoenix app, whose instances it runs itself (two now, up to four under load, on 8081-8084).
What to try, from another terminal:

  curl -i http://127.0.0.1:8080/                          # the app's page, via Phoenix
  curl -i http://127.0.0.1:8080/crash                     # 403 from Phoenix: the app is never asked
  curl -i --path-as-is http://127.0.0.1:8080/CRASH        # path tricks are denied too (403):
  curl -i --path-as-is http://127.0.0.1:8080//crash
  curl -i --path-as-is http://127.0.0.1:8080/%63rash
  curl -i --path-as-is http://127.0.0.1:8080/x/../crash
      (the deny is the access_policy rule "deny_crash" in $CONFIG; Phoenix normalizes
       the path before any rule sees it, and the app receives the normalized path)
  curl http://127.0.0.1:9901/apps                         # the app's instances: pid, port, state
  curl -i http://127.0.0.1:8081/crash                     # crash an instance directly: phoenix
  curl -i http://127.0.0.1:8080/                          #   restarts it after its back-off, and
      meanwhile the other instance serves (a request caught by the crash is retried there)
  curl http://127.0.0.1:9901/stats | grep supervisor      # crashes, restarts, scale_up/down
  for i in \$(seq 300); do curl -s -o /dev/null http://127.0.0.1:8080/; sleep 0.02; done
      (about 40 requests per second: after 5 s above 10 per instance, phoenix adds instances;
       30 s after the load stops, it drains and stops them again, down to two)
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

  Logs: tail -f $PHOENIX_LOG $APP_LOG     (Phoenix's access log and the supervisor's events
      are in $PHOENIX_LOG; the app's instances write to $APP_LOG)

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
