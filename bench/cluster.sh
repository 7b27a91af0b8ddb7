#!/usr/bin/env bash
# bench/cluster.sh — the cluster benchmark of issue 8 (see bench/README.md, "Cluster", and
# docs/capacity.md): events/s and ack latency of the reference job with 1 node and with 3 nodes
# on this machine, the CPU cost of forwarding per event, forwarded events/s and the forwarding
# backlog. Prints one table.
#
#   bench/cluster.sh [--quick] [--duration S] [--clients wrk,loadgen] [--nodes 1,3]
#                    [--build-dir DIR] [--keep]
#
# Every row starts its own cluster on conf/reference.conf plus the [cluster] options (1 node: a
# cluster of one member, its seeds = itself, so it runs the same pipeline without peers; 3 nodes:
# three processes on loopback, the seeds list every node), fresh temp data dirs, waits until every
# node sees every member up, runs the load, waits until everything is drained (every consumer of
# every node made everything durable, every forwarder's backlog is 0), stops the nodes with
# SIGTERM and checks the sinks. With 3 nodes the load is spread over the three gateways: three
# wrk processes (-t2, 11/11/10 connections: 32 in all) with the reference script, or one
# sluice_loadgen with --ports (32 connections round robin over the gateways).
#
# ALL NODES AND THE CLIENT SHARE THIS MACHINE'S CORES (2 here): 3 nodes do not get 3 times the
# CPU, so the 3-node row measures what the cluster costs, not how it scales.
#
# Exit status: 0 when every row ran and every check passed (resends and client timeouts are
# reported, not failures); 1 when a row could not run (a node did not start, the cluster did not
# form, the client failed); 2 on usage errors; 3 when a check failed (an acknowledged event missing
# from the sinks or in them twice, a card number unmasked, or the backlog did not drain).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SLUICE_BUILD_DIR:-$ROOT/build}
QUICK=0
KEEP=0
DURATION=
CLIENTS=wrk,loadgen
NODE_COUNTS=1,3

usage() {
  cat >&2 <<EOF
usage: bench/cluster.sh [--quick] [--duration S] [--clients wrk,loadgen] [--nodes 1,3]
                        [--build-dir DIR] [--keep]
  --quick       5 s loads (a smoke run; not the figures of record)
  --duration S  seconds of load per row (default 30, the reference job's)
  --clients     wrk (the reference script; 3 processes for 3 nodes) and/or loadgen
                (sluice_loadgen --payload=reference, --ports over the gateways)
  --nodes       cluster sizes to run (default 1,3)
  --build-dir   CMake build directory (default: \$SLUICE_BUILD_DIR or build/); built if needed
  --keep        keep the temp data dirs and node logs
EOF
  exit 2
}

while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --duration=*) DURATION=${1#--duration=} ;;
    --clients) CLIENTS=${2:?--clients needs a list}; shift ;;
    --clients=*) CLIENTS=${1#--clients=} ;;
    --nodes) NODE_COUNTS=${2:?--nodes needs a list}; shift ;;
    --nodes=*) NODE_COUNTS=${1#--nodes=} ;;
    --build-dir) BUILD=${2:?--build-dir needs a directory}; shift ;;
    --build-dir=*) BUILD=${1#--build-dir=} ;;
    --keep) KEEP=1 ;;
    -h|--help) usage ;;
    *) echo "bench/cluster.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[[ -n $DURATION ]] || { ((QUICK)) && DURATION=5 || DURATION=30; }
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "bench/cluster.sh: --duration must be a positive integer" >&2; usage; }
IFS=',' read -r -a CLIENT_LIST <<<"$CLIENTS"
IFS=',' read -r -a NODE_LIST <<<"$NODE_COUNTS"
for c in "${CLIENT_LIST[@]}"; do [[ $c == wrk || $c == loadgen ]] || { echo "bench/cluster.sh: unknown client '$c'" >&2; usage; }; done
for n in "${NODE_LIST[@]}"; do [[ $n =~ ^[1-9]$ ]] || { echo "bench/cluster.sh: --nodes takes 1..9, got '$n'" >&2; usage; }; done

REF_LUA=$ROOT/../shared/bench/reference-job.lua
[[ -f $REF_LUA ]] || REF_LUA=/work/shared/bench/reference-job.lua
REF_CONF=$ROOT/conf/reference.conf
SLUICE=$BUILD/sluice
LOADGEN=$BUILD/bench/sluice_loadgen
CLK_TCK=$(getconf CLK_TCK)
DRAIN_TIMEOUT_S=600

need=()
[[ -x $SLUICE ]] || need+=(sluice)
[[ -x $LOADGEN ]] || need+=(sluice_loadgen)
if ((${#need[@]})); then
  echo "building ${need[*]} in $BUILD (Release)" >&2
  [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" -j2 --target "${need[@]}" >&2
fi
[[ -f $REF_CONF ]] || { echo "bench/cluster.sh: $REF_CONF is missing" >&2; exit 1; }
[[ " ${CLIENT_LIST[*]} " != *" wrk "* ]] || command -v wrk >/dev/null || { echo "bench/cluster.sh: wrk is not installed (use --clients loadgen)" >&2; exit 1; }
[[ $("$LOADGEN" --help 2>&1 || true) == *--ports* ]] || { echo "bench/cluster.sh: $LOADGEN has no --ports (rebuild sluice_loadgen)" >&2; exit 1; }

# The pipeline, not access control (as bench/run.sh).
ACCESS_OPTS=()
help_text=$("$SLUICE" --help 2>/dev/null || true)
[[ $help_text == *--auth.anonymous* ]] && ACCESS_OPTS+=('--auth.anonymous=["ingest","read","admin"]')
[[ $help_text == *--limits.device-events-per-s* ]] && ACCESS_OPTS+=(--limits.device-events-per-s=0)
[[ $help_text == *--limits.token-events-per-s* ]] && ACCESS_OPTS+=(--limits.token-events-per-s=0)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cluster-bench-XXXXXX")
PIDS=()
PORTS=()
DATAS=()
cleanup() {
  local rc=$?
  stop_nodes KILL || true
  if ((KEEP)) || ((rc != 0)); then
    echo "bench/cluster.sh: data and logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[cluster-bench] $(date -u +%H:%M:%S) $*" >&2; }

# A base for N consecutive free TCP ports on loopback (the cluster ports must be known before the
# nodes start: they are the seeds).
free_port_base() {
  local n=$1 base i used
  used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
  for _ in $(seq 50); do
    base=$((20000 + RANDOM % 20000))
    for ((i = 0; i < n; i++)); do grep -qx "$((base + i))" <<<"$used" && continue 2; done
    echo "$base"; return 0
  done
  return 1
}

# start_cluster NAME N: N nodes on conf/reference.conf + [cluster] options, each its own data dir;
# waits until every node is ready and sees all N members up. Sets PIDS, PORTS (gateway), DATAS.
start_cluster() {
  local name=$1 n=$2 base i seeds=""
  base=$(free_port_base "$n") || { log "no free ports"; return 1; }
  for ((i = 1; i <= n; i++)); do seeds+="${seeds:+,}\"127.0.0.1:$((base + i - 1))\""; done
  PIDS=(); PORTS=(); DATAS=()
  for ((i = 1; i <= n; i++)); do
    local data=$WORK/$name/node-$i
    mkdir -p "$data"
    (cd "$ROOT" && exec "$SLUICE" serve --config-file="$REF_CONF" --gateway.port=0 \
       --sluice.node="node-$i" --sluice.data-dir="$data" \
       --cluster.host=127.0.0.1 --cluster.port=$((base + i - 1)) "--cluster.seeds=[$seeds]" \
       ${ACCESS_OPTS[@]+"${ACCESS_OPTS[@]}"} >"$data/node.out" 2>"$data/node.err") &
    PIDS+=($!)
    DATAS+=("$data")
  done
  local deadline=$((SECONDS + 90))
  for ((i = 0; i < n; i++)); do
    until [[ -s ${DATAS[i]}/gateway.port ]] &&
          curl -sf -o /dev/null "http://127.0.0.1:$(cat "${DATAS[i]}/gateway.port")/readyz"; do
      if ! kill -0 "${PIDS[i]}" 2>/dev/null || ((SECONDS > deadline)); then
        log "node-$((i + 1)) of $name did not become ready; stderr:"; tail -n 20 "${DATAS[i]}/node.err" >&2
        return 1
      fi
      sleep 0.05
    done
    PORTS+=("$(cat "${DATAS[i]}/gateway.port")")
  done
  # Every node sees every member up (the ring is complete before the load starts).
  for ((i = 0; i < n; i++)); do
    until [[ $(curl -sf "http://127.0.0.1:${PORTS[i]}/v1/cluster" | jq '[.members[] | select(.state == "up")] | length' 2>/dev/null) == "$n" ]]; do
      if ! kill -0 "${PIDS[i]}" 2>/dev/null || ((SECONDS > deadline)); then
        log "node-$((i + 1)) of $name does not see $n members up: $(curl -sf "http://127.0.0.1:${PORTS[i]}/v1/cluster" || true)"
        return 1
      fi
      sleep 0.1
    done
  done
}

# stop_nodes [TERM|KILL]: stops every node (SIGTERM drains: consumers make their offsets durable).
stop_nodes() {
  local sig=${1:-TERM} p
  ((${#PIDS[@]})) || return 0
  for p in "${PIDS[@]}"; do kill "-$sig" "$p" 2>/dev/null || true; done
  local deadline=$((SECONDS + 120))
  for p in "${PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}

# CPU seconds (user + system) of every node together, in clock ticks.
cpu_ticks_all() {
  local p s=0 t
  for p in "${PIDS[@]}"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$p/stat")
    s=$((s + t))
  done
  echo "$s"
}
max_hwm_kb() {
  local p m=0 v
  for p in "${PIDS[@]}"; do
    v=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$p/status"); ((v > m)) && m=$v
  done
  echo "$m"
}
# Sum of a metric's samples over every node (optionally only lines containing a label filter).
metric_sum_one() { awk -v m="$1" -v f="${2:-}" 'index($1, m) == 1 && (substr($1, length(m) + 1, 1) == "{" || substr($1, length(m) + 1, 1) == "") && (f == "" || index($1, f) > 0) { s += $2 } END { printf "%d\n", s }'; }
metric_all() {
  local port s=0 v
  for port in "${PORTS[@]}"; do
    v=$(curl -sf --max-time 10 "http://127.0.0.1:$port/metrics" | metric_sum_one "$@" || true)
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
metric_node() { curl -sf --max-time 10 "http://127.0.0.1:${PORTS[$1]}/metrics" | metric_sum_one "$2" || true; }
# Largest consumer lag of any node, plus every forwarder's backlog: 0 when everything is drained.
undrained() {
  local port lag=0 v
  for port in "${PORTS[@]}"; do
    v=$(curl -sf --max-time 10 "http://127.0.0.1:$port/metrics" | awk '
      $1 ~ /^sluice_consumer_lag_events\{/ { n++; if ($2 > m) m = $2 }
      $1 ~ /^sluice_cluster_forward_(backlog|inflight)_events\{/ { b += $2 }
      END { printf "%d\n", (n ? m : 999999999) + b }' || true)
    lag=$((lag + ${v:-999999999}))
  done
  echo "$lag"
}

field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -n 1 | cut -d= -f2; }
ms() { awk -v us="$1" 'BEGIN { if (us == "" || us == "-") print "-"; else printf "%.2f", us / 1000 }'; }
f1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }

ROWS=()
NOTES=()
FAILED=()
CHECK_FAILED=()
row() { ROWS+=("$(printf '%s|' "$@")"); }

# sample_window: called right after the clients started; the events every gateway accepted from
# WARM_S after the start until WARM_S before the end, per second (EPS): the window in which every
# client runs (several wrk processes do not start at the same instant on a loaded machine).
sample_window() {
  local w=$(( DURATION >= 20 ? 5 : 1 )) a0 a1 s0 s1
  sleep "$w"
  a0=$(metric_all sluice_events_accepted_total); s0=$(date +%s.%N)
  sleep $(( DURATION - 2 * w ))
  a1=$(metric_all sluice_events_accepted_total); s1=$(date +%s.%N)
  EPS=$(awk -v a="$((a1 - a0))" -v x="$s0" -v y="$s1" 'BEGIN { printf "%.0f", a / (y - x) }')
  WINDOW_S=$(awk -v x="$s0" -v y="$s1" 'BEGIN { printf "%.1f", y - x }')
}

# run_row NODES CLIENT
run_row() {
  local n=$1 client=$2 name="${1}node-$2" i
  log "$name: starting $n node(s)"
  start_cluster "$name" "$n" || return 1
  local acc0 fwd0 rcv0 c0 t0
  acc0=$(metric_all sluice_events_accepted_total)
  fwd0=$(metric_all sluice_cluster_forwarded_events_total)
  rcv0=$(metric_all sluice_cluster_received_events_total)
  c0=$(cpu_ticks_all); t0=$(date +%s.%N)
  local client_desc out rc=0 p50 p99 errors
  if [[ $client == wrk ]]; then
    # 32 connections in all, 2 threads per process, one process per gateway.
    local conns=() outs=() wpids=()
    if ((n == 1)); then conns=(32); else
      for ((i = 0; i < n; i++)); do conns+=($(( 32 / n + (i < 32 % n ? 1 : 0) ))); done
    fi
    for ((i = 0; i < n; i++)); do
      outs+=("$WORK/$name/wrk-$i.out")
      EVENTS_PER_REQ=100 wrk -t2 "-c${conns[i]}" "-d${DURATION}s" --latency -s "$REF_LUA" \
        "http://127.0.0.1:${PORTS[i]}/v1/events" >"${outs[i]}" 2>&1 &
      wpids+=($!)
    done
    sample_window
    for p in "${wpids[@]}"; do wait "$p" || rc=1; done
    client_desc=$( ((n == 1)) && echo "wrk -t2 -c32" || echo "${n}x wrk -t2 -c$(IFS=/; echo "${conns[*]}")")
    local res dur_us=0 d errs=0
    p50=0; p99=0
    for o in "${outs[@]}"; do
      res=$(grep '^RESULT' "$o" || true)
      [[ -n $res ]] || { log "$name: wrk gave no RESULT: $(cat "$o")"; rc=2; continue; }
      log "$name: $res"
      d=$(field duration_us "$res"); ((d > dur_us)) && dur_us=$d
      # The worst of the processes (percentiles of separate processes cannot be merged).
      (($(field lat_p50_us "$res") > p50)) && p50=$(field lat_p50_us "$res")
      (($(field lat_p99_us "$res") > p99)) && p99=$(field lat_p99_us "$res")
      errs=$((errs + $(awk '{ s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^err_/) { split($i, a, "="); s += a[2] } print s }' <<<"$res")))
    done
    errors=$errs
    ((rc == 2)) && { FAILED+=("$name"); stop_nodes TERM; row "$name" "$n" "$client_desc" - - - - - - - - - - - "client failed"; return 0; }
  else
    local ports
    ports=$(IFS=,; echo "${PORTS[*]}")
    "$LOADGEN" --ports="$ports" --duration-s="$DURATION" --mode=http-json --payload=reference \
      --events-per-batch=100 --connections=32 --threads=2 >"$WORK/$name/loadgen.out" 2>&1 &
    local lpid=$!
    sample_window
    wait "$lpid" || rc=$?
    out=$(cat "$WORK/$name/loadgen.out")
    log "$name: $out"
    client_desc="loadgen -c32 over $n"
    local client_eps
    client_eps=$(field 'events/s' "$out"); p50=$(field ack_p50_us "$out"); p99=$(field p99_us "$out")
    errors=$(field errors "$out")
    [[ -n $client_eps && $rc -le 1 ]] || { FAILED+=("$name"); stop_nodes TERM; row "$name" "$n" "$client_desc" - - - - - - - - - - - "client failed"; return 0; }
  fi
  local c1 t1 wall acc fwd rcv backlog_end
  c1=$(cpu_ticks_all); t1=$(date +%s.%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  acc=$(( $(metric_all sluice_events_accepted_total) - acc0 ))
  fwd=$(( $(metric_all sluice_cluster_forwarded_events_total) - fwd0 ))
  rcv=$(( $(metric_all sluice_cluster_received_events_total) - rcv0 ))
  backlog_end=$(metric_all sluice_cluster_forward_backlog_events)
  local client_rate
  if [[ $client == wrk ]]; then
    client_rate=$(awk -v a="$acc" -v d="$dur_us" 'BEGIN { printf "%.0f", a / (d / 1e6) }')
  else
    client_rate=$client_eps
  fi
  # Drain: every consumer of every node made everything durable, every forwarder acked.
  local drain_s="-" td0 td1 c2
  td0=$(date +%s.%N)
  local deadline=$((SECONDS + DRAIN_TIMEOUT_S)) u
  while u=$(undrained); ((u > 0)); do
    if ((SECONDS > deadline)); then
      log "$name: NOT DRAINED after $DRAIN_TIMEOUT_S s (lag + backlog = $u)"
      for ((i = 0; i < n; i++)); do
        curl -sf "http://127.0.0.1:${PORTS[i]}/v1/cluster" >"$WORK/$name/node-$((i + 1)).cluster.json" || true
        curl -sf "http://127.0.0.1:${PORTS[i]}/metrics" >"$WORK/$name/node-$((i + 1)).metrics" || true
      done
      KEEP=1
      break
    fi
    sleep 0.1
  done
  td1=$(date +%s.%N); c2=$(cpu_ticks_all)
  ((u > 0)) || drain_s=$(awk -v a="$td0" -v b="$td1" 'BEGIN { printf "%.1f", b - a }')
  local fwd_all rcv_all backlog_drained resent failures
  fwd_all=$(( $(metric_all sluice_cluster_forwarded_events_total) - fwd0 ))
  rcv_all=$(( $(metric_all sluice_cluster_received_events_total) - rcv0 ))
  backlog_drained=$(metric_all sluice_cluster_forward_backlog_events)
  resent=$(metric_all sluice_cluster_forward_resent_events_total)
  failures=$(metric_all sluice_cluster_forward_failures_total)
  local downs moves
  downs=$(metric_all sluice_cluster_node_transitions_total 'to="down"')
  moves=$(metric_all sluice_cluster_ownership_moves_total)
  local per_node_acc=()
  for ((i = 0; i < n; i++)); do per_node_acc+=("$(metric_node "$i" sluice_events_accepted_total)"); done
  local hwm
  hwm=$(max_hwm_kb)
  stop_nodes TERM
  # Every acknowledged event is in exactly one node's sink files: the node that accepted it
  # (forwarded events never reach the owner's sinks); no card number unmasked.
  local check="ok" lines cards total_lines=0
  for ((i = 0; i < n; i++)); do
    lines=$(cat "${DATAS[i]}"/sinks/*.ndjson 2>/dev/null | wc -l)
    cards=$(cat "${DATAS[i]}"/sinks/*.ndjson 2>/dev/null | grep -c '4111 1111 1111 1111' || true)
    total_lines=$((total_lines + lines))
    if ((lines != per_node_acc[i] || cards != 0)); then
      check="FAIL(node-$((i + 1)):lines=$lines,acked=${per_node_acc[i]},cards=$cards)"
    fi
  done
  ((errors == 0)) || check="$check,errors=$errors"
  ((u == 0)) || check="$check,NOT-DRAINED($u)"
  [[ $check != *FAIL* && $check != *NOT-DRAINED* ]] || CHECK_FAILED+=("$name")
  ((resent == 0 && failures == 0)) || check="$check,resent=$resent,fwd-failures=$failures"
  local cpu_load_s cpu_all_s us_load us_all fwd_eps per_ev
  cpu_load_s=$(awk -v c="$((c1 - c0))" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", c / t }')
  cpu_all_s=$(awk -v c="$((c2 - c0))" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", c / t }')
  us_load=$(awk -v c="$((c1 - c0))" -v t="$CLK_TCK" -v a="$acc" 'BEGIN { printf "%.2f", a ? 1e6 * c / t / a : 0 }')
  us_all=$(awk -v c="$((c2 - c0))" -v t="$CLK_TCK" -v a="$acc" 'BEGIN { printf "%.2f", a ? 1e6 * c / t / a : 0 }')
  fwd_eps=$(awk -v f="$fwd" -v w="$wall" 'BEGIN { printf "%.0f", f / w }')
  per_ev=$(awk -v f="$fwd_all" -v a="$acc" 'BEGIN { printf "%.2f", a ? f / a : 0 }')
  row "$name" "$n" "$client_desc" "$EPS" "$(ms "$p50")" "$(ms "$p99")" "$cpu_load_s" "$us_load" \
      "$cpu_all_s" "$us_all" "$fwd_eps" "$per_ev" "$backlog_end/$backlog_drained" "$drain_s" "$check"
  NOTES+=("$name: accepted $acc events (per node: ${per_node_acc[*]}; sink lines $total_lines); forwarded $fwd_all, received $rcv_all (during the load: $fwd / $rcv); load ${wall}s; accepted/s in the ${WINDOW_S}s middle window $EPS, over the whole run by the client's clock $client_rate; peak RSS of the largest node $((hwm / 1024)) MB")
  ((n == 1)) || NOTES+=("$name: peers marked down (sluice_cluster_node_transitions_total{to=\"down\"}, all nodes) $downs; ownership moves $moves; forwards resent $resent, failed $failures")
  ((fwd_all == rcv_all)) || NOTES+=("$name: WARNING forwarded ($fwd_all) != received ($rcv_all)")
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE"
for n in "${NODE_LIST[@]}"; do
  for c in "${CLIENT_LIST[@]}"; do
    if ! run_row "$n" "$c"; then
      FAILED+=("${n}node-$c")
      stop_nodes KILL || true
    fi
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "scenario|nodes|client|events/s|p50 ms|p99 ms|CPU s (load)|CPU us/ev (load)|CPU s (to drained)|CPU us/ev (to drained)|fwd ev/s (load)|fwd per ev|backlog end/drained|drain s|check|"
  printf '%s\n' "${ROWS[@]}"
} | column -t -s '|'
echo
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); ALL NODES AND THE CLIENT SHARE THESE $(nproc) CORES" \
     "(3 nodes do not get more CPU than 1; the 3-node rows show the cost of the cluster, not its scaling)."
echo "load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER (other engineers' builds and benchmarks share the machine);" \
     "$DURATION s per row$( ((QUICK)) && echo ' (QUICK: not the figures of record)')."
echo "CPU s = utime+stime of every sluice process (from /proc/<pid>/stat) from the start of the load to its end (load) or until" \
     "every consumer and forwarder of every node had drained (to drained); us/ev = that / events accepted by all gateways."
echo "fwd = sluice_cluster_forwarded_events_total over all nodes (events sent to a peer that owns or replicates the device or the profile key, resends included: with 3 nodes 16/9 per event on average, ~4 in a large cluster);" \
     "backlog = sluice_cluster_forward_backlog_events summed over nodes and peers when the load ended / after the drain."
echo "p50/p99: ack latency seen by the client; with 3 wrk processes the worst of the three (their percentiles cannot be merged);" \
     "sluice_loadgen --ports measures all connections in one distribution. events/s = events accepted by all gateways per second in the middle of the load (the first and last 5 s, 1 s with --quick, left out)."
for note in "${NOTES[@]}"; do echo "$note"; done
if ((${#FAILED[@]})); then
  echo "FAILED to run: ${FAILED[*]}" >&2
  exit 1
fi
if ((${#CHECK_FAILED[@]})); then
  echo "CHECK FAILED: ${CHECK_FAILED[*]}" >&2
  exit 3
fi
