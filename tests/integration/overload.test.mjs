// Overload: offered load above what the node can deliver, for 30 s, pushes back instead of
// growing memory. The bottleneck is the file sink's downstream: its path is a FIFO that this test
// reads at SINK_BYTES_PER_S (a slow disk or pipe consumer), so the log grows past
// storage.max-log-bytes and the gate closes. Checks: the node's anonymous RSS stays under
// a bound, every refused HTTP request got 503/429 with Retry-After and a JSON error, WebSockets
// were paused (not sent error frames), and after the load every acknowledged id is in the sink.
//
//   node tests/integration/overload.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  request, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { metric, missingIds, sampleRss, slowFifo, startLoad } from './lib/load.mjs';

const { binary } = testArgs(import.meta.url);

const MiB = 1024 * 1024;
/// How long the offered load runs (the figure).
const LOAD_MS = 30000;
/// The gate closes while the stored log exceeds this: small, so it closes within seconds.
const MAX_LOG_BYTES = 16 * MiB;
/// Bound on the node's anonymous RSS (heap, stacks; the LMDB map is file-backed and not in it).
/// What the configuration lets it hold: pending events (max-pending-events 16384 × ~1 KiB decoded
/// = 16 MiB), each consumer's window (3 consumers × 4096 events × ~1 KiB = 12 MiB), the sink's
/// queue (2000 events), socket buffers of 6 clients (~16 KiB a batch, 16 frames in flight per
/// WebSocket = 0.5 MiB), plus allocator arenas and ~20 threads' stacks: ~40 MiB at worst (about
/// 10 MiB measured on 2 cores). 128 MiB leaves room for allocator slack on other machines and
/// still catches anything that buffers the offered load: the clients offer > 100 000 events/s
/// (~100 MiB/s decoded) when nothing holds them back.
const MAX_ANON_BYTES = 128 * MiB;
/// Sampling period of the RSS.
const RSS_INTERVAL_MS = 500;
/// What the sink's downstream takes while the load runs (~6000 events/s of ~170-byte lines).
const SINK_BYTES_PER_S = MiB;
/// Time for the sink to catch up with the log after the load.
const DRAIN_TIMEOUT_MS = 90000;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-overload-'));
const confFile = path.join(work, 'overload.conf');
fs.mkdirSync(path.join(work, 'sinks'));
const sink = slowFifo(path.join(work, 'sinks', 'events.ndjson'), SINK_BYTES_PER_S);
fs.writeFileSync(confFile, `
[sluice]
node = "overload-node"
data-dir = "${work}"

[gateway]
port = 0
max-inflight-frames = 16

[storage]
; the log is not the bottleneck (a process crash loses nothing; this test does not cut power)
durability = "none"
max-log-bytes = ${MAX_LOG_BYTES}
max-pending-events = 16384

[actors]
device-shards = 1
profile-shards = 1
consumer-window-events = 4096

; The bottleneck: a FIFO read at SINK_BYTES_PER_S (fsync does not apply to a pipe).
[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
fsync = false
max-batch-events = 1000
max-queued-events = 2000
flush-interval = 10ms

[routes._unmatched]
sinks = ["events"]
`);

let node;
try {
  node = await startReadyNode(binary, ['serve', `--config-file=${confFile}`]);
  const rss = sampleRss(node.proc.pid, RSS_INTERVAL_MS);
  const gate = { samples: 0, closed: 0, readyz503: 0, lagging: new Set() };
  let load;

  await step(`offered load above capacity for ${LOAD_MS / 1000} s is pushed back`, async () => {
    load = startLoad(node, { httpClients: 4, wsClients: 2, wsInflight: 16, batchEvents: 100, prefix: 'o' });
    const deadline = Date.now() + LOAD_MS;
    while (Date.now() < deadline) {
      const m = await request(node, 'GET', '/metrics');
      gate.samples++;
      if (metric(m.text, 'sluice_ingest_open') === 0) gate.closed++;
      const r = await request(node, 'GET', '/readyz');
      if (r.status === 503 && r.json?.status === 'overloaded') {
        gate.readyz503++;
        for (const c of r.json.lagging_consumers) gate.lagging.add(c);
      }
      await new Promise((res) => setTimeout(res, RSS_INTERVAL_MS));
    }
    await load.stop();
    const s = load.stats;
    const seconds = (s.stoppedAt - s.startedAt) / 1000;
    console.log(`# accepted ${load.acked.size} events in ${seconds.toFixed(1)} s ` +
      `(${Math.round(load.acked.size / seconds)}/s; HTTP ${s.httpAccepted}, WebSocket ${s.wsAccepted}), ` +
      `refused HTTP requests ${s.httpRefused} ${JSON.stringify(s.httpRefusedByStatus)} ` +
      `${JSON.stringify(s.httpRefusalReasons)}, WebSocket error frames ${s.wsErrorFrames}, ` +
      `longest WebSocket ack gap ${s.wsMaxAckGapMs} ms, gate closed in ${gate.closed}/${gate.samples} ` +
      `samples, /readyz 503 in ${gate.readyz503} (lagging: ${[...gate.lagging].join(',')})`);
    console.log(`# max VmRSS ${(rss.maxRss / MiB).toFixed(1)} MiB, max RssAnon ` +
      `${(rss.maxAnon / MiB).toFixed(1)} MiB (bound ${MAX_ANON_BYTES / MiB} MiB, ${rss.samples} samples)`);
    assert.deepEqual(load.problems, [], 'every reply was an ack or a well-formed refusal');
    // (WebSocket error frames are checked last, so that one run reports delivery too.)
    assert.ok(s.httpRefused > 0, 'the load exceeded capacity: some HTTP requests were refused');
    assert.ok(gate.closed > 0, 'the gate was seen closed (sluice_ingest_open 0)');
    assert.ok(gate.readyz503 > 0, '/readyz said overloaded while the gate was closed');
    assert.ok(s.wsAccepted > 0 && s.httpAccepted > 0, 'both kinds of client got events through');
    assert.ok(rss.maxAnon > 0 && rss.maxAnon < MAX_ANON_BYTES,
      `RssAnon ${rss.maxAnon} stays under ${MAX_ANON_BYTES}`);
    const m = (await request(node, 'GET', '/metrics')).text;
    const overloaded = metric(m, 'sluice_events_rejected_total', { reason: 'overloaded' }) ?? 0;
    const paused = metric(m, 'sluice_gateway_ws_paused_total') ?? 0;
    console.log(`# sluice_events_rejected_total{reason="overloaded"} ${overloaded}, ` +
      `sluice_gateway_ws_paused_total ${paused}`);
    assert.ok(overloaded > 0, 'refusals are counted as overloaded');
    assert.ok(paused > 0, 'the gateway stopped reading WebSockets while the gate was closed');
  });

  await step('after the load the sink drains, the node stops cleanly, every acked id is delivered', async () => {
    sink.unthrottle();
    await waitFor('the sink to catch up with the log', async () => {
      const m = (await request(node, 'GET', '/metrics')).text;
      return metric(m, 'sluice_consumer_lag_events', { consumer: 'sink.events' }) === 0 &&
        metric(m, 'sluice_ingest_open') === 1;
    }, DRAIN_TIMEOUT_MS, 200);
    const r = await request(node, 'GET', '/readyz');
    assert.equal(r.status, 200, `ready again: ${r.text}`);
    const exit = await stopNode(node);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
    rss.stop();
    await sink.ended;
    const counts = sink.counts;
    const missing = missingIds(load.acked, counts);
    let dups = 0;
    for (const n of counts.values()) if (n > 1) ++dups;
    console.log(`# sink holds ${counts.size} distinct ids (${dups} duplicated) for ${load.acked.size} acked`);
    assert.equal(missing.n, 0, `acked ids missing from the sink: ${missing.some.join(', ')}`);
  });

  await step('WebSockets were paused while the gate was closed, never sent an error frame', async () => {
    assert.equal(load.stats.wsErrorFrames, 0,
      `WebSocket batches refused with an error frame (the client must resend them) instead of the ` +
      `socket pausing; first ones: ${load.wsErrors.join(' ')}`);
  });

  console.log('ok - overload');
  fs.rmSync(work, { recursive: true, force: true });
} catch (e) {
  console.error(`FAIL - overload: ${e.stack || e.message}\n(work dir kept: ${work})` +
    (node ? `\nnode stderr (tail):\n${tail(node.stderr)}` : ''));
  process.exitCode = 1;
} finally {
  if (node && !node.exited) await stopNode(node, 'SIGKILL').catch(() => {});
}
