#!/usr/bin/env bash
# Installs what is missing, builds in Release, and starts one node on conf/sluice.conf with its
# embedded storage under ./data. Extra arguments are passed to `sluice serve`
# (e.g. ./run.sh --gateway.port=0).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target sluice
mkdir -p data
exec ./build/sluice serve --config-file=conf/sluice.conf "$@"
