#!/usr/bin/env bash
# The kill -9 crash harness (issue 4, "The proof"): see tests/crash/README.md.
#
#   tests/crash/run.sh [--trials N] [--seed S] [--binary PATH] [--keep] [crash.mjs options...]
#
# --binary defaults to <source>/build/sluice. Exit status 1 if any trial failed (its seed is printed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_root="$(cd "${here}/../.." && pwd)"
binary="${source_root}/build/sluice"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --binary=*) binary="${1#--binary=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ ! -x "${binary}" ]]; then
  echo "run.sh: no sluice binary at ${binary} (build it, or pass --binary PATH)" >&2
  exit 2
fi
if ! command -v node >/dev/null; then
  echo "run.sh: node not found (./test.sh installs it)" >&2
  exit 2
fi
for module in ws @duckdb/node-api; do
  if [[ ! -d "${source_root}/tests/node/node_modules/${module}" ]]; then
    echo "run.sh: npm module ${module} missing in tests/node/node_modules (./test.sh installs it)" >&2
    exit 2
  fi
done

exec node "${here}/crash.mjs" --binary "$(realpath "${binary}")" --source "${source_root}" "${args[@]}"
