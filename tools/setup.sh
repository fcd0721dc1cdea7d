#!/usr/bin/env bash
# Installs the Debian 12 packages Phoenix needs to build, test, demo and bench, then the npm
# modules of the gRPC test tools (test/integration/grpc, pinned by its package-lock.json).
# Idempotent: installs only what is missing or stale. Needs root (or sudo) on first run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libuv1-dev node-llhttp libnghttp2-dev libssl-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libyaml-cpp-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # Rotated logs are gzipped in-process (source/common/rotating_file.cc).
  zlib1g-dev
  # Fuzzing (tools/fuzz.sh): clang, its libFuzzer + sanitizer runtimes, llvm-symbolizer.
  clang libclang-rt-14-dev llvm
  curl python3 wrk nginx-light haproxy nghttp2-client valgrind procps
  # HTTP/2 abuse cases in the integration tests (a real client that can send any frame).
  python3-h2
  # WebSocket client and server of the integration tests (test_websocket.py).
  python3-websockets
  # promtool (test_admin_reload.py checks the /stats/prometheus exposition with it).
  prometheus
  # TLS: the demo PKI (tools/certs.sh) and the scan of a TLS listener (tools/testssl.sh).
  openssl testssl.sh
  # Global rate limits: the hiredis client and the Redis of the tests.
  libhiredis-dev redis-server
  # The control plane's HA mode shares its state through etcd (a real one in the tests).
  etcd-server etcd-client
  # The acceptance run of the supervisor's autoscaling (tools/bench/autoscale.sh) draws its PNG.
  gnuplot-nox
)
# Node and npm run the gRPC test tools. Debian's, unless there is a node already: a newer one
# (NodeSource's, which bundles npm) stays, Debian's packages would only fight it.
if ! command -v node >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -ne 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Package post-install scripts may start services we only use as bench fixtures.
  for svc in nginx haproxy prometheus redis-server etcd; do
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# The gRPC test tools' npm modules (@grpc/grpc-js, @grpc/proto-loader and what they need),
# exactly as package-lock.json pins them: installed when node_modules is missing, or again once
# a checkout brings a newer package-lock.json or package.json. No install scripts run (the only
# one, protobufjs's, just prints version advice). A failed install leaves no node_modules, so
# the next run tries again.
grpc_dir="$root/test/integration/grpc"
if [ ! -d "$grpc_dir/node_modules" ] \
    || [ "$grpc_dir/package-lock.json" -nt "$grpc_dir/node_modules" ] \
    || [ "$grpc_dir/package.json" -nt "$grpc_dir/node_modules" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm not found: it comes with node (Debian's npm package, or NodeSource's nodejs)" >&2
    exit 1
  fi
  echo "setup: npm ci in test/integration/grpc" >&2
  if ! (cd "$grpc_dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null); then
    rm -rf "$grpc_dir/node_modules"
    echo "setup: npm ci failed in $grpc_dir" >&2
    exit 1
  fi
  touch "$grpc_dir/node_modules"
fi
