#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest. Idempotent; works as root on
# a bare Debian bookworm machine. Extra arguments go to ctest (e.g. ./test.sh -R codec).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh --tests
BUILD_DIR=${BUILD_DIR:-build}
# The libFuzzer targets (docs/fuzzing.md): clang, ASan + UBSan, a build dir of their own; ctest runs
# each for a bounded time (tests/CMakeLists.txt, SLUICE_FUZZ_DIR).
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSLUICE_FUZZ_DIR="$PWD/$FUZZ_BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$(nproc)"
CC=clang CXX=clang++ cmake -S . -B "$FUZZ_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSLUICE_FUZZ=ON
cmake --build "$FUZZ_BUILD_DIR" -j"$(nproc)" --target fuzz_all
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
