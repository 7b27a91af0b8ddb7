// The lake sink end to end: a real `sluice serve` node on conf/sluice.conf (its lake table
// `events`), events posted over HTTP (late ones after newer ones, one that does not fit its column),
// the table read back through `_meta/current` by DuckDB and by hyparquet, crashes at both
// commit points, and the same table on S3 (s3rver behind a SigV4-verifying proxy).
//
//   node tests/integration/lake.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  readNdjson, request, requireNode, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { startS3 } from './lib/s3.mjs';

const { binary: sluiceBinary, sourceRoot } = testArgs(import.meta.url);

const { DuckDBInstance } = requireNode('@duckdb/node-api');
const { parquetReadObjects, asyncBufferFromFile } = await import(requireNode.resolve('hyparquet'));
const { compressors } = await import(requireNode.resolve('hyparquet-compressors'));

/// Runs `sluice <args>` and returns its stdout. Asynchronous: the S3 proxy runs in this process.
const sluice = async (args) => (await promisify(execFile)(sluiceBinary, args)).stdout;

const baseConf = fs.readFileSync(path.join(sourceRoot, 'conf', 'sluice.conf'), 'utf8');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-lake-test-'));
const db = await DuckDBInstance.create(':memory:');
const duck = await db.connect();
const sql = async (q) => (await duck.runAndReadAll(q)).getRowObjectsJson();

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
/// Event time of the "current" events: 2024-11-22T10:30:00Z.
const NOW = Date.UTC(2024, 10, 22, 10, 30);

/// conf/sluice.conf with the lake section adjusted (`max-file-age`, S3 options after `root`).
function writeConf(name, { maxFileAge = '1h', root = '"lake"', s3 = null } = {}) {
  let text = baseConf;
  assert.match(text, /^max-file-age = .*$/m, 'conf/sluice.conf has a lake max-file-age');
  assert.match(text, /^root = "lake"$/m, 'conf/sluice.conf has a lake root');
  text = text.replace(/^max-file-age = .*$/m, `max-file-age = ${maxFileAge}`);
  // Enrichment and sessions off: this test compares every row's attrs with what it sent
  // (enrichment has its own test, schemas_enrich.test.mjs).
  const enabled = text.match(/^enabled = true$/gm) ?? [];
  assert.equal(enabled.length, 2, 'conf/sluice.conf enables enrich and sessions');
  text = text.replace(/^enabled = true$/gm, 'enabled = false');
  let rootLines = `root = ${root}`;
  if (s3)
    rootLines += `\nendpoint = "${s3.endpoint}"\nregion = "us-east-1"\naccess-key = "${s3.accessKey}"`
               + `\nsecret-key = "${s3.secret}"`;
  text = text.replace(/^root = "lake"$/m, rootLines);
  const file = path.join(work, `${name}.conf`);
  fs.writeFileSync(file, text);
  return file;
}

/// `n` events with ids `<prefix>-<i>` at `ts + i s`: plays (with nulls in profile_id, title_id and
/// position_ms, extra attributes for `attrs`), errors and billing events (every route).
function makeEvents(prefix, n, ts) {
  const out = [];
  for (let i = 0; i < n; ++i) {
    const type = i % 10 === 3 ? 'error' : i % 10 === 7 ? 'billing' : 'play';
    const e = { id: `${prefix}-${i}`, type, device_id: `tv-${i % 3}`, ts: ts + i * 1000 };
    if (i % 4 !== 0) e.profile_id = `p-${i % 5}`;
    if (i % 7 !== 0) e.title_id = `t-${i % 3}`;
    if (i % 6 !== 0) e.position_ms = i * 1000 + 7;
    if (i % 2 === 1) e.codec = 'h264';
    if (type === 'error') e.code = `E${i}`;
    out.push(e);
  }
  return out;
}

async function post(node, events) {
  const r = await request(node, 'POST', '/v1/events', events);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.accepted, events.length, r.text);
}

async function start(conf, dataDir, env = process.env) {
  return startReadyNode(sluiceBinary, ['serve', `--config-file=${conf}`, '--gateway.port=0',
    `--sluice.data-dir=${dataDir}`], env);
}

async function stop(node) {
  const exit = await stopNode(node);
  assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
}

/// The snapshot `current` names, read from a local table directory (null when there is none).
function readCurrent(tableDir) {
  const pointer = path.join(tableDir, '_meta', 'current');
  if (!fs.existsSync(pointer)) return null;
  const name = fs.readFileSync(pointer, 'utf8').trim();
  return JSON.parse(fs.readFileSync(path.join(tableDir, '_meta', name), 'utf8'));
}

const utcDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const utcHour = (ms) => new Date(ms).getUTCHours();

/// Checks the table (its current snapshot `snap`, its files at `files` = local paths) against the
/// `expected` events (by id), with both readers: every id exactly once, values, nulls, timestamps,
/// partitions, counts and sums.
async function checkTable(snap, files, expected) {
  assert.ok(snap, 'the table has a current snapshot');
  for (const f of files) assert.ok(fs.existsSync(f), `file of current exists: ${f}`);
  const rowsInMeta = snap.files.reduce((n, f) => n + f.rows, 0);
  assert.equal(rowsInMeta, expected.size, 'rows in the snapshot metadata');
  const list = `[${files.map((f) => `'${f}'`).join(', ')}]`;
  let sum = 0, withPosition = 0, withProfile = 0, withAttrs = 0;
  for (const e of expected.values()) {
    if (e.position_ms !== undefined) { sum += e.position_ms; ++withPosition; }
    if (e.profile_id !== undefined) ++withProfile;
    if (e.codec !== undefined || e.code !== undefined) ++withAttrs;
  }
  // DuckDB: the aggregate of the issue, then every row.
  const [agg] = await sql(`SELECT count(*) AS n, sum(position_ms)::VARCHAR AS s,
      count(DISTINCT id) AS ids, count(position_ms) AS np, count(profile_id) AS npr,
      count(attrs) AS na FROM read_parquet(${list}, hive_partitioning = true)`);
  assert.equal(agg.n, String(expected.size), 'DuckDB count(*)');
  assert.equal(agg.ids, String(expected.size), 'DuckDB: no id twice');
  assert.equal(agg.s, String(sum), 'DuckDB sum(position_ms)');
  assert.equal(agg.np, String(withPosition), 'DuckDB: position_ms nulls');
  assert.equal(agg.npr, String(withProfile), 'DuckDB: profile_id nulls');
  assert.equal(agg.na, String(withAttrs), 'DuckDB: attrs nulls');
  const rows = await sql(`SELECT id, type, device_id, profile_id, epoch_ms(ts)::VARCHAR AS ts,
      title_id, position_ms::VARCHAR AS position_ms, attrs, date::VARCHAR AS date, hour
    FROM read_parquet(${list}, hive_partitioning = true)`);
  for (const r of rows) {
    const e = expected.get(r.id);
    assert.ok(e, `DuckDB: unexpected id ${r.id}`);
    assert.equal(Number(r.ts), e.ts, `${r.id}: ts`);
    assert.equal(r.type, e.type, `${r.id}: type`);
    assert.equal(r.device_id, e.device_id, `${r.id}: device_id`);
    assert.equal(r.profile_id, e.profile_id ?? null, `${r.id}: profile_id`);
    assert.equal(r.title_id, e.title_id ?? null, `${r.id}: title_id`);
    assert.equal(r.position_ms, e.position_ms === undefined ? null : String(e.position_ms),
                 `${r.id}: position_ms`);
    assert.equal(r.date, utcDate(e.ts), `${r.id}: hive date is the UTC date of ts`);
    assert.equal(Number(r.hour), utcHour(e.ts), `${r.id}: hive hour is the UTC hour of ts`);
    const extra = {};
    if (e.codec !== undefined) extra.codec = e.codec;
    if (e.code !== undefined) extra.code = e.code;
    assert.deepEqual(r.attrs === null ? {} : JSON.parse(r.attrs), extra, `${r.id}: attrs`);
  }
  // hyparquet, file by file: the same rows, and each file's rows in its path's partition.
  const seen = new Set();
  for (const file of files) {
    const got = await parquetReadObjects({ file: await asyncBufferFromFile(file), compressors });
    const m = /date=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(file);
    assert.ok(m, `partitioned path: ${file}`);
    for (const g of got) {
      const e = expected.get(g.id);
      assert.ok(e, `hyparquet: unexpected id ${g.id}`);
      assert.ok(!seen.has(g.id), `hyparquet: ${g.id} twice`);
      seen.add(g.id);
      assert.ok(g.ts instanceof Date, `${g.id}: ts is a timestamp`);
      assert.equal(g.ts.getTime(), e.ts, `${g.id}: ts`);
      assert.equal(m[1], utcDate(e.ts), `${g.id}: file's date partition`);
      assert.equal(Number(m[2]), utcHour(e.ts), `${g.id}: file's hour partition`);
      assert.equal(g.position_ms, e.position_ms === undefined ? null : BigInt(e.position_ms));
      assert.equal(g.profile_id ?? null, e.profile_id ?? null, `${g.id}: profile_id`);
      assert.equal(typeof g.offset, 'bigint', `${g.id}: offset is int64`);
    }
  }
  assert.equal(seen.size, expected.size, 'hyparquet: every id');
}

/// Local table check: `current` of <dataDir>/lake/events, and `sluice lake files` lists the same.
async function checkLocal(conf, dataDir, expected) {
  const tableDir = path.join(dataDir, 'lake', 'events');
  const snap = readCurrent(tableDir);
  const urls = JSON.parse(await sluice(['lake', 'files', '--json', `--config-file=${conf}`,
    '--table=events', `--sluice.data-dir=${dataDir}`]));
  const files = urls.map((u) => fileURLToPath(u));
  assert.deepEqual(files.sort(), snap.files.map((f) => path.join(tableDir, f.path)).sort(),
                   'sluice lake files lists the files of current');
  await checkTable(snap, files, expected);
  return snap;
}

const byId = (...lists) => new Map(lists.flat().map((e) => [e.id, e]));

const t0 = Date.now();
try {
  const conf = writeConf('local');
  const dataDir = path.join(work, 'local');
  const current = makeEvents('now', 40, NOW);
  const late5h = makeEvents('late5h', 6, NOW - 5 * HOUR);
  const late2d = makeEvents('late2d', 4, NOW - 2 * DAY);
  const late3d = makeEvents('late3d', 5, NOW - 3 * DAY - 7 * HOUR);
  const good = makeEvents('mixed', 2, NOW + 60 * 1000);
  const bad = { id: 'bad-1', type: 'play', device_id: 'tv-9', ts: NOW, position_ms: 'five' };

  await step('SIGTERM commits every buffered event; late events land in their true partitions',
    async () => {
      const node = await start(conf, dataDir);
      await post(node, current);
      await post(node, late5h); // the airplane case, after newer events
      await post(node, late2d);
      await post(node, [good[0], bad, good[1]]);
      await stop(node);
      const snap = await checkLocal(conf, dataDir, byId(current, late5h, late2d, good));
      const partitions = new Set(snap.files.map((f) => f.partition));
      assert.ok(partitions.has('date=2024-11-22/hour=05'), [...partitions].join(' '));
      assert.ok(partitions.has('date=2024-11-20/hour=10'), [...partitions].join(' '));
    });

  await step('an attribute that does not fit its column is dead-lettered with the field name',
    async () => {
      const letters = readNdjson(path.join(dataDir, 'dead-letters', 'dead-letters.ndjson'));
      const mine = letters.filter((l) => l.event && l.event.id === 'bad-1');
      assert.equal(mine.length, 1, JSON.stringify(letters));
      assert.match(mine[0].reason, /'position_ms'/);
      assert.match(mine[0].reason, /int64/);
    });

  await step('late events are visible through current after the next commit (max-file-age)',
    async () => {
      const fast = writeConf('local-fast', { maxFileAge: '300ms' });
      const node = await start(fast, dataDir);
      const before = readCurrent(path.join(dataDir, 'lake', 'events')).snapshot_id;
      await post(node, late3d);
      const expectedRows = current.length + late5h.length + late2d.length + good.length
                         + late3d.length;
      await waitFor('a commit with the late events', () => {
        const snap = readCurrent(path.join(dataDir, 'lake', 'events'));
        return snap.snapshot_id > before && snap.files.reduce((n, f) => n + f.rows, 0) === expectedRows;
      }, 15000);
      await checkLocal(fast, dataDir, byId(current, late5h, late2d, good, late3d));
      await stop(node);
      const out = await sluice(['lake', 'snapshots', `--config-file=${fast}`, '--table=events',
        `--sluice.data-dir=${dataDir}`]);
      assert.match(out, /\(current\)/, out);
    });

  for (const point of ['after-file-move', 'after-snapshot-write']) {
    await step(`a crash ${point} loses and doubles nothing after the restart`, async () => {
      const dir = path.join(work, `crash-${point}`);
      const first = makeEvents(`${point}-a`, 12, NOW);
      const second = [...makeEvents(`${point}-b`, 10, NOW + HOUR),
                      ...makeEvents(`${point}-c`, 3, NOW - DAY)];
      let node = await start(conf, dir);
      await post(node, first);
      await stop(node); // snapshot 1
      node = await start(conf, dir, { ...process.env, SLUICE_LAKE_CRASH_AT: point });
      await post(node, second);
      const exit = await stopNode(node); // the drain's flush hits the hook
      assert.equal(exit.signal, 'SIGKILL', `killed at ${point}: ${JSON.stringify(exit)}`);
      const tableDir = path.join(dir, 'lake', 'events');
      assert.equal(readCurrent(tableDir).snapshot_id, 1, 'current still names snapshot 1');
      if (point === 'after-snapshot-write')
        assert.ok(fs.readdirSync(path.join(tableDir, '_meta')).some((n) => n.endsWith('2.json')),
                  'snapshot 2 was written (committed: the hint `current` is rolled forward at restart)');
      node = await start(conf, dir);
      await stop(node); // replay from the watermark, commit on drain
      const snap = await checkLocal(conf, dir, byId(first, second));
      assert.equal(snap.snapshot_id, 2);
    });
  }

  await step('S3: a wrong secret is refused and loses nothing; the right one writes the table', async () => {
    const s3 = await startS3({ bucket: 'lake', secret: 'lake-secret' });
    try {
      const events = [...makeEvents('s3', 20, NOW), ...makeEvents('s3late', 4, NOW - 5 * HOUR)];
      const s3conf = writeConf('s3', { root: '"s3://lake/warehouse"',
        s3: { endpoint: s3.endpoint, accessKey: s3.accessKey, secret: 'lake-secret' } });
      const badConf = writeConf('s3-bad', { root: '"s3://lake/warehouse"',
        s3: { endpoint: s3.endpoint, accessKey: s3.accessKey, secret: 'wrong-secret' } });
      const dir = path.join(work, 's3');
      // Wrong secret: refused by the proxy, the sink unhealthy, the events kept in the log.
      let node = await start(badConf, dir);
      await post(node, events);
      await waitFor('the lake sink reports unhealthy', async () => {
        const m = await request(node, 'GET', '/metrics');
        return /sluice_sink_healthy\{sink="lake-events"\} 0/.test(m.text);
      }, 15000);
      assert.ok(s3.stats.rejected > 0, 'the proxy refused the wrong signature');
      await stop(node);
      const letters = readNdjson(path.join(dir, 'dead-letters', 'dead-letters.ndjson'));
      assert.equal(letters.filter((l) => l.origin === 'sink.lake-events').length, 0,
                   'a store that refuses us is not the batch\'s fault: nothing dead-lettered');
      // Right secret: the replay delivers every acknowledged event.
      node = await start(s3conf, dir);
      await stop(node);
      const urls = JSON.parse(await sluice(['lake', 'files', '--json', `--config-file=${s3conf}`,
        '--table=events', `--sluice.data-dir=${dir}`]));
      assert.ok(urls.length > 0 && urls.every((u) => u.startsWith('s3://lake/warehouse/events/')),
                JSON.stringify(urls));
      // s3rver keeps objects as files under <dir>/<bucket>/<key>._S3rver_object.
      const local = (key) => path.join(s3.dir, 'lake', `${key}._S3rver_object`);
      const pointer = fs.readFileSync(local('warehouse/events/_meta/current'), 'utf8').trim();
      const snap = JSON.parse(fs.readFileSync(local(`warehouse/events/_meta/${pointer}`), 'utf8'));
      const files = urls.map((u) => local(u.slice('s3://lake/'.length)));
      await checkTable(snap, files, byId(events));
    } finally {
      await s3.stop();
    }
  });

  console.log(`ok - lake (${Date.now() - t0} ms)`);
  fs.rmSync(work, { recursive: true, force: true });
} catch (e) {
  console.error(`FAIL - lake: ${e.stack || e.message}\n(work dir kept: ${work})`);
  process.exitCode = 1;
}
