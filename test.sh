#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest. Idempotent; works as root on
# a bare Debian bookworm machine. Extra arguments go to ctest (e.g. ./test.sh -R codec).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j"$(nproc)"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
