#!/usr/bin/env bash
# Installs the Debian 12 packages Phoenix needs to build, test, demo and bench.
# Idempotent: installs only what is missing. Needs root (or sudo) on first run.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libuv1-dev node-llhttp libnghttp2-dev libssl-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libyaml-cpp-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # Fuzzing (tools/fuzz.sh): clang, its libFuzzer + sanitizer runtimes, llvm-symbolizer.
  clang libclang-rt-14-dev llvm
  curl python3 wrk nginx-light haproxy nghttp2-client valgrind procps
  # HTTP/2 abuse cases in the integration tests (a real client that can send any frame).
  python3-h2
  # TLS: the demo PKI (tools/certs.sh) and the scan of a TLS listener (tools/testssl.sh).
  openssl testssl.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Package post-install scripts may start services we only use as bench fixtures.
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
