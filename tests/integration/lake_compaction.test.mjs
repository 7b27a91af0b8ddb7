// `sluice lake compact` end to end: a real `sluice serve` node (conf/sluice.conf with a tiny
// `max-file-rows`) writes many small Parquet files; while it runs the CLI is refused (the table's
// writer lock); after SIGTERM the CLI merges each partition's files into one in a new snapshot;
// DuckDB and hyparquet read the files `sluice lake files --json` lists: same rows, same sum, no id
// twice, fewer files. A restarted node goes on over the compacted table.
//
//   node tests/integration/lake_compaction.test.mjs <path/to/sluice> <source root>

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
const { parquetReadObjects, asyncBufferFromFile } = await import(requireNode.resolve('hyparquet'));
const { compressors } = await import(requireNode.resolve('hyparquet-compressors'));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-lake-compaction-test-'));
const dataDir = path.join(work, 'data');
const tableDir = path.join(dataDir, 'lake', 'events');
const db = await DuckDBInstance.create(':memory:');
const duck = await db.connect();
const sql = async (q) => (await duck.runAndReadAll(q)).getRowObjectsJson();

/// Rows per file: small, so that every HTTP batch of `batchSize` events closes a file.
const maxFileRows = 4;
const batchSize = 5;
const batches = 12;
const HOUR = 3600 * 1000;
/// Event time of the events: 2024-11-22T10:30:00Z, and a late batch 5 hours earlier.
const NOW = Date.UTC(2024, 10, 22, 10, 30);

/// conf/sluice.conf with small files, a short engine flush-interval (each batch reaches the sink
/// on its own), no age flush during the test and no self-compaction; `s3` puts the table on S3.
function writeConf(name = 'compaction', s3 = null) {
  let text = fs.readFileSync(path.join(sourceRoot, 'conf', 'sluice.conf'), 'utf8');
  assert.match(text, /^max-file-rows = .*$/m, 'conf/sluice.conf has a lake max-file-rows');
  assert.match(text, /^max-file-age = .*$/m, 'conf/sluice.conf has a lake max-file-age');
  text = text.replace(/^max-file-rows = .*$/m, `max-file-rows = ${maxFileRows}`)
             .replace(/^max-file-age = .*$/m,
                      'max-file-age = 1h\ncompact-interval = 0s\nflush-interval = 50ms');
  if (s3)
    text = text.replace(/^root = "lake"$/m, `root = "s3://lake/warehouse"\nendpoint = "${s3.endpoint}"`
      + `\nregion = "us-east-1"\naccess-key = "${s3.accessKey}"\nsecret-key = "${s3.secret}"`);
  const file = path.join(work, `${name}.conf`);
  fs.writeFileSync(file, text);
  return file;
}

/// Runs `sluice <args>`; resolves to { code, stdout, stderr } whatever the exit code.
async function sluice(args) {
  try {
    const { stdout, stderr } = await promisify(execFile)(sluiceBinary, args);
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function makeEvents(prefix, n, ts) {
  const out = [];
  for (let i = 0; i < n; ++i)
    out.push({ id: `${prefix}-${i}`, type: 'play', device_id: `tv-${i % 3}`, profile_id: `p-${i % 2}`,
               ts: ts + i * 1000, title_id: `t-${i % 4}`, position_ms: i * 1000 + 7 });
  return out;
}

/// The snapshot `current` names.
function readCurrent() {
  const name = fs.readFileSync(path.join(tableDir, '_meta', 'current'), 'utf8').trim();
  return JSON.parse(fs.readFileSync(path.join(tableDir, '_meta', name), 'utf8'));
}

/// The current files as `sluice lake files --json` lists them (local paths).
async function currentFiles(conf) {
  const r = await sluice(['lake', 'files', '--json', `--config-file=${conf}`, '--table=events',
    `--sluice.data-dir=${dataDir}`]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).map((u) => fileURLToPath(u));
}

/// Reads `files` with DuckDB and hyparquet; checks rows, ids and sum against `expected`.
async function checkTable(files, expected) {
  const sum = expected.reduce((s, e) => s + e.position_ms, 0);
  const list = `[${files.map((f) => `'${f}'`).join(', ')}]`;
  const [agg] = await sql(`SELECT count(*) AS n, count(DISTINCT id) AS ids,
      sum(position_ms)::VARCHAR AS s FROM read_parquet(${list}, hive_partitioning = true)`);
  assert.equal(agg.n, String(expected.length), 'DuckDB count(*)');
  assert.equal(agg.ids, String(expected.length), 'DuckDB: no id twice');
  assert.equal(agg.s, String(sum), 'DuckDB sum(position_ms)');
  const seen = new Set();
  let hsum = 0n;
  for (const file of files) {
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(file), compressors });
    let last = -1n;
    for (const r of rows) {
      assert.ok(!seen.has(r.id), `hyparquet: ${r.id} twice`);
      seen.add(r.id);
      hsum += r.position_ms;
      assert.ok(r.offset > last, `${file}: rows in log-offset order`);
      last = r.offset;
    }
  }
  assert.equal(seen.size, expected.length, 'hyparquet: every id');
  assert.equal(hsum, BigInt(sum), 'hyparquet sum(position_ms)');
}

const t0 = Date.now();
try {
  const conf = writeConf();
  const events = [];
  for (let b = 0; b < batches; ++b)
    events.push(...makeEvents(`b${b}`, batchSize, b === 3 ? NOW - 5 * HOUR : NOW + b * 60000));
  let before;

  await step('a running node holds the table: sluice lake compact is refused', async () => {
    const node = await startReadyNode(sluiceBinary, ['serve', `--config-file=${conf}`,
      '--gateway.port=0', `--sluice.data-dir=${dataDir}`]);
    try {
      for (let b = 0; b < batches; ++b) {
        const r = await request(node, 'POST', '/v1/events', events.slice(b * batchSize, (b + 1) * batchSize));
        assert.equal(r.status, 200, r.text);
        // Each batch fills its partition past max-file-rows: one committed file per batch.
        await waitFor(`batch ${b} committed as a file`, () => {
          if (!fs.existsSync(path.join(tableDir, '_meta', 'current'))) return false;
          return readCurrent().files.reduce((n, f) => n + f.rows, 0) === (b + 1) * batchSize;
        });
      }
      const r = await sluice(['lake', 'compact', `--config-file=${conf}`, '--table=events',
        `--sluice.data-dir=${dataDir}`]);
      assert.equal(r.code, 1, `exit code: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`being written by a running node \\(pid ${node.proc.pid}\\)`),
                   r.stderr);
      assert.match(r.stderr, /stop it or let the node compact/, r.stderr);
    } finally {
      const exit = await stopNode(node);
      assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
    }
    before = readCurrent();
    assert.equal(before.files.length, batches, 'one small file per batch');
    await checkTable(await currentFiles(conf), events);
  });

  await step('--dry-run plans without writing', async () => {
    const r = await sluice(['lake', 'compact', '--dry-run', `--config-file=${conf}`,
      '--table=events', `--sluice.data-dir=${dataDir}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /would merge date=2024-11-22\/hour=10: \d+ files/, r.stdout);
    assert.equal(readCurrent().snapshot_id, before.snapshot_id, 'no new snapshot');
  });

  await step('sluice lake compact merges small files: same rows for DuckDB and hyparquet, fewer files',
    async () => {
      const r = await sluice(['lake', 'compact', `--config-file=${conf}`, '--table=events',
        `--sluice.data-dir=${dataDir}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /merged date=2024-11-22\/hour=10: \d+ files \(\d+ rows, \d+ bytes\).* -> date=2024-11-22\/hour=10\/part-/,
                   r.stdout);
      const snap = readCurrent();
      assert.equal(snap.snapshot_id, before.snapshot_id + 1, 'one new snapshot');
      assert.equal(snap.offset_watermark, before.offset_watermark);
      const partitions = new Set(before.files.map((f) => f.partition));
      const multi = [...partitions].filter(
        (p) => before.files.filter((f) => f.partition === p).length > 1);
      assert.equal(snap.files.length, partitions.size, 'one file per partition');
      assert.equal(snap.added.length, multi.length);
      assert.equal(snap.removed.length, before.files.length - (partitions.size - multi.length));
      for (const f of snap.added) {
        const inputs = before.files.filter((b) => b.partition === f.partition);
        assert.equal(f.rows, inputs.reduce((n, b) => n + b.rows, 0), `${f.path}: rows`);
        assert.equal(f.min_offset, Math.min(...inputs.map((b) => b.min_offset)));
        assert.equal(f.max_offset, Math.max(...inputs.map((b) => b.max_offset)));
      }
      for (const f of before.files)
        assert.ok(fs.existsSync(path.join(tableDir, f.path)), `old file kept until retention: ${f.path}`);
      const files = await currentFiles(conf);
      assert.ok(files.length < before.files.length, `${files.length} < ${before.files.length}`);
      await checkTable(files, events);
      const again = await sluice(['lake', 'compact', `--config-file=${conf}`, '--table=events',
        `--sluice.data-dir=${dataDir}`]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /nothing to compact/, again.stdout);
    });

  await step('a restarted node goes on over the compacted table; no id twice', async () => {
    const node = await startReadyNode(sluiceBinary, ['serve', `--config-file=${conf}`,
      '--gateway.port=0', `--sluice.data-dir=${dataDir}`]);
    const more = makeEvents('after', 3, NOW);
    const r = await request(node, 'POST', '/v1/events', more);
    assert.equal(r.status, 200, r.text);
    const exit = await stopNode(node);
    assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
    await checkTable(await currentFiles(conf), [...events, ...more]);
  });

  await step('S3: compaction downloads the small files and commits one merged file', async () => {
    const s3 = await startS3({ bucket: 'lake', secret: 'lake-secret' });
    try {
      const s3conf = writeConf('s3', { endpoint: s3.endpoint, accessKey: s3.accessKey,
                                       secret: 'lake-secret' });
      const dir = path.join(work, 's3');
      const args = [`--config-file=${s3conf}`, '--table=events', `--sluice.data-dir=${dir}`];
      const listFiles = async () => {
        const r = await sluice(['lake', 'files', '--json', ...args]);
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout);
      };
      const node = await startReadyNode(sluiceBinary, ['serve', `--config-file=${s3conf}`,
        '--gateway.port=0', `--sluice.data-dir=${dir}`]);
      const s3events = [];
      try {
        for (let b = 0; b < 3; ++b) {
          const batch = makeEvents(`s3-${b}`, batchSize, NOW);
          s3events.push(...batch);
          const r = await request(node, 'POST', '/v1/events', batch);
          assert.equal(r.status, 200, r.text);
          await waitFor(`S3 batch ${b} committed`, async () => (await listFiles()).length === b + 1);
        }
      } finally {
        const exit = await stopNode(node);
        assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
      }
      const r = await sluice(['lake', 'compact', ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /merged date=2024-11-22\/hour=10: 3 files/, r.stdout);
      const urls = await listFiles();
      assert.equal(urls.length, 1, JSON.stringify(urls));
      assert.ok(urls[0].startsWith('s3://lake/warehouse/events/date=2024-11-22/hour=10/part-'), urls[0]);
      // s3rver keeps objects as files under <dir>/<bucket>/<key>._S3rver_object.
      const local = (u) => path.join(s3.dir, 'lake', `${u.slice('s3://lake/'.length)}._S3rver_object`);
      await checkTable(urls.map(local), s3events);
    } finally {
      await s3.stop();
    }
  });

  console.log(`ok - lake_compaction (${Date.now() - t0} ms)`);
  fs.rmSync(work, { recursive: true, force: true });
} catch (e) {
  console.error(`FAIL - lake_compaction: ${e.stack || e.message}\n(work dir kept: ${work})`);
  process.exitCode = 1;
}
