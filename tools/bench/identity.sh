#!/usr/bin/env bash
# Benchmark (not a test): what mesh identity (issue 14) costs phoenix-cp, and how long a sidecar
# waits for its first workload certificate. One phoenix-cp with a generated mesh CA
# (--ca-dir, --ca-generate), bearer tokens for every node and an empty resource directory.
#
# 1. Signing rate: ONE node process (tools/bench/identity_client.js, grpc-js) calls
#    IdentityService/CreateCertificate with C requests in flight (one channel, so one TCP
#    connection, each), nodes bench-0..N-1 in turn, each with its own token and its own
#    P-256 key and CSR (its default identity, spiffe://phoenix.local/ns/default/sa/bench-I),
#    made once with the openssl CLI: phoenix-cp signs the same CSR again each time. After a
#    warm-up (one issuance per node, not measured): R first issuances (token), then R renewals
#    (the chain the node got last + its proof, `openssl dgst -sha256 -sign` of the CSR's bytes,
#    no token). Certificates per second of each.
# 2. phoenix-cp's CPU per certificate (utime + stime of /proc/PID/stat, all threads, across each
#    phase / R), so also the client's connection handling, phoenix-cp's info log line and audit
#    line per certificate; from the renewal figure, what 1,000 sidecars renewing every 12 h cost
#    it (1000/12 renewals an hour x CPU each, in CPU seconds an hour); its VmRSS.
# 3. Sidecar start: K times, the real phoenix (--concurrency 1) with `workload_identity: {}` and
#    ADS at phoenix-cp, its own node id and token: (a) spawn -> its admin /certs showing
#    workload_identity.serial (polled every 5 ms by the node process), (b) its own log's
#    timestamps (ms) from "workload identity: asking" to "... valid until" (key + CSR, the
#    call, phoenix-cp's checks and signature, installing the certificate). p50 and max.
#
# Usage: tools/bench/identity.sh [--requests R] [--concurrency C] [--nodes N] [--starts K]
#   --requests R     requests per phase (default 3000)
#   --concurrency C  requests in flight (default 8)
#   --nodes N        distinct nodes, each its own key, CSR and token (default 100)
#   --starts K       sidecar starts (default 10)
# Env:   BUILD_DIR=build  where phoenix and phoenix-cp are (relative to the repo root or
#        absolute); PHOENIX_BIN, PHOENIX_CP_BIN override each. Copied to the temp dir first,
#        so a rebuild meanwhile does not matter
#        CP_LOG_LEVEL=info  phoenix-cp's --log-level (info, its default, logs every certificate)
#        BENCH_KEEP_TMP=1   keep the temp dir (CA, keys, logs, audit)
# Needs node and the grpc-js of test/integration/grpc/node_modules (tools/setup.sh), openssl.
#
# Pinning (2+ CPUs): phoenix-cp on the first CPU, the node process and the sidecars on the
# second, so the rates are phoenix-cp's on one CPU. A run takes well under a minute.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
PHOENIX_BIN=${PHOENIX_BIN:-$BUILD_DIR/phoenix}
PHOENIX_CP_BIN=${PHOENIX_CP_BIN:-$BUILD_DIR/phoenix-cp}
[[ $PHOENIX_BIN == /* ]] || PHOENIX_BIN="$ROOT/$PHOENIX_BIN"
[[ $PHOENIX_CP_BIN == /* ]] || PHOENIX_CP_BIN="$ROOT/$PHOENIX_CP_BIN"
CLIENT_JS="$ROOT/tools/bench/identity_client.js"
CP_LOG_LEVEL=${CP_LOG_LEVEL:-info}
REQUESTS=3000 CONCURRENCY=8 NODES=100 STARTS=10
TRUST_DOMAIN=phoenix.local
CP_PID="" CLIENT_PID=""

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --requests) REQUESTS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --nodes) NODES=$2; shift 2 ;;
    --starts) STARTS=$2; shift 2 ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
for t in node openssl curl; do command -v "$t" >/dev/null || die "missing $t"; done
[ -d "$ROOT/test/integration/grpc/node_modules/@grpc/grpc-js" ] ||
  die "no grpc-js in test/integration/grpc/node_modules (tools/setup.sh runs npm ci there)"
for bin in "$PHOENIX_BIN" "$PHOENIX_CP_BIN"; do
  [ -x "$bin" ] || die "no binary at $bin (tools/build.sh phoenix phoenix-cp)"
done

T=$(mktemp -d /tmp/phoenix-bench-identity.XXXXXX)
stop_pid() {  # TERM, up to 5 s, then KILL
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  # The client first (it stops its sidecar on TERM), then a sidecar it may have left.
  if [ -n "$CLIENT_PID" ]; then stop_pid "$CLIENT_PID"; fi
  if [ -s "$T/start/sidecar.pid" ]; then kill -KILL "$(cat "$T/start/sidecar.pid")" 2>/dev/null || true; fi
  if [ -n "$CP_PID" ]; then stop_pid "$CP_PID"; fi
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then echo "bench: temp dir kept: $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binaries as they are now: the build dir may be rebuilt while this runs.
mkdir -p "$T/bin" "$T/resources" "$T/nodes" "$T/start"
cp "$PHOENIX_BIN" "$T/bin/phoenix"
cp "$PHOENIX_CP_BIN" "$T/bin/phoenix-cp"

read -r -a CPUS <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
if [ ${#CPUS[@]} -ge 2 ]; then
  PIN_CP=(taskset -c "${CPUS[0]}") PIN_LOAD=(taskset -c "${CPUS[1]}") SIDECAR_PIN=${CPUS[1]}
  PINNING="phoenix-cp: CPU ${CPUS[0]}; node client and sidecars: CPU ${CPUS[1]}"
else
  PIN_CP=() PIN_LOAD=() SIDECAR_PIN="" PINNING="none (only 1 CPU)"
fi

# Each bench node: its key and CSR (its default identity), the proof of renewal (the CSR's
# bytes signed by that key: phoenix-cp checks it against the presented certificate), a token.
log "making $NODES keys and CSRs (openssl)"
for i in $(seq 0 $((NODES - 1))); do
  n="$T/nodes/bench-$i"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$n.key" \
    -out "$n.csr" -subj "/CN=bench-$i" \
    -addext "subjectAltName=URI:spiffe://$TRUST_DOMAIN/ns/default/sa/bench-$i" 2>/dev/null
  openssl dgst -sha256 -sign "$n.key" -out "$n.proof" "$n.csr"
  echo "bench-token-$i bench-$i node:bench-$i"
done >"$T/tokens"
for k in $(seq 0 $((STARTS - 1))); do echo "start-token-$k start-$k node:start-$k"; done >>"$T/tokens"

"${PIN_CP[@]}" "$T/bin/phoenix-cp" --resources "$T/resources" --listen 127.0.0.1:0 \
  --ca-dir "$T/ca" --ca-generate --tokens "$T/tokens" --trust-domain "$TRUST_DOMAIN" \
  --audit-log "$T/audit.jsonl" --log-level "$CP_LOG_LEVEL" </dev/null >/dev/null 2>"$T/phoenix-cp.log" &
CP_PID=$!
# Ready once it logs its port (checked every 50 ms, for up to 10 s).
PORT=""
for _ in $(seq 200); do
  kill -0 "$CP_PID" 2>/dev/null || break
  line=$(grep -m1 'phoenix-cp: serving ADS on' "$T/phoenix-cp.log" || true)
  if [ -n "$line" ]; then PORT=${line##*:}; PORT=${PORT%%,*}; break; fi
  sleep 0.05
done
if [ -z "$PORT" ]; then
  tail -n20 "$T/phoenix-cp.log" >&2
  die "phoenix-cp did not start"
fi
TARGET=127.0.0.1:$PORT

# client OUT MODE ARGS...: the node process (pinned), its output in OUT; fails the run on error.
client() {
  local out=$1 rc=0; shift
  "${PIN_LOAD[@]}" node "$CLIENT_JS" "$@" --target "$TARGET" >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  grep -v '^RESULT ' "$out" || true
  if [ "$rc" != 0 ]; then
    echo "bench: identity_client.js $1 failed (exit $rc); phoenix-cp log tail:" >&2
    tail -n10 "$T/phoenix-cp.log" >&2
    exit 1
  fi
}

log "signing: $REQUESTS issuances then $REQUESTS renewals, $CONCURRENCY in flight, $NODES nodes;" \
  "phoenix-cp pid $CP_PID on $TARGET; pinning: $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)"
client "$T/sign.out" sign --cp-pid "$CP_PID" --nodes-dir "$T/nodes" --nodes "$NODES" \
  --requests "$REQUESTS" --concurrency "$CONCURRENCY"
log "sidecar start: $STARTS x phoenix with workload_identity"
client "$T/start.out" start --phoenix "$T/bin/phoenix" --work "$T/start" --starts "$STARTS" \
  ${SIDECAR_PIN:+--pin "$SIDECAR_PIN"}

# phoenix-cp's warnings and errors, each distinct message once with its count.
echo "phoenix-cp log: $(wc -l <"$T/phoenix-cp.log") lines; warnings/errors (count, message):"
sed -n 's/^[^ ]* \[\(warn\|error\|critical\)\] /[\1] /p' "$T/phoenix-cp.log" | sort | uniq -c |
  sed 's/^/  /' | cut -c1-170
echo

# shellcheck disable=SC2016  # JavaScript: its ${...} are not the shell's
node -e '
  const sign = JSON.parse(process.argv[1]), start = JSON.parse(process.argv[2]);
  const f = (x, d) => x.toFixed(d);
  const row = (name, value, unit) => console.log(`  ${name.padEnd(44)} ${value.padStart(9)} ${unit}`);
  console.log(`Summary: phoenix-cp on one CPU, ${sign.concurrency} requests in flight, ${sign.requests} per phase, ${sign.nodes} nodes`);
  row("first issuance (token)", f(sign.issue.per_sec, 0), "certificates/s");
  row("renewal (presented certificate + proof)", f(sign.renew.per_sec, 0), "certificates/s");
  row("first issuance latency p50 / p99", `${f(sign.issue.p50_ms, 2)}/${f(sign.issue.p99_ms, 2)}`, "ms");
  row("renewal latency p50 / p99", `${f(sign.renew.p50_ms, 2)}/${f(sign.renew.p99_ms, 2)}`, "ms");
  row("CPU busy in issuance: phoenix-cp / client", `${f(100 * sign.issue.cp_busy, 0)}/${f(100 * sign.issue.client_busy, 0)}`, "%");
  row("CPU busy in renewal: phoenix-cp / client", `${f(100 * sign.renew.cp_busy, 0)}/${f(100 * sign.renew.client_busy, 0)}`, "%");
  row("phoenix-cp CPU per first issuance", f(sign.issue.cpu_us, 0), "us");
  row("phoenix-cp CPU per renewal", f(sign.renew.cpu_us, 0), "us");
  row("1,000 sidecars renewing every 12 h", f((1000 / 12) * sign.renew.cpu_us / 1e6, 3), "CPU s/hour");
  row("phoenix-cp RSS: start / after all / peak",
    `${f(sign.rss_start_kib / 1024, 1)}/${f(sign.renew.rss_kib / 1024, 1)}/${f(sign.hwm_kib / 1024, 1)}`, "MiB");
  row(`sidecar spawn -> /certs serial p50 / max (${start.starts})`, `${f(start.spawn_p50_ms, 0)}/${f(start.spawn_max_ms, 0)}`, "ms");
  row("  of which spawn -> log asking p50 / max", `${f(start.ask_p50_ms, 0)}/${f(start.ask_max_ms, 0)}`, "ms");
  row("sidecar log asking -> valid until p50 / max", `${f(start.log_p50_ms, 0)}/${f(start.log_max_ms, 0)}`, "ms");
' "$(sed -n 's/^RESULT //p' "$T/sign.out")" "$(sed -n 's/^RESULT //p' "$T/start.out")"
echo "(phoenix-cp RSS \"start\": after the warm-up issuances; CPU: utime+stime over each phase / requests,"
echo " gRPC, checks, signing, its log and audit lines included; CPU busy: share of the phase's wall time,"
echo " near 100% for phoenix-cp when it limits the rate. Other load on the machine skews the rates: the"
echo " load average before the run is in the header)"
