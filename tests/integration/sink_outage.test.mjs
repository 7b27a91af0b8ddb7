// Sink outage: the S3 target of a lake table (s3rver behind the SigV4-verifying proxy) is stopped
// for 30 s under load. The node keeps accepting until its log holds storage.max-log-bytes, then
// pushes back (503 + Retry-After); the lake's circuit opens and /readyz names the lagging sink,
// while a file sink beside it keeps delivering. After S3 returns, everything drains: the circuit
// closes, the lake's lag returns to 0, and the table (read with DuckDB from s3rver's files) holds
// every acknowledged id exactly once; nothing went to the dead letters.
//
//   node tests/integration/sink_outage.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, requireNode, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { metric, missingIds, sinkIdCounts, startLoad } from './lib/load.mjs';
import { startS3 } from './lib/s3.mjs';

const { binary } = testArgs(import.meta.url);
const { DuckDBInstance } = requireNode('@duckdb/node-api');

const MiB = 1024 * 1024;
/// How long S3 is down (the issue's figure).
const OUTAGE_MS = 30000;
/// The log's backlog limit: ~80 000 events, reached ~8 s into the outage at EVENTS_PER_S.
const MAX_LOG_BYTES = 8 * MiB;
/// Offered load: more than the log can hold over the outage, little enough to read back quickly.
const EVENTS_PER_S = 10000;
/// Load before the outage and after S3 returns.
const BEFORE_MS = 3000;
const AFTER_MS = 5000;
/// Period of the /metrics and /readyz samples during the outage.
const SAMPLE_MS = 250;
const DRAIN_TIMEOUT_MS = 60000;
const SECRET = 'outage-secret';
const LAKE = 'lake';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-sink-outage-'));
const s3 = await startS3({ bucket: 'lake', secret: SECRET });
const confFile = path.join(work, 'outage.conf');
fs.writeFileSync(confFile, `
[sluice]
node = "outage-node"
data-dir = "${work}"

[gateway]
port = 0

[storage]
max-log-bytes = ${MAX_LOG_BYTES}

[actors]
device-shards = 1
profile-shards = 1
consumer-window-events = 4096

[sinks.${LAKE}]
kind = "lake"
root = "s3://lake/warehouse"
endpoint = "${s3.endpoint}"
region = "us-east-1"
access-key = "${s3.accessKey}"
secret-key = "${SECRET}"
table = "events"
columns = ["title_id:string", "position_ms:int64"]
max-file-age = 1s
; The default max-buffer-bytes (64 MiB) holds the outage's events in memory: the age flush (every
; max-file-age) is what meets the stopped store, and a failed flush opens the circuit.
flush-interval = 100ms
max-queued-events = 20000
backoff-initial = 50ms
backoff-max = 1s

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 50ms

[routes._unmatched]
sinks = ["${LAKE}", "events"]
`);

const getMetrics = async (node) => (await request(node, 'GET', '/metrics')).text;
const lakeLag = (m) => metric(m, 'sluice_consumer_lag_events', { consumer: `sink.${LAKE}` });

let node;
try {
  node = await startReadyNode(binary, ['serve', `--config-file=${confFile}`]);
  const load = startLoad(node, { httpClients: 2, wsClients: 1, wsInflight: 8, batchEvents: 100,
    prefix: 's', eventsPerS: EVENTS_PER_S });

  await step('the lake delivers to S3 under load', async () => {
    await waitFor('lake deliveries', async () =>
      (metric(await getMetrics(node), 'sluice_sink_delivered_total', { sink: LAKE }) ?? 0) > 0,
    15000, 100);
    await new Promise((r) => setTimeout(r, BEFORE_MS)); // load before the outage, as specified
    assert.deepEqual(load.problems, []);
    assert.equal(load.stats.httpRefused, 0, 'nothing refused while S3 is up');
  });

  const seen = { circuitOpen: false, readyzLagging: null, fileLagZeroWhileLakeBehind: false,
    ackedAtDown: 0, ackedAtFirstRefusal: null, firstRefusalMs: null };
  await step(`S3 down for ${OUTAGE_MS / 1000} s: accepted until the backlog limit, then 503, ` +
             'circuit open, /readyz says why', async () => {
    await s3.stopServer();
    const down = Date.now();
    seen.ackedAtDown = load.acked.size;
    while (Date.now() - down < OUTAGE_MS) {
      if (seen.firstRefusalMs === null && load.stats.httpRefused + load.stats.wsErrorFrames > 0) {
        seen.firstRefusalMs = Date.now() - down;
        seen.ackedAtFirstRefusal = load.acked.size;
      }
      const m = await getMetrics(node);
      if (metric(m, 'sluice_sink_circuit_open', { sink: LAKE }) === 1) seen.circuitOpen = true;
      if (metric(m, 'sluice_consumer_lag_events', { consumer: 'sink.events' }) === 0 && lakeLag(m) > 0) {
        seen.fileLagZeroWhileLakeBehind = true;
      }
      const r = await request(node, 'GET', '/readyz');
      if (r.status === 503 && r.json?.lagging_consumers?.includes(`sink.${LAKE}`)) {
        seen.readyzLagging = { body: r.json, retryAfter: r.headers.get('retry-after') };
      }
      await new Promise((res) => setTimeout(res, SAMPLE_MS));
    }
    console.log(`# outage: ${seen.ackedAtFirstRefusal - seen.ackedAtDown} events accepted after S3 ` +
      `stopped, first refusal after ${seen.firstRefusalMs} ms, refused HTTP requests ` +
      `${load.stats.httpRefused} ${JSON.stringify(load.stats.httpRefusalReasons)}, ` +
      `/readyz ${JSON.stringify(seen.readyzLagging?.body)}`);
    assert.deepEqual(load.problems, [], 'every refusal was a 503/429 with Retry-After and a JSON error');
    assert.ok(seen.firstRefusalMs !== null, 'the node pushed back during the outage');
    assert.ok(seen.ackedAtFirstRefusal > seen.ackedAtDown, 'it kept accepting before the limit');
    assert.ok(load.stats.httpRefused > 0, 'HTTP senders got 503');
    assert.ok(Object.keys(load.stats.httpRefusalReasons).every((r) => /max-log-bytes/.test(r)),
      'refused because of the backlog limit');
    assert.ok(seen.circuitOpen, `sluice_sink_circuit_open{sink="${LAKE}"} became 1`);
    assert.ok(seen.readyzLagging, `/readyz was 503 naming sink.${LAKE}`);
    assert.match(seen.readyzLagging.body.reason, /max-log-bytes/, '/readyz says why');
    assert.match(seen.readyzLagging.retryAfter ?? '', /^[1-9]\d*$/, '/readyz has Retry-After');
    assert.ok(seen.fileLagZeroWhileLakeBehind, 'the file sink kept up while the lake was down');
  });

  await step('S3 returns: the gate reopens, the circuit closes, the lake catches up', async () => {
    const refusedBefore = load.stats.httpRefused;
    const ackedBefore = load.acked.size;
    await s3.restartServer();
    const up = Date.now();
    await waitFor('the circuit to close', async () =>
      metric(await getMetrics(node), 'sluice_sink_circuit_open', { sink: LAKE }) === 0,
    DRAIN_TIMEOUT_MS, 100);
    const circuitClosedMs = Date.now() - up;
    await new Promise((r) => setTimeout(r, AFTER_MS)); // load after the outage, as specified
    await load.stop();
    assert.deepEqual(load.problems, []);
    assert.ok(load.acked.size > ackedBefore, 'accepted again after S3 returned');
    await waitFor('the lake to catch up with the log', async () => {
      const m = await getMetrics(node);
      return lakeLag(m) === 0 && metric(m, 'sluice_ingest_open') === 1;
    }, DRAIN_TIMEOUT_MS, 100);
    const r = await request(node, 'GET', '/readyz');
    assert.equal(r.status, 200, `ready again: ${r.text}`);
    const m = await getMetrics(node);
    assert.equal(metric(m, 'sluice_sink_dropped_total', { sink: LAKE }), 0, 'the lake dropped nothing');
    console.log(`# after S3 returned: circuit closed in ${circuitClosedMs} ms, lake drained in ` +
      `${Date.now() - up} ms (with ${AFTER_MS} ms of load); ${load.stats.httpRefused - refusedBefore} ` +
      `more refusals; total acked ${load.acked.size}, refused HTTP requests ${load.stats.httpRefused}`);
    const exit = await stopNode(node);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
    const flushFailures = (node.stdout.match(/flush failed/g) ?? []).length;
    console.log(`# node stdout: ${flushFailures} "flush failed" lines`);
  });

  await step('the lake table holds every acknowledged id exactly once; no dead letters', async () => {
    const object = (key) => path.join(s3.dir, 'lake', `${key}._S3rver_object`);
    const table = 'warehouse/events';
    const pointer = fs.readFileSync(object(`${table}/_meta/current`), 'utf8').trim();
    const snap = JSON.parse(fs.readFileSync(object(`${table}/_meta/${pointer}`), 'utf8'));
    const files = snap.files.map((f) => object(`${table}/${f.path}`));
    for (const f of files) assert.ok(fs.existsSync(f), `file of current exists: ${f}`);
    const db = await DuckDBInstance.create(':memory:');
    const duck = await db.connect();
    const list = `[${files.map((f) => `'${f}'`).join(', ')}]`;
    const rows = (await duck.runAndReadAll(`SELECT id, count(*)::INTEGER AS n FROM read_parquet(${list})
      GROUP BY id`)).getRowObjectsJson();
    const counts = new Map(rows.map((r) => [r.id, r.n]));
    const twice = rows.filter((r) => r.n !== 1).map((r) => r.id);
    const missing = missingIds(load.acked, counts);
    const extra = rows.filter((r) => !load.acked.has(r.id)).map((r) => r.id);
    console.log(`# lake: ${files.length} files, ${rows.length} distinct ids for ${load.acked.size} acked`);
    assert.equal(missing.n, 0, `acked ids missing from the lake: ${missing.some.join(', ')}`);
    assert.deepEqual(twice.slice(0, 10), [], 'no id twice in the lake');
    assert.deepEqual(extra.slice(0, 10), [], 'no id the senders were not acked for');
    const fileMissing = missingIds(load.acked, await sinkIdCounts(path.join(work, 'sinks', 'events.ndjson')));
    assert.equal(fileMissing.n, 0, `acked ids missing from the file sink: ${fileMissing.some.join(', ')}`);
    const letters = readNdjson(path.join(work, 'dead-letters', 'dead-letters.ndjson'));
    assert.equal(letters.length, 0, `dead letters: ${JSON.stringify(letters.slice(0, 3))}`);
  });

  console.log('ok - sink outage');
  fs.rmSync(work, { recursive: true, force: true });
} catch (e) {
  console.error(`FAIL - sink outage: ${e.stack || e.message}\n(work dir kept: ${work})` +
    (node ? `\nnode stderr (tail):\n${tail(node.stderr)}` : ''));
  process.exitCode = 1;
} finally {
  if (node && !node.exited) await stopNode(node, 'SIGKILL').catch(() => {});
  await s3.stop();
}
