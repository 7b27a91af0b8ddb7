#!/usr/bin/env bash
# bench/run.sh — the benchmark matrix of issue 9 (see bench/README.md): throughput and ack latency
# of the reference job (wrk and sluice_loadgen), WebSocket msgpack/JSON, 1 vs 100 events per
# request, the memory scenario (1,000,000 devices seen and passivated; bytes per active device
# actor) and restart replay (1,000,000 unconsumed log entries). Prints one table.
#
#   bench/run.sh [--quick] [--only NAME[,NAME...]] [--build-dir DIR] [--list] [--keep]
#                [--node-env NAME=VALUE]...
#
# Each scenario starts its own node (port 0, a temp data dir), measures, stops it with SIGTERM and
# removes the data dir (--keep keeps them). Exit status: 0 when every scenario ran (a missed goal
# is reported in the table, not in the exit status); 1 when a scenario failed to run; 2 on usage
# errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SLUICE_BUILD_DIR:-$ROOT/build}
QUICK=0
ONLY=""
KEEP=0
NODE_ENV=() # --node-env: environment of the node only (e.g. LD_PRELOAD=... for an allocator A/B)
ALL_SCENARIOS=(ref-wrk ref-loadgen ref-p99-400k ws-msgpack-100 ws-json-100 http-json-100
               http-json-1 ws-msgpack-1 memory memory-active replay)

usage() {
  cat >&2 <<EOF
usage: bench/run.sh [--quick] [--only NAME[,NAME...]] [--build-dir DIR] [--list] [--keep]
                    [--node-env NAME=VALUE]...
  --quick       short runs (3 s load, 100,000 devices/entries instead of 1,000,000): a smoke run
  --only NAMES  run only these scenarios (comma separated; --list shows them)
  --build-dir   CMake build directory (default: \$SLUICE_BUILD_DIR or build/); built if needed
  --keep        keep the temp data dirs and node logs
  --node-env    set NAME=VALUE in the node's environment only (repeatable), e.g.
                --node-env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
scenarios: ${ALL_SCENARIOS[*]}
EOF
  exit 2
}

while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=${2:?--only needs a scenario name}; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    --build-dir) BUILD=${2:?--build-dir needs a directory}; shift ;;
    --build-dir=*) BUILD=${1#--build-dir=} ;;
    --keep) KEEP=1 ;;
    --node-env) NODE_ENV+=("${2:?--node-env needs NAME=VALUE}"); shift ;;
    --node-env=*) NODE_ENV+=("${1#--node-env=}") ;;
    --list) printf '%s\n' "${ALL_SCENARIOS[@]}"; exit 0 ;;
    -h|--help) usage ;;
    *) echo "bench/run.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done

SCENARIOS=()
if [[ -n $ONLY ]]; then
  IFS=',' read -r -a SCENARIOS <<<"$ONLY"
  for s in "${SCENARIOS[@]}"; do
    [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || { echo "bench/run.sh: unknown scenario '$s'" >&2; usage; }
  done
else
  SCENARIOS=("${ALL_SCENARIOS[@]}")
fi

# Durations and sizes: the reference job is 30 s by definition (reference-job.lua).
if ((QUICK)); then
  REF_S=3; LOAD_S=3; DEVICES=100000; ACTIVE_DEVICES=20000; REPLAY_EVENTS=100000
else
  REF_S=30; LOAD_S=20; DEVICES=1000000; ACTIVE_DEVICES=200000; REPLAY_EVENTS=1000000
fi

REF_LUA=$ROOT/../shared/bench/reference-job.lua
[[ -f $REF_LUA ]] || REF_LUA=/work/shared/bench/reference-job.lua
REF_CONF=$ROOT/conf/reference.conf
SLUICE=$BUILD/sluice
LOADGEN=$BUILD/bench/sluice_loadgen
LOG_FILL=$BUILD/bench/sluice_log_fill
CLK_TCK=$(getconf CLK_TCK)

# ---- build what is missing --------------------------------------------------------------------
need=()
[[ -x $SLUICE ]] || need+=(sluice)
[[ -x $LOADGEN ]] || need+=(sluice_loadgen)
[[ -x $LOG_FILL ]] || need+=(sluice_log_fill)
if ((${#need[@]})); then
  echo "building ${need[*]} in $BUILD (Release)" >&2
  [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" -j2 --target "${need[@]}" >&2
fi
[[ -f $REF_CONF ]] || { echo "bench/run.sh: $REF_CONF is missing" >&2; exit 1; }

# Benchmarks measure the pipeline, not access control: anonymous ingest and no per-token or
# per-device rate limit, when this build has those options (docs/access.md).
ACCESS_OPTS=()
help_text=$("$SLUICE" --help 2>/dev/null || true)
[[ $help_text == *--auth.anonymous* ]] && ACCESS_OPTS+=('--auth.anonymous=["ingest","read","admin"]')
[[ $help_text == *--limits.device-events-per-s* ]] && ACCESS_OPTS+=(--limits.device-events-per-s=0)
[[ $help_text == *--limits.token-events-per-s* ]] && ACCESS_OPTS+=(--limits.token-events-per-s=0)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-XXXXXX")
NODE_PID=
cleanup() {
  local rc=$?
  stop_node KILL || true
  if ((KEEP)) || ((rc != 0)); then
    echo "bench/run.sh: data and logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[bench] $*" >&2; }

# ---- node control ------------------------------------------------------------------------------
# start_node NAME [sluice options...]: starts a node on conf/reference.conf with its own data dir,
# waits for /readyz; sets NODE_PID, PORT, DATA.
start_node() {
  local name=$1; shift
  DATA=$WORK/$name
  mkdir -p "$DATA"
  (cd "$ROOT" && exec env ${NODE_ENV[@]+"${NODE_ENV[@]}"} "$SLUICE" serve --config-file="$REF_CONF" --gateway.port=0 \
     --sluice.data-dir="$DATA" ${ACCESS_OPTS[@]+"${ACCESS_OPTS[@]}"} "$@" >"$DATA/node.out" 2>"$DATA/node.err") &
  NODE_PID=$!
  NODE_STARTED=$(date +%s.%N)
  local deadline=$((SECONDS + 60))
  until [[ -s $DATA/gateway.port ]] && curl -sf -o /dev/null "http://127.0.0.1:$(cat "$DATA/gateway.port")/readyz"; do
    if ! kill -0 "$NODE_PID" 2>/dev/null || ((SECONDS > deadline)); then
      log "node for $name did not become ready; stderr:"; tail -n 20 "$DATA/node.err" >&2
      return 1
    fi
    sleep 0.02
  done
  PORT=$(cat "$DATA/gateway.port")
}

# stop_node [TERM|KILL]: stops the node (SIGTERM drains: every consumer makes its offset durable).
stop_node() {
  local sig=${1:-TERM}
  [[ -n $NODE_PID ]] || return 0
  if kill -0 "$NODE_PID" 2>/dev/null; then
    kill "-$sig" "$NODE_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 120))
    while kill -0 "$NODE_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -KILL "$NODE_PID" 2>/dev/null || true
  fi
  wait "$NODE_PID" 2>/dev/null || true
  NODE_PID=
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$NODE_PID/stat"; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$NODE_PID/status"; }
metrics() { curl -sf --max-time 10 "http://127.0.0.1:$PORT/metrics"; }
# Sum of a metric's samples whose line matches a pattern (label filter).
metric_sum() { awk -v m="$1" -v f="${2:-}" 'index($1, m) == 1 && (substr($1, length(m) + 1, 1) == "{" || substr($1, length(m) + 1, 1) == "") && (f == "" || index($1, f) > 0) { s += $2 } END { printf "%d\n", s }'; }
# Largest lag of any consumer, in events.
max_lag() { metrics | awk '$1 ~ /^sluice_consumer_lag_events\{/ { n++; if ($2 > m) m = $2 } END { printf "%d\n", n ? m : 999999999 }'; }

# wait_until_caught_up TIMEOUT_S: every consumer has made everything durable.
wait_until_caught_up() {
  local deadline=$((SECONDS + $1))
  while (($(max_lag) > 0)); do
    ((SECONDS < deadline)) || { log "consumers did not catch up within $1 s"; return 1; }
    sleep 0.05
  done
}

# ---- results -----------------------------------------------------------------------------------
ROWS=()
NOTES=()
FAILED=()
# row SCENARIO CLIENT EVENTS/S P50_MS P99_MS P999_MS CPU% RSS_MB CATCH_UP_S GOAL VERDICT CHECK
row() { ROWS+=("$(printf '%s|' "$@")"); }
ms() { awk -v us="$1" 'BEGIN { if (us == "" || us == "-") print "-"; else printf "%.2f", us / 1000 }'; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.0f", kb / 1024 }'; }

# Measures one load run: $@ is the client command; sets CPU_PCT, HWM_KB, WALL_S and CLIENT_OUT.
measure_load() {
  local t0 c0 t1 c1
  c0=$(cpu_ticks); t0=$(date +%s.%N)
  set +e
  CLIENT_OUT=$("$@" 2>&1)
  CLIENT_RC=$?
  set -e
  t1=$(date +%s.%N); c1=$(cpu_ticks)
  WALL_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  CPU_PCT=$(awk -v c="$((c1 - c0))" -v t="$CLK_TCK" -v w="$WALL_S" 'BEGIN { printf "%.0f", 100 * c / t / w }')
  HWM_KB=$(status_kb VmHWM)
}

# cpu_note NAME EVENTS: the node's CPU time (utime + stime) from its start until now (consumers
# caught up) per event, as a line under the table: the figure to compare builds by on a shared
# machine, where events/s depends on how much of the CPU the node got.
cpu_note() {
  local ticks
  ticks=$(cpu_ticks)
  NOTES+=("$(awk -v n="$1" -v e="$2" -v c="$ticks" -v t="$CLK_TCK" 'BEGIN {
    printf "cpu: %s: node CPU %.1f s (start to caught up) / %d events = %.2f us/event", n, c / t, e, (e > 0) ? 1e6 * c / t / e : 0 }')")
}

# commit_note NAME: the node's group commits (LMDB write and fsync) over its life, from the
# `sluice_commit_latency_seconds` histogram, as a line under the table: how many, their mean, how
# many took over 10 and over 100 ms, and the bucket the slowest fell in. Acks wait for their
# commit, so a tail in the latency columns that shows here too came from the disk (a stall of the
# device or the host), not from the node's CPU.
commit_note() {
  NOTES+=("$(metrics | awk -v n="$1" '
    index($1, "sluice_commit_latency_seconds_bucket{") == 1 {
      match($1, /le="[^"]*"/); k++; le[k] = substr($1, RSTART + 4, RLENGTH - 5); c[k] = $2 }
    $1 == "sluice_commit_latency_seconds_count" { total = $2 }
    $1 == "sluice_commit_latency_seconds_sum" { sum = $2 }
    END {
      over10 = total; over100 = total; slowest = "-"
      for (i = 1; i <= k; i++) {
        if (le[i] == "0.01") over10 = total - c[i]
        if (le[i] == "0.1") over100 = total - c[i]
        if (slowest == "-" && c[i] >= total) slowest = le[i]
      }
      printf "commits: %s: %d group commits, mean %.2f ms, %d over 10 ms, %d over 100 ms, slowest <= %s s", n, total, total ? 1000 * sum / total : 0, over10, over100, slowest }')")
}

field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -n 1 | cut -d= -f2; }

# After SIGTERM: every acknowledged event is in exactly one sink file, no card number unmasked.
check_sinks() {
  local accepted=$1 lines cards
  lines=$(cat "$DATA"/sinks/*.ndjson 2>/dev/null | wc -l)
  cards=$(cat "$DATA"/sinks/*.ndjson 2>/dev/null | grep -c '4111 1111 1111 1111' || true)
  if ((lines == accepted && cards == 0)); then
    CHECK="ok"
  else
    CHECK="FAIL(lines=$lines,acked=$accepted,cards=$cards)"
  fi
}

# After a load: seconds until every consumer (sinks, shards, aggregator) has made everything
# acknowledged durable (CATCH_UP_S; "-" if not within 600 s). A consumer slower than the ingest
# rate shows here: the events/s column is what the log acknowledged, not what the sinks kept up with.
time_catch_up() {
  local t0 t1
  t0=$(date +%s.%N)
  if wait_until_caught_up 600; then
    t1=$(date +%s.%N)
    CATCH_UP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  else
    CATCH_UP_S="-"
  fi
}

goal_min() { awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 >= g) ? "met" : "missed" }'; }
goal_max() { awk -v v="$1" -v g="$2" 'BEGIN { print (v != "-" && v + 0 <= g) ? "met" : "missed" }'; }

# ---- scenarios ---------------------------------------------------------------------------------
# loadgen_scenario NAME GOAL_KIND GOAL_VALUE GOAL_TEXT [loadgen options...]
loadgen_scenario() {
  local name=$1 kind=$2 gv=$3 gtext=$4; shift 4
  start_node "$name" || return 1
  local accepted0
  accepted0=$(metrics | metric_sum sluice_events_accepted_total)
  measure_load "$LOADGEN" --port="$PORT" --duration-s="$LOAD_S" "$@"
  log "$name: $CLIENT_OUT"
  local eps p50 p99 p999 errors accepted
  eps=$(field 'events/s' "$CLIENT_OUT"); p50=$(field ack_p50_us "$CLIENT_OUT")
  p99=$(field p99_us "$CLIENT_OUT"); p999=$(field p999_us "$CLIENT_OUT")
  errors=$(field errors "$CLIENT_OUT")
  accepted=$(($(metrics | metric_sum sluice_events_accepted_total) - accepted0))
  time_catch_up
  cpu_note "$name" "$accepted"
  commit_note "$name"
  stop_node TERM
  check_sinks "$accepted"
  [[ -n $eps && $CLIENT_RC -le 1 ]] || { FAILED+=("$name"); row "$name" loadgen - - - - - - - "$gtext" - "client failed"; return 0; }
  ((errors == 0)) || CHECK="$CHECK,errors=$errors"
  local verdict="-"
  case $kind in
    min) verdict=$(goal_min "$eps" "$gv") ;;
    p99) verdict=$(goal_max "$(ms "$p99")" "$gv") ;;
  esac
  row "$name" loadgen "$eps" "$(ms "$p50")" "$(ms "$p99")" "$(ms "$p999")" "$CPU_PCT" \
      "$(mb "$HWM_KB")" "$CATCH_UP_S" "$gtext" "$verdict" "$CHECK"
}

scenario_ref_wrk() {
  start_node ref-wrk || return 1
  local accepted0
  accepted0=$(metrics | metric_sum sluice_events_accepted_total)
  measure_load env EVENTS_PER_REQ=100 wrk -t2 -c32 "-d${REF_S}s" --latency -s "$REF_LUA" \
    "http://127.0.0.1:$PORT/v1/events"
  local res accepted
  res=$(grep '^RESULT' <<<"$CLIENT_OUT" || true)
  accepted=$(($(metrics | metric_sum sluice_events_accepted_total) - accepted0))
  time_catch_up
  # wrk exits with its last requests in flight; the node still commits (and counts) them, so the
  # sink check compares with the count once everything is durable.
  local kept
  kept=$(($(metrics | metric_sum sluice_events_accepted_total) - accepted0))
  cpu_note ref-wrk "$kept"
  commit_note ref-wrk
  stop_node TERM
  if [[ -z $res ]]; then
    log "ref-wrk: no RESULT line: $CLIENT_OUT"
    FAILED+=(ref-wrk); row ref-wrk wrk - - - - - - - ">= 820k ev/s" - "client failed"; return 0
  fi
  log "ref-wrk: $res"
  check_sinks "$kept"
  local errs
  errs=$(awk '{ s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^err_/) { split($i, a, "="); s += a[2] } print s }' <<<"$res")
  ((errs == 0)) || CHECK="$CHECK,errors=$errs"
  # Events acknowledged per second (2xx replies only, as the node counts them).
  local eps
  eps=$(awk -v a="$accepted" -v d="$(field duration_us "$res")" 'BEGIN { printf "%.0f", a / (d / 1e6) }')
  row ref-wrk "wrk -t2 -c32" "$eps" "$(ms "$(field lat_p50_us "$res")")" \
      "$(ms "$(field lat_p99_us "$res")")" "$(ms "$(field lat_p999_us "$res")")" "$CPU_PCT" \
      "$(mb "$HWM_KB")" "$CATCH_UP_S" ">= 820k ev/s" "$(goal_min "$eps" 820000)" "$CHECK"
}

scenario_ref_loadgen() {
  local d=$LOAD_S; LOAD_S=$REF_S
  loadgen_scenario ref-loadgen min 820000 ">= 820k ev/s" --mode=http-json --payload=reference \
    --events-per-batch=100 --connections=32 --threads=2
  LOAD_S=$d
}
scenario_ref_p99_400k() {
  loadgen_scenario ref-p99-400k p99 10 "p99 <= 10 ms @400k" --mode=http-json --payload=reference \
    --events-per-batch=100 --connections=32 --threads=2 --rate=400000
}
scenario_ws_msgpack_100() {
  loadgen_scenario ws-msgpack-100 min 1000000 ">= 1M ev/s" --mode=ws-msgpack --payload=reference \
    --events-per-batch=100 --connections=8 --inflight=16 --threads=2
}
scenario_ws_json_100() {
  loadgen_scenario ws-json-100 none 0 "-" --mode=ws-json --payload=reference \
    --events-per-batch=100 --connections=8 --inflight=16 --threads=2
}
scenario_http_json_100() {
  loadgen_scenario http-json-100 none 0 "-" --mode=http-json --payload=reference \
    --events-per-batch=100 --connections=32 --threads=2
}
scenario_http_json_1() {
  loadgen_scenario http-json-1 none 0 "-" --mode=http-json --payload=reference \
    --events-per-batch=1 --connections=32 --threads=2
}
scenario_ws_msgpack_1() {
  loadgen_scenario ws-msgpack-1 none 0 "-" --mode=ws-msgpack --payload=reference \
    --events-per-batch=1 --connections=8 --inflight=64 --threads=2
}

# wait_for_passivation TIMEOUT_S: no device or profile actor left in memory.
wait_for_passivation() {
  local deadline=$((SECONDS + $1)) active
  while :; do
    active=$(metrics | metric_sum sluice_actors_active)
    ((active == 0)) && return 0
    ((SECONDS < deadline)) || { log "$active entity actors still active after $1 s"; return 1; }
    sleep 0.1
  done
}

# DEVICES distinct devices (each with its own profile), one event each; idle-timeout 2 s, so they
# are passivated; the node's RSS once all are passivated and every consumer caught up.
scenario_memory() {
  local name=memory
  start_node "$name" --actors.idle-timeout=2s || return 1
  local base_kb
  base_kb=$(status_kb VmRSS)
  measure_load "$LOADGEN" --port="$PORT" --mode=ws-msgpack --events-per-batch=100 --connections=4 \
    --inflight=8 --devices=distinct --total-events="$DEVICES" --duration-s=600
  log "$name: $CLIENT_OUT"
  local eps acked
  eps=$(field 'events/s' "$CLIENT_OUT"); acked=$(field acked_events "$CLIENT_OUT")
  if [[ $CLIENT_RC -ne 0 || $acked -ne $DEVICES ]]; then
    FAILED+=("$name"); stop_node TERM; row "$name" loadgen - - - - - - - "RSS <= 512 MB" - "client failed"; return 0
  fi
  wait_until_caught_up 300 && wait_for_passivation 300 || { FAILED+=("$name"); stop_node TERM; return 0; }
  local m spawned passivated rss_kb anon_kb
  m=$(metrics)
  spawned=$(metric_sum sluice_actors_spawned_total 'kind="device"' <<<"$m")
  passivated=$(metric_sum sluice_actors_passivated_total 'kind="device"' <<<"$m")
  rss_kb=$(status_kb VmRSS); anon_kb=$(status_kb RssAnon)
  HWM_KB=$(status_kb VmHWM)
  cpu_note "$name" "$DEVICES"
  stop_node TERM
  local check="ok"
  ((spawned == DEVICES && passivated >= DEVICES)) || check="FAIL(spawned=$spawned,passivated=$passivated)"
  row "$name" "loadgen ws" "$eps" - - - "$CPU_PCT" "$(mb "$HWM_KB")" - "RSS <= 512 MB" \
      "$(goal_max "$(mb "$rss_kb")" 512)" "$check"
  NOTES+=("memory: $DEVICES devices (+ as many profiles) seen and passivated: RSS $(mb "$rss_kb") MB (anonymous $(mb "$anon_kb") MB, start $(mb "$base_kb") MB, peak $(mb "$HWM_KB") MB); what each passivated device+profile leaves: $(( (rss_kb - base_kb) * 1024 / DEVICES )) bytes of RSS")
}

# ACTIVE_DEVICES distinct devices without profiles stay active (idle-timeout 10 min); the cost of
# one active device actor = (anonymous RSS with them active - before) / N.
scenario_memory_active() {
  local name=memory-active
  start_node "$name" --actors.idle-timeout=10min || return 1
  # Warm-up with other devices, passivated by nothing: allocator arenas, LMDB pages and the log's
  # buffers exist before the baseline is taken.
  "$LOADGEN" --port="$PORT" --mode=ws-msgpack --events-per-batch=100 --connections=4 --inflight=8 \
    --devices=distinct --profiles=none --total-events=20000 --device-offset=900000000 \
    --duration-s=120 >/dev/null 2>&1 || true
  wait_until_caught_up 120 || { FAILED+=("$name"); stop_node TERM; return 0; }
  sleep 1
  local base_kb active0
  base_kb=$(status_kb RssAnon)
  active0=$(metrics | metric_sum sluice_actors_active 'kind="device"')
  measure_load "$LOADGEN" --port="$PORT" --mode=ws-msgpack --events-per-batch=100 --connections=4 \
    --inflight=8 --devices=distinct --profiles=none --total-events="$ACTIVE_DEVICES" --duration-s=600
  log "$name: $CLIENT_OUT"
  wait_until_caught_up 300 || { FAILED+=("$name"); stop_node TERM; return 0; }
  sleep 1
  local active anon_kb
  active=$(( $(metrics | metric_sum sluice_actors_active 'kind="device"') - active0 ))
  anon_kb=$(status_kb RssAnon)
  stop_node TERM
  if ((active != ACTIVE_DEVICES)); then
    FAILED+=("$name"); row "$name" "loadgen ws" - - - - - - - "measured" - "FAIL(active=$active)"; return 0
  fi
  local per=$(( (anon_kb - base_kb) * 1024 / active ))
  row "$name" "loadgen ws" "$(field 'events/s' "$CLIENT_OUT")" - - - "$CPU_PCT" "$(mb "$HWM_KB")" \
      - "measured" "-" "ok"
  NOTES+=("memory-active: $active active devices add $(mb $((anon_kb - base_kb))) MB anonymous RSS: $per bytes per active device (shard entry, device state with its duplicate window)")
}

# REPLAY_EVENTS reference-job events stored in the log, no consumer has any: start the node and
# time until every consumer (sink runners, device and profile shards, aggregator) made all of them
# durable.
scenario_replay() {
  local name=replay
  DATA=$WORK/$name
  mkdir -p "$DATA"
  local fill
  fill=$("$LOG_FILL" --data-dir="$DATA" --events="$REPLAY_EVENTS" --events-per-record=100) \
    || { FAILED+=("$name"); row "$name" - - - - - - - - "<= 2 s" - "fill failed"; return 0; }
  log "$name: $fill"
  start_node "$name" || return 1
  local c0
  c0=$(cpu_ticks)
  wait_until_caught_up 600 || { FAILED+=("$name"); stop_node TERM; return 0; }
  local t1 secs ready_s c1 cpu
  t1=$(date +%s.%N)
  c1=$(cpu_ticks)
  secs=$(awk -v a="$NODE_STARTED" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  cpu=$(awk -v c="$c1" -v t="$CLK_TCK" -v w="$secs" 'BEGIN { printf "%.0f", 100 * c / t / w }')
  HWM_KB=$(status_kb VmHWM)
  cpu_note "$name" "$REPLAY_EVENTS"
  stop_node TERM
  check_sinks "$REPLAY_EVENTS"
  local eps
  eps=$(awk -v n="$REPLAY_EVENTS" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  row "$name" "restart" "$eps" - - - "$cpu" "$(mb "$HWM_KB")" "$secs" "<= 2 s" "$(goal_max "$secs" 2)" "$CHECK"
  NOTES+=("replay: $REPLAY_EVENTS unconsumed events (records of 100) at start: every consumer caught up ${secs} s after the process started (the poll of /metrics adds <= 50 ms)")
}

for s in "${SCENARIOS[@]}"; do
  log "scenario $s"
  fn="scenario_${s//-/_}"
  if ! "$fn"; then
    FAILED+=("$s")
    stop_node KILL || true
  fi
done

# ---- the table ---------------------------------------------------------------------------------
{
  echo "scenario|client|events/s|p50 ms|p99 ms|p99.9 ms|node CPU %|node peak RSS MB|catch-up s|goal|goal met|check|"
  printf '%s\n' "${ROWS[@]}"
} | column -t -s '|'
echo
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), shared with the load generator;" \
     "$( ((QUICK)) && echo 'QUICK run (short, smaller): not the figures of record' || echo 'full run')"
echo "CPU % is of one core (200 % = both cores); latencies are ack latencies seen by the client."
for n in "${NOTES[@]}"; do echo "$n"; done
if ((${#FAILED[@]})); then
  echo "FAILED to run: ${FAILED[*]}" >&2
  exit 1
fi
