#!/usr/bin/env bash
# Configures (once) and builds Phoenix with CMake + Ninja.
#   tools/build.sh            -> build/        (RelWithDebInfo)
#   BUILD_DIR=build-asan PHOENIX_SANITIZE=ON tools/build.sh   -> ASan+UBSan build
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
SANITIZE=${PHOENIX_SANITIZE:-OFF}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DPHOENIX_SANITIZE="$SANITIZE"
fi
# Two cores: two jobs. More only thrashes memory on protobuf-heavy translation units.
ninja -C "$BUILD_DIR" -j "${JOBS:-$(nproc)}" "$@"
