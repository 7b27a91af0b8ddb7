// Two nodes, one lake table: two `sluice serve` processes (different --sluice.node names and data
// dirs, no cluster) whose lake sinks write the same table — a shared directory, then the same S3
// bucket/prefix (s3rver behind the SigV4 proxy, which answers conditional PUTs as S3 does).
// Events go to both gateways concurrently, with short max-file-age and compaction on so commits
// and compactions of both writers race; the newest snapshot must hold every acknowledged event
// exactly once, files of both writers, and a watermark per writer. A third process with an
// existing node name is refused.
//
//   node tests/integration/lake_concurrent.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  request, requireNode, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { startS3 } from './lib/s3.mjs';

const { binary: sluiceBinary, sourceRoot } = testArgs(import.meta.url);
const { DuckDBInstance } = requireNode('@duckdb/node-api');

const sluice = async (args) => (await promisify(execFile)(sluiceBinary, args)).stdout;
const baseConf = fs.readFileSync(path.join(sourceRoot, 'conf', 'sluice.conf'), 'utf8');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-lake-concurrent-'));
const db = await DuckDBInstance.create(':memory:');
const duck = await db.connect();
const sql = async (q) => (await duck.runAndReadAll(q)).getRowObjectsJson();

/// 2024-11-22T10:30:00Z and the hour after: two partitions, so files and compactions interleave.
const NOW = Date.UTC(2024, 10, 22, 10, 30);
const HOUR = 3600 * 1000;
const BATCHES = 80;
const PER_BATCH = 25;
/// Pause of each of the 4 senders between its batches: the feed lasts about 2 s, so both nodes
/// commit many times while the other does (files every 300 ms, compaction every second).
const PACE_MS = 100;

/// conf/sluice.conf with the lake on `root` (absolute dir or s3://...), files every 300 ms and a
/// compaction step every second, enrichment and sessions off.
function writeConf(name, root, s3 = null) {
  let text = baseConf;
  text = text.replace(/^max-file-age = .*$/m, 'max-file-age = 300ms');
  text = text.replace(/^compact-interval = .*$/m, 'compact-interval = 1s\nflush-interval = 100ms');
  text = text.replace(/^enabled = true$/gm, 'enabled = false');
  let rootLines = `root = "${root}"`;
  if (s3)
    rootLines += `\nendpoint = "${s3.endpoint}"\nregion = "us-east-1"\naccess-key = "${s3.accessKey}"`
               + `\nsecret-key = "${s3.secret}"`;
  assert.match(text, /^root = "lake"$/m, 'conf/sluice.conf has a lake root');
  text = text.replace(/^root = "lake"$/m, rootLines);
  const file = path.join(work, `${name}.conf`);
  fs.writeFileSync(file, text);
  return file;
}

async function start(conf, name, dataDir) {
  return startReadyNode(sluiceBinary, ['serve', `--config-file=${conf}`, '--gateway.port=0',
    `--sluice.node=${name}`, `--sluice.data-dir=${dataDir}`]);
}

async function stop(node) {
  const exit = await stopNode(node);
  assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
}

/// A counter of a node's /metrics (0 when absent).
async function metric(node, name) {
  const m = await request(node, 'GET', '/metrics');
  const line = m.text.split('\n').find((l) => l.startsWith(`${name}{sink="lake-events"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/// Posts BATCHES batches to `node` (ids `<prefix>-<batch>-<i>`), 4 in flight; returns the ids acked.
async function feed(node, prefix) {
  const acked = [];
  let next = 0;
  const worker = async () => {
    while (next < BATCHES) {
      const b = next++;
      const events = [];
      for (let i = 0; i < PER_BATCH; ++i)
        events.push({ id: `${prefix}-${b}-${i}`, type: 'play', device_id: `tv-${i % 7}`,
                      ts: NOW + (i % 2) * HOUR + i, title_id: `t-${i % 3}`, position_ms: i });
      const r = await request(node, 'POST', '/v1/events', events);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.accepted, events.length, r.text);
      acked.push(...events.map((e) => e.id));
      await new Promise((resolve) => setTimeout(resolve, PACE_MS)); // pacing the load, not a wait
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return acked;
}

/// Runs both nodes on `conf`, feeds them concurrently, stops them (the drain commits), and checks
/// the newest snapshot (`snapshotOf()` reads it) and its files (`localPath(url)`).
async function twoWriters(label, conf, snapshotOf, localPath) {
  const dirA = path.join(work, `${label}-a`);
  const dirB = path.join(work, `${label}-b`);
  const a = await start(conf, 'node-a', dirA);
  const b = await start(conf, 'node-b', dirB);
  let conflicts = 0, commits = 0;
  try {
    const [idsA, idsB] = await Promise.all([feed(a, 'a'), feed(b, 'b')]);
    const expected = new Set([...idsA, ...idsB]);
    assert.equal(expected.size, 2 * BATCHES * PER_BATCH);
    // Same node name, its own data dir: refused by the writer lease (the lake sink stays
    // unhealthy, the node keeps running).
    const twin = await start(conf, 'node-a', path.join(work, `${label}-twin`));
    try {
      await waitFor('the twin node-a to be refused by the writer lease', async () =>
        /must be unique among the writers of a table/.test(twin.stdout + twin.stderr), 15000);
      const m = await request(twin, 'GET', '/metrics');
      assert.match(m.text, /sluice_sink_healthy\{sink="lake-events"\} 0/);
    } finally {
      await stopNode(twin);
    }
    for (const n of [a, b]) {
      const c = await metric(n, 'sluice_lake_commits_total');
      assert.ok(c >= 3, `each node committed while the other did (${c} commits before the drain)`);
      conflicts += await metric(n, 'sluice_lake_commit_conflicts_total');
      commits += c;
    }
    await Promise.all([stop(a), stop(b)]);
    const snap = snapshotOf();
    const writers = new Set(snap.files.map((f) => f.writer));
    assert.deepEqual([...writers].sort(), ['node-a', 'node-b'], 'files of both writers');
    assert.deepEqual(Object.keys(snap.writers).sort(), ['node-a', 'node-b'], 'both writers');
    for (const w of ['node-a', 'node-b']) {
      // After the drain everything is committed: the watermark reaches the writer's last offset.
      const top = Math.max(...snap.files.filter((f) => f.writer === w).map((f) => f.max_offset));
      assert.ok(snap.writers[w].offset_watermark >= top,
                `${w}: watermark ${snap.writers[w].offset_watermark} covers its files (up to ${top})`);
    }
    const urls = JSON.parse(await sluice(['lake', 'files', '--json', `--config-file=${conf}`,
      '--table=events', `--sluice.data-dir=${dirA}`]));
    assert.equal(urls.length, snap.files.length, 'sluice lake files lists the newest snapshot');
    const list = `[${urls.map((u) => `'${localPath(u)}'`).join(', ')}]`;
    const [agg] = await sql(`SELECT count(*) AS n, count(DISTINCT id) AS ids
      FROM read_parquet(${list}, hive_partitioning = true)`);
    assert.equal(agg.n, String(expected.size), 'every acked event, no duplicate rows');
    assert.equal(agg.ids, String(expected.size), 'no id twice');
    const ids = await sql(`SELECT id FROM read_parquet(${list})`);
    for (const { id } of ids) assert.ok(expected.has(id), `unexpected id ${id}`);
    const history = await sluice(['lake', 'snapshots', `--config-file=${conf}`, '--table=events',
      `--sluice.data-dir=${dirA}`]);
    assert.match(history, /writer node-a: watermark \d+/, history);
    assert.match(history, /writer node-b: watermark \d+/, history);
    console.log(`  ${label}: ${expected.size} events, ${commits} commits, ${conflicts} lost races ` +
                `(reloaded and retried), newest snapshot ${snap.snapshot_id} with ` +
                `${snap.files.length} files`);
  } finally {
    if (!a.exited) await stopNode(a);
    if (!b.exited) await stopNode(b);
  }
}

/// The newest snapshot of a table whose `_meta/` objects `metaFiles()` lists ({name, file}).
function newestSnapshot(metaFiles) {
  const snaps = metaFiles().filter((m) => /^snap-\d{20}\.json$/.test(m.name))
    .sort((x, y) => (x.name < y.name ? -1 : 1));
  assert.ok(snaps.length > 0, 'the table has snapshots');
  return JSON.parse(fs.readFileSync(snaps[snaps.length - 1].file, 'utf8'));
}

const t0 = Date.now();
try {
  await step('two nodes writing one table in a shared directory keep every acked event exactly once', async () => {
    const shared = path.join(work, 'shared-lake');
    const conf = writeConf('local', shared);
    const meta = path.join(shared, 'events', '_meta');
    await twoWriters('local', conf,
      () => newestSnapshot(() => fs.readdirSync(meta).map((name) => ({ name, file: path.join(meta, name) }))),
      (u) => fileURLToPath(u));
  });

  await step('two nodes writing one table on S3 (conditional PUT) keep every acked event exactly once', async () => {
    const s3 = await startS3({ bucket: 'lake', secret: 'lake-secret' });
    try {
      const conf = writeConf('s3', 's3://lake/warehouse',
        { endpoint: s3.endpoint, accessKey: s3.accessKey, secret: 'lake-secret' });
      // s3rver keeps objects as files under <dir>/<bucket>/<key>._S3rver_object.
      const local = (key) => path.join(s3.dir, 'lake', `${key}._S3rver_object`);
      const meta = path.join(s3.dir, 'lake', 'warehouse', 'events', '_meta');
      await twoWriters('s3', conf,
        () => newestSnapshot(() => fs.readdirSync(meta).filter((n) => n.endsWith('._S3rver_object'))
          .map((n) => ({ name: n.slice(0, -'._S3rver_object'.length), file: path.join(meta, n) }))),
        (u) => local(u.slice('s3://lake/'.length)));
      assert.ok((s3.stats.preconditionFailed ?? 0) > 0,
                'the writers used conditional PUTs (the exclusive-create probe answers 412)');
    } finally {
      await s3.stop();
    }
  });
  console.log(`lake_concurrent: all steps passed in ${Date.now() - t0} ms`);
} finally {
  duck.closeSync?.();
  fs.rmSync(work, { recursive: true, force: true });
}
