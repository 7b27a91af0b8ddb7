#!/usr/bin/env bash
# Integration smoke test with the C++ client: CLI (--help, check), then sluice_loadgen against a real
# node in ws-msgpack and http-json mode, then SIGTERM and a comparison of the sink files with
# sluice_events_accepted_total.
#
#   tests/integration/loadgen_smoke.sh <sluice binary> <sluice_loadgen binary> <conf dir>
set -euo pipefail

SLUICE=${1:?usage: loadgen_smoke.sh SLUICE LOADGEN CONF_DIR}
LOADGEN=${2:?usage: loadgen_smoke.sh SLUICE LOADGEN CONF_DIR}
CONF_DIR=${3:?usage: loadgen_smoke.sh SLUICE LOADGEN CONF_DIR}
DURATION_S=${LOADGEN_DURATION_S:-2}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-smoke-XXXXXX")
NODE_PID=
cleanup() {
  local rc=$?
  if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -KILL "$NODE_PID" 2>/dev/null || true
  fi
  if [[ $rc -eq 0 ]]; then
    rm -rf "$TMP"
  else
    echo "data dir kept for inspection: $TMP" >&2
    [[ -f $TMP/node.err ]] && { echo "--- node stderr (tail) ---" >&2; tail -n 30 "$TMP/node.err" >&2; }
  fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() {
  echo "ok - $*"
}

# ---- CLI
help_out=$("$SLUICE" --help) || fail "sluice --help exited $?"
grep -q -- '--gateway.port' <<<"$help_out" || fail "sluice --help does not list --gateway.port"
ok "sluice --help exits 0 and lists --gateway.port"

shopt -s nullglob
confs=("$CONF_DIR"/*.conf "$CONF_DIR"/cluster/*.conf) # data files (titles.csv, geoip.csv) are loaded through sluice.conf
((${#confs[@]} > 0)) || fail "no files in $CONF_DIR"
for f in "${confs[@]}"; do
  out=$("$SLUICE" check --config-file="$f" 2>&1) || fail "sluice check --config-file=$f exited $?: $out"
done
ok "sluice check exits 0 for ${#confs[@]} file(s) in conf/ and conf/cluster/"

cp "$CONF_DIR/sluice.conf" "$TMP/typo.conf"
printf '\n[gateway]\ntypo = 1\n' >>"$TMP/typo.conf"
set +e
out=$("$SLUICE" check --config-file="$TMP/typo.conf" 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "sluice check on a config with [gateway] typo exited $rc (want 2): $out"
grep -q 'gateway\.typo' <<<"$out" || fail "sluice check does not name gateway.typo: $out"
ok "unknown key gateway.typo -> exit 2 naming it"

# ---- node
DATA="$TMP/data"
mkdir -p "$DATA"
# Anonymous access and no device rate limit: this test is about the client, not access control
# (docs/access.md; tests/integration/access_*.test.mjs cover that).
"$SLUICE" serve --config-file="$CONF_DIR/sluice.conf" --gateway.port=0 --sluice.data-dir="$DATA" \
  --auth.anonymous='["ingest","read","admin"]' --limits.device-events-per-s=0 \
  >"$TMP/node.out" 2>"$TMP/node.err" &
NODE_PID=$!

PORT=
deadline=$((SECONDS + 20))
while [[ -z $PORT ]]; do
  kill -0 "$NODE_PID" 2>/dev/null || fail "node exited before listening"
  if line=$(grep -m1 -o 'listening on 127\.0\.0\.1:[0-9]*' "$TMP/node.out" 2>/dev/null); then
    PORT=${line##*:}
    break
  fi
  ((SECONDS < deadline)) || fail "node did not print 'listening on' within 20 s"
  sleep 0.05
done
[[ $(cat "$DATA/gateway.port") == "$PORT" ]] || fail "gateway.port file does not match port $PORT"
ok "node listening on port $PORT"

run_loadgen() {
  local mode=$1
  local out rc
  set +e
  out=$(timeout 60 "$LOADGEN" --port="$PORT" --mode="$mode" --connections=3 --events-per-batch=50 \
    --duration-s="$DURATION_S" --inflight=4 --devices-per-connection=2 2>&1)
  rc=$?
  set -e
  echo "   $mode: $(tr '\n' ' ' <<<"$out")"
  [[ $rc -eq 0 ]] || fail "sluice_loadgen --mode=$mode exited $rc"
  grep -q '\berrors=0\b' <<<"$out" || fail "sluice_loadgen --mode=$mode reported errors"
  grep -q '\brejected=0\b' <<<"$out" || fail "sluice_loadgen --mode=$mode reported rejected events"
  ok "sluice_loadgen $mode, errors=0"
}
run_loadgen ws-msgpack
run_loadgen http-json

metrics=$(curl -sf --max-time 10 "http://127.0.0.1:$PORT/metrics") || fail "GET /metrics failed"
accepted=$(awk '$1 == "sluice_events_accepted_total" { print $2 }' <<<"$metrics")
[[ -n $accepted ]] || fail "no sluice_events_accepted_total in /metrics"
((accepted > 0)) || fail "sluice_events_accepted_total is $accepted"
ok "node accepted $accepted events"

kill -TERM "$NODE_PID"
deadline=$((SECONDS + 20))
while kill -0 "$NODE_PID" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "node still running 20 s after SIGTERM"
  sleep 0.05
done
set +e
wait "$NODE_PID"
rc=$?
set -e
NODE_PID=
[[ $rc -eq 0 ]] || fail "node exited $rc after SIGTERM"
ok "SIGTERM -> exit 0"

lines=0
for s in events errors billing; do
  f="$DATA/sinks/$s.ndjson"
  [[ -f $f ]] || continue
  n=$(wc -l <"$f")
  lines=$((lines + n))
done
[[ $lines -eq $accepted ]] || fail "sink files hold $lines lines, node accepted $accepted events"
ok "sink files hold $lines lines = sluice_events_accepted_total"
echo "PASS: loadgen smoke test"
