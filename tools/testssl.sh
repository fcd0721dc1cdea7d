#!/usr/bin/env bash
# Runs testssl.sh (Debian's testssl.sh package, see tools/setup.sh) against a Phoenix TLS
# listener with Phoenix's default TLS settings and an ECDSA and an RSA certificate:
#   tools/testssl.sh                          # tests build/phoenix
#   PHOENIX_BIN=/path/to/phoenix tools/testssl.sh
#   TESTSSL_OUT=DIR tools/testssl.sh          # keeps testssl's report (log, JSON) and phoenix's log in DIR
#   tools/testssl.sh --hints -c               # more testssl.sh options (here: hints, client simulation)
# Checks: protocols (-p), cipher categories (-s), forward secrecy (-f), server preference (-P),
# server defaults and certificates (-S) and every vulnerability test (-U); not client
# simulation, HTTP headers (the app's business) nor GREASE. The demo CA is added as trusted
# (--add-ca), so the chain of trust is judged as a client of this PKI would. No --fast: it
# tests ciphers with the local openssl only (Debian's has no RC4, so the RC4 test is skipped
# with a WARN) and did not make the run measurably shorter. Takes 1.5 to 3 minutes on 2 cores.
# Prints the number of findings per severity, then every finding rated MEDIUM or above and
# every "NOT ok" line. The demo certificates' missing revocation URI (cert_revocation: the demo
# CA runs no CRL or OCSP service) is listed apart and not counted: it says nothing of Phoenix. Exit 0 when there is no HIGH or CRITICAL finding and no "NOT ok";
# 1 when there is; 2 when the scan itself could not be done.
set -euo pipefail
# Paths given relative to where this is run from, before moving to the repo root.
if [ -n "${PHOENIX_BIN:-}" ] && [[ "$PHOENIX_BIN" != /* ]]; then PHOENIX_BIN=$PWD/$PHOENIX_BIN; fi
if [ -n "${TESTSSL_OUT:-}" ] && [[ "$TESTSSL_OUT" != /* ]]; then TESTSSL_OUT=$PWD/$TESTSSL_OUT; fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PHOENIX_BIN=${PHOENIX_BIN:-build/phoenix}
READY_TIMEOUT_S=15

die() {
  echo "testssl: $*" >&2
  exit 2
}

[ -x "$PHOENIX_BIN" ] || die "$PHOENIX_BIN is not an executable (build it, or set PHOENIX_BIN)"
testssl_cmd=""
for c in testssl testssl.sh; do
  if command -v "$c" >/dev/null 2>&1; then
    testssl_cmd=$c
    break
  fi
done
[ -n "$testssl_cmd" ] || die "testssl.sh not found (tools/setup.sh installs Debian's testssl.sh)"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"

start_s=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/phoenix-testssl.XXXXXX")
phoenix_pid=""
testssl_pid=""

# shellcheck disable=SC2317  # Invoked by the traps.
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$testssl_pid" ]; then
    kill "$testssl_pid" 2>/dev/null || true
    wait "$testssl_pid" 2>/dev/null || true
  fi
  if [ -n "$phoenix_pid" ]; then
    kill "$phoenix_pid" 2>/dev/null || true
    wait "$phoenix_pid" 2>/dev/null || true
  fi
  if [ -n "${TESTSSL_OUT:-}" ]; then
    mkdir -p "$TESTSSL_OUT"
    cp -f "$work"/testssl.log "$work"/testssl.json "$work"/phoenix.log "$TESTSSL_OUT"/ 2>/dev/null || true
    echo "testssl: reports kept in $TESTSSL_OUT" >&2
  fi
  # testssl's own children (tee, openssl) may still be writing there for a moment.
  rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port that is free now, below the ephemeral range (as the integration tests pick theirs).
pick_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 10000))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

tools/certs.sh "$work/certs" >/dev/null || die "tools/certs.sh failed"
port=$(pick_port)
admin_port=$(pick_port)
[ "$port" != "$admin_port" ] || admin_port=$(pick_port)

cat >"$work/phoenix.yaml" <<EOF
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: $admin_port }
static_resources:
  listeners:
  - name: https
    address:
      socket_address: { address: 127.0.0.1, port_value: $port }
    filter_chains:
    - transport_socket:
        name: phoenix.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/phoenix.config.v1.DownstreamTlsContext
          common_tls_context:
            tls_certificates:
            - certificate_chain: { filename: $work/certs/server-ecdsa.crt }
              private_key: { filename: $work/certs/server-ecdsa.key }
            - certificate_chain: { filename: $work/certs/server-rsa.crt }
              private_key: { filename: $work/certs/server-rsa.key }
      http_connection_manager:
        route_config:
          virtual_hosts:
          - name: all
            domains: ["*"]
            routes:
            - match: { prefix: / }
              direct_response: { status: 200, body: { inline_string: "hello from phoenix\n" } }
EOF

"$PHOENIX_BIN" -c "$work/phoenix.yaml" --log-level warn >"$work/phoenix.log" 2>&1 &
phoenix_pid=$!
deadline=$((SECONDS + READY_TIMEOUT_S))
until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$admin_port/ready"; do
  if ! kill -0 "$phoenix_pid" 2>/dev/null; then
    tail -n 20 "$work/phoenix.log" >&2
    die "phoenix exited during startup"
  fi
  ((SECONDS < deadline)) || die "phoenix not ready after ${READY_TIMEOUT_S} s"
  sleep 0.1
done
echo "testssl: phoenix (pid $phoenix_pid) serves TLS on 127.0.0.1:$port; running $testssl_cmd" >&2

# localhost (the certificates' name, sent as SNI) at 127.0.0.1 with no DNS lookups; batch mode
# never waits for an answer; the timeouts keep a hung handshake from stalling the run. In the
# background, so that a signal to this script ends it too (the trap kills it).
scan_start_s=$SECONDS
testssl_status=0
"$testssl_cmd" --quiet --color 0 --warnings batch --nodns none --ip 127.0.0.1 \
  --connect-timeout 5 --openssl-timeout 10 --add-ca "$work/certs/ca.crt" \
  --jsonfile "$work/testssl.json" --logfile "$work/testssl.log" \
  -p -s -f -P -S -U "$@" "localhost:$port" >/dev/null 2>"$work/testssl.stderr" </dev/null &
testssl_pid=$!
wait "$testssl_pid" || testssl_status=$?
testssl_pid=""
scan_s=$((SECONDS - scan_start_s))
# testssl.sh's own error codes are 242..255; below that its status is a sum over the tests.
if [ "$testssl_status" -ge 242 ] || [ ! -s "$work/testssl.json" ]; then
  cat "$work/testssl.stderr" >&2
  [ -f "$work/testssl.log" ] && tail -n 20 "$work/testssl.log" >&2
  die "$testssl_cmd failed (status $testssl_status)"
fi
kill -0 "$phoenix_pid" 2>/dev/null || die "phoenix died during the scan (see TESTSSL_OUT=DIR for its log)"

status=0
python3 - "$work/testssl.json" "$work/testssl.log" "$scan_s" <<'PY' || status=$?
import json
import sys

json_path, log_path, scan_s = sys.argv[1], sys.argv[2], sys.argv[3]
with open(json_path) as f:
    findings = json.load(f)
order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "FATAL", "INFO", "OK", "DEBUG"]
# Properties of the demo certificates, not of Phoenix: the demo CA publishes no CRL or OCSP
# responder, so its leaves carry no revocation URI. Listed, not counted.
DEMO_PKI = ("cert_revocation",)
demo = [i for i in findings if i.get("id", "").startswith(DEMO_PKI)]
for item in demo:
    print(f"  (demo PKI, not counted) {item['severity']} {item['id']}: {item.get('finding', '')}")
findings = [i for i in findings if i not in demo]
counts = {}
for item in findings:
    counts[item.get("severity", "?")] = counts.get(item.get("severity", "?"), 0) + 1
ranked = sorted(counts, key=lambda s: order.index(s) if s in order else len(order))
print(f"testssl: {len(findings)} findings in {scan_s} s: "
      + ", ".join(f"{s} {counts[s]}" for s in ranked))
severe = [i for i in findings if i.get("severity") in ("CRITICAL", "HIGH", "MEDIUM", "FATAL")]
for item in sorted(severe, key=lambda i: order.index(i["severity"])):
    cve = f" [{item['cve']}]" if item.get("cve") else ""
    print(f"  {item['severity']:<8} {item['id']}: {item.get('finding', '')}{cve}")
with open(log_path, errors="replace") as f:
    not_ok = [line.rstrip("\n") for line in f
              if "NOT ok" in line and "neither CRL nor OCSP URI provided" not in line]
for line in not_ok:
    print(f"  NOT ok: {line}")
if not any(i.get("id") == "TLS1_3" for i in findings):
    print("testssl: the report has no protocol findings: the scan did not complete")
    sys.exit(2)
bad = counts.get("CRITICAL", 0) + counts.get("HIGH", 0) + counts.get("FATAL", 0)
if bad or not_ok:
    print(f"testssl: FAIL: {bad} finding(s) rated HIGH or CRITICAL, {len(not_ok)} 'NOT ok' line(s)")
    sys.exit(1)
print("testssl: PASS: no finding rated HIGH or CRITICAL, no 'NOT ok'")
PY
echo "testssl: done in $((SECONDS - start_s)) s (scan $scan_s s)" >&2
exit "$status"
