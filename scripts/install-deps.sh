#!/usr/bin/env bash
# Installs every Debian package and npm module sluice needs; idempotent, safe to run as root repeatedly.
# Reaches only the Debian and npm registries. `--tests` (used by ./test.sh) adds what only the tests
# need: the browser for the console test, clang for the fuzz targets, prometheus, and the test
# suite's npm modules; ./run.sh installs the rest only.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --tests) WITH_TESTS=1 ;;
    *) echo "usage: scripts/install-deps.sh [--tests]" >&2; exit 64 ;;
  esac
done

APT_PACKAGES=(
  build-essential cmake pkg-config ccache git
  libcaf-dev libboost-dev libmsgpack-cxx-dev liblmdb-dev libfmt-dev libspdlog-dev
  libsimdjson-dev libssl-dev libzstd-dev libsnappy-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhyperscan-dev libre2-dev zlib1g-dev libcsv-dev
  libxxhash-dev # XXH3 for the cluster ring (actors/cluster/ring.cpp)
  libjemalloc-dev # the sluice executable's malloc (app/CMakeLists.txt SLUICE_ALLOCATOR)
  wrk curl strace
)
if ((WITH_TESTS)); then
  APT_PACKAGES+=(
    prometheus # promtool checks /metrics
    chromium # the console's browser test (tests/integration/console.test.mjs, playwright-core)
    clang libclang-rt-14-dev llvm-14 # libFuzzer targets (tests/fuzz): runtime; llvm-symbolizer for traces
  )
fi
# node (with npm) may already come from elsewhere (nodesource bundles npm); Debian's only when absent.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

# node modules for the integration tests (ws client); package-lock.json pins versions.
if ((WITH_TESTS)) && [ -f tests/node/package.json ]; then
  if [ ! -d tests/node/node_modules ] || [ tests/node/package.json -nt tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
    touch tests/node/node_modules
  fi
fi
# the console's front-end libraries (uPlot), served by the node from console/node_modules (no CDN).
if [ -f console/package.json ]; then
  if [ ! -d console/node_modules ] || [ console/package.json -nt console/node_modules ]; then
    (cd console && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
    touch console/node_modules
  fi
fi
