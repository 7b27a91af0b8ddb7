// Disk full: an LMDB map capped at storage.max-map-bytes fills up because the only sink is blocked
// (its file is a FIFO nobody reads), so the log cannot trim. Appends are then refused with 503,
// Retry-After and a JSON error naming storage space; the node says so on stderr, counts it in
// /metrics and stays up. Once the sink's reader comes back the log trims and appends succeed again;
// after SIGTERM and a restart on the same data dir the node serves, and every acknowledged id
// reached the sink at least once (file sinks are at-least-once).
//
//   node tests/integration/disk_full.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  request, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { makeBatch, metric, missingIds, slowFifo, startLoad } from './lib/load.mjs';

const { binary } = testArgs(import.meta.url);

const MiB = 1024 * 1024;
/// The whole LMDB map: room for ~50 000 logged events, full within seconds.
const MAP_BYTES = 8 * MiB;
/// Offered load while filling (paced, so the test process stays light).
const EVENTS_PER_S = 20000;
/// How long the load keeps hitting the full map before the sink is unblocked: the node must
/// stay up and keep refusing cleanly.
const FULL_FOR_MS = 3000;
const FILL_TIMEOUT_MS = 30000;
const RECOVERY_TIMEOUT_MS = 15000;
const STORAGE_REASON = /storage/i;
/// When the node did not recover, how long stop() waits for WebSocket acks before giving up on them.
const STUCK_ABANDON_MS = 2000;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-disk-full-'));
const confFile = path.join(work, 'disk-full.conf');
const fifo = path.join(work, 'sinks', 'events.ndjson');
fs.mkdirSync(path.dirname(fifo));
fs.writeFileSync(confFile, `
[sluice]
node = "disk-full-node"
data-dir = "${work}"

[gateway]
port = 0

[storage]
initial-map-bytes = ${MAP_BYTES}
max-map-bytes = ${MAP_BYTES}
; only the map's size limits the log here
max-log-bytes = 0

[actors]
device-shards = 1
profile-shards = 1

; The only sink: a FIFO that nobody reads until the test says so (fsync does not apply to a pipe).
[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
fsync = false
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`);

const args = ['serve', `--config-file=${confFile}`];
const getMetrics = async (node) => (await request(node, 'GET', '/metrics')).text;
/// Whether every consumer of the log is durably done with everything stored.
const caughtUp = (m) => {
  const lags = [...m.matchAll(/^sluice_consumer_lag_events\{[^}]*\} (\S+)$/gm)].map((x) => Number(x[1]));
  return lags.length > 0 && lags.every((v) => v === 0);
};

let node;
let fullNode; // the node's output when the map was full
try {
  const sink = slowFifo(fifo, 0); // blocked
  node = await startReadyNode(binary, args);
  const load = startLoad(node, { httpClients: 2, wsClients: 1, wsInflight: 4, batchEvents: 100,
    prefix: 'd', eventsPerS: EVENTS_PER_S });

  await step('a full map refuses appends with 503, Retry-After and a storage error; the node stays up',
    async () => {
      await waitFor('a refusal naming storage', () =>
        Object.keys(load.stats.httpRefusalReasons).some((r) => STORAGE_REASON.test(r)), FILL_TIMEOUT_MS, 50);
      const ackedWhenFull = load.acked.size;
      await new Promise((r) => setTimeout(r, FULL_FOR_MS)); // keep hitting the full map
      assert.deepEqual(load.problems, [], 'every refusal was a 503/429 with Retry-After and a JSON error');
      const reasons = Object.keys(load.stats.httpRefusalReasons);
      assert.ok(reasons.every((r) => STORAGE_REASON.test(r)), `refused for storage only: ${reasons}`);
      assert.ok(load.wsErrors.every((f) => STORAGE_REASON.test(JSON.parse(f).error)),
        `WebSocket error frames name storage: ${load.wsErrors}`);
      assert.ok(load.acked.size - ackedWhenFull < EVENTS_PER_S,
        `the full map stopped the appends (${load.acked.size - ackedWhenFull} acked since)`);
      const m = await getMetrics(node);
      const refused = metric(m, 'sluice_log_refused_events_total');
      assert.ok(refused > 0, `sluice_log_refused_events_total counts them: ${refused}`);
      const health = await request(node, 'GET', '/healthz');
      assert.equal(health.status, 200, 'the node is alive');
      assert.equal(node.exited, null, 'no crash');
      console.log(`# full after ${ackedWhenFull} acked events; refused HTTP requests ` +
        `${load.stats.httpRefused} ${JSON.stringify(load.stats.httpRefusalReasons)}, WebSocket error ` +
        `frames ${load.stats.wsErrorFrames}, sluice_log_refused_events_total ${refused}`);
      // (the log line is checked last, so that one run reports recovery too)
      fullNode = { stderr: node.stderr, stdout: node.stdout };
    });

  // Recovery without a restart is checked last (after the delivery check), so that one run
  // reports both; if it fails, the restart below gives the map room (as an operator would).
  let stuck = null;
  await step('the sink drains; the node stops cleanly', async () => {
    const ackedBefore = load.acked.size;
    sink.unthrottle();
    try {
      await waitFor('appends to succeed again', () => load.acked.size > ackedBefore + 1000,
        RECOVERY_TIMEOUT_MS, 50);
    } catch (e) {
      const shown = /^sluice_(consumer_(offset|lag_events)|log_(stored|commit_failures|trimmed)|ingest_open|sink_(delivered|errors))/;
      const m = (await getMetrics(node)).split('\n').filter((l) => shown.test(l));
      stuck = `${e.message}; metrics then:\n${m.join('\n')}`;
    }
    // Stuck, the node does not read WebSockets (its gate stays closed): their last frames stay unacked.
    await load.stop(stuck ? { abandonAfterMs: STUCK_ABANDON_MS } : {});
    if (!stuck) {
      await waitFor('every consumer to catch up', async () => caughtUp(await getMetrics(node)),
        RECOVERY_TIMEOUT_MS, 100);
      const r = await request(node, 'GET', '/readyz');
      assert.equal(r.status, 200, `ready: ${r.text}`);
    }
    const exit = await stopNode(node);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
    fullNode.stdout = node.stdout; // complete now
    await sink.ended;
  });

  await step('after a restart on the same data the node serves and every acked id was delivered',
    async () => {
      const again = slowFifo(fifo, Infinity, sink.counts);
      // Not recovered in place: restart with room in the map (space returned).
      const room = stuck ? [`--storage.max-map-bytes=${4 * MAP_BYTES}`] : [];
      node = await startReadyNode(binary, [...args, ...room]);
      const events = makeBatch('after-restart', 0, 100);
      const res = await request(node, 'POST', '/v1/events', events);
      assert.equal(res.status, 200, res.text);
      for (const e of events) load.acked.add(e.id);
      await waitFor('every consumer to catch up', async () => caughtUp(await getMetrics(node)),
        RECOVERY_TIMEOUT_MS, 100);
      const exit = await stopNode(node);
      assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
      await again.ended;
      const missing = missingIds(load.acked, again.counts);
      let dups = 0;
      for (const n of again.counts.values()) if (n > 1) ++dups;
      console.log(`# sink: ${again.counts.size} distinct ids (${dups} more than once) for ` +
        `${load.acked.size} acked`);
      assert.equal(missing.n, 0, `acked ids missing from the sink: ${missing.some.join(', ')}`);
    });

  await step('a full map recovers without a restart once the sink drained, and the node said on ' +
             'stderr (a JSON log line) that storage was full', async () => {
    const failures = [];
    if (stuck) {
      failures.push(`appends never succeeded again after the sink drained: ${stuck}\nnode stdout:\n` +
        tail(fullNode.stdout, 3).slice(0, 1000));
    }
    const lines = fullNode.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    if (!lines.some((l) => /error|warn/.test(l.level) && STORAGE_REASON.test(JSON.stringify(l)))) {
      failures.push('no JSON log line (level error or warn) naming storage on stderr while the map was ' +
        `full; stderr then:\n${tail(fullNode.stderr, 5)}`);
    }
    assert.deepEqual(failures, []);
  });

  console.log('ok - disk full');
  fs.rmSync(work, { recursive: true, force: true });
} catch (e) {
  if (node && !node.exited) {
    // What the log and its consumers were doing, for the diagnosis.
    const m = await getMetrics(node).catch(() => '');
    console.error(m.split('\n').filter((l) => /^sluice_(consumer|log_|ingest|sink_)/.test(l)).join('\n'));
    await stopNode(node, 'SIGTERM', 5000).catch(() => {}); // its stdout is complete once it exits
  }
  console.error(`FAIL - disk full: ${e.stack || e.message}\n(work dir kept: ${work})` +
    (node ? `\nnode stderr (tail):\n${tail(node.stderr)}\nnode stdout (tail):\n${tail(node.stdout, 10)}` : ''));
  process.exitCode = 1;
} finally {
  if (node && !node.exited) await stopNode(node, 'SIGKILL').catch(() => {});
  // A reader still waiting on the FIFO keeps this process alive: end it.
  process.exit();
}
