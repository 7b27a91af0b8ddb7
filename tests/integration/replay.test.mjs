// `sluice replay` against a real node: a CSV file and a gzip NDJSON file with known bad rows are
// replayed; the accepted and rejected counts, the reported FILE:LINE of every bad row and the
// rejects file are exact, and every good row reaches the file sink exactly once with its derived
// id. Then resume: a replay stopped after a few batches (the SIGINT path) and rerun with its state
// file delivers every row exactly once; one killed with SIGKILL and rerun delivers every row, the
// duplicates bounded by the window the state file had not yet recorded.
//
//   node tests/integration/replay.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  baseUrl, readNdjson, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-replay-it-'));
const confFile = path.join(dir, 'replay.conf');
const sinkPath = path.join(dir, 'sinks', 'events.ndjson');
fs.writeFileSync(confFile, `
[sluice]
node = "replay-node"
data-dir = "${dir}"

[gateway]
port = 0
max-body-bytes = 65536

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`);

const T0 = 1700000000000;
const keys = new Map(); // file → first 16 hex digits of the SHA-256 of its bytes
const sha16 = (file) => {
  if (!keys.has(file)) keys.set(file, crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16));
  return keys.get(file);
};
const derivedId = (file, line) => `replay-${sha16(file)}-${line}`;

/// A CSV file: rows with quoted cells, escaped quotes and embedded newlines (a record spanning two
/// lines), and bad rows whose first line is recorded. Returns { file, good: [ids], bad: [lines] }.
function makeCsv(file, rows) {
  const lines = ['type,device_id,profile_id,ts,title_id,position_ms,player.codec,note'];
  const bad = new Map(); // line → expected reason fragment
  const goodLines = [];
  for (let i = 0; i < rows; ++i) {
    const line = lines.length + 1;
    let row;
    if (i % 97 === 13) {
      row = `play,,p-${i},${T0 + i},t-${i % 50},${i * 1000},h264,missing device`; // node rejects
      bad.set(line, "missing field 'device_id'");
    } else if (i % 97 === 40) {
      row = `play,csv-${i % 20},p-${i},last tuesday,t-1,0,h264,bad ts`; // node rejects
      bad.set(line, "field 'ts'");
    } else if (i % 97 === 71) {
      row = `play,csv-${i % 20},p-${i},${T0 + i},t-1,0`; // 6 cells: local reject
      bad.set(line, 'wrong column count');
    } else if (i % 50 === 7) {
      row = `play,csv-${i % 20},p-${i},${T0 + i},t-${i % 50},${i},av1,"he said ""stop""\nand left"`;
      goodLines.push(line);
    } else {
      row = `play,csv-${i % 20},,${T0 + i},t-${i % 50},${i},h264,`;
      goodLines.push(line);
    }
    lines.push(row);
  }
  fs.writeFileSync(file, lines.join('\r\n') + '\r\n'); // CRLF, as RFC 4180 has it
  // Embedded newlines make the physical line numbers differ from the array index: recount.
  return { file, goodLines, bad: recount(lines, bad, goodLines) };
}

/// Maps array positions of `lines` (some of which contain '\n') to physical line numbers.
function recount(lines, bad, goodLines) {
  const physical = [];
  let n = 1;
  for (const l of lines) {
    physical.push(n);
    n += l.split('\n').length;
  }
  const toPhysical = (arrayLine) => physical[arrayLine - 1];
  const fixedGood = goodLines.map(toPhysical);
  goodLines.length = 0;
  goodLines.push(...fixedGood);
  return new Map([...bad].map(([l, r]) => [toPhysical(l), r]));
}

/// An NDJSON file (gzip): own ids on some lines, derived on others; bad lines recorded.
function makeNdjson(file, rows) {
  const lines = [];
  const bad = new Map();
  const good = []; // { line, id|null }
  for (let i = 0; i < rows; ++i) {
    const line = lines.length + 1;
    const e = { type: 'click', device_id: `nd-${i % 30}`, ts: T0 + i, target: `b-${i % 9}`, n: i };
    if (i % 113 === 5) {
      lines.push('{"type":"click","device_id":"nd-1","ts":'); // malformed JSON: local reject
      bad.set(line, 'malformed JSON');
    } else if (i % 113 === 50) {
      delete e.device_id;
      lines.push(JSON.stringify(e));
      bad.set(line, "missing field 'device_id'");
    } else if (i % 113 === 90) {
      e.ts = 'not a time';
      lines.push(JSON.stringify(e));
      bad.set(line, "field 'ts'");
    } else {
      if (i % 3 === 0) e.id = `own-${i}`;
      lines.push(JSON.stringify(e));
      good.push({ line, id: e.id ?? null });
    }
    if (i % 400 === 399) lines.push(''); // blank lines are skipped, not rejected
  }
  fs.writeFileSync(file, zlib.gzipSync(lines.join('\n') + '\n'));
  return { file, good, bad };
}

function runReplay(args, opts = {}) {
  const r = spawnSync(binary, ['replay', ...args], { encoding: 'utf8', timeout: 120000, ...opts });
  if (r.error) throw r.error;
  return r;
}

/// Every sink line's id, with multiplicity.
function sinkIds() {
  const counts = new Map();
  for (const e of readNdjson(sinkPath)) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
  return counts;
}

async function waitForIds(ids, what) {
  return waitFor(`${what}: ${ids.length} ids in the sink`, () => {
    const counts = sinkIds();
    return ids.every((id) => counts.has(id)) && counts;
  }, 30000, 100);
}

let node;
try {
  node = await startReadyNode(binary, ['serve', `--config-file=${confFile}`]);
  const url = baseUrl(node);

  const csv = makeCsv(path.join(dir, 'history.csv'), 2000);
  const nd = makeNdjson(path.join(dir, 'history.ndjson.gz'), 1500);
  const expectedIds = [
    ...csv.goodLines.map((l) => derivedId(csv.file, l)),
    ...nd.good.map((g) => g.id ?? derivedId(nd.file, g.line)),
  ];
  const expectedBad = new Map([
    ...[...csv.bad].map(([l, r]) => [`${csv.file}:${l}`, r]),
    ...[...nd.bad].map(([l, r]) => [`${nd.file}:${l}`, r]),
  ]);
  const rejectsFile = path.join(dir, 'rejects.ndjson');
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  const args = [csv.file, nd.file, `--url=${url}`, '--batch-events=100', '--concurrency=4',
                `--rejects=${rejectsFile}`, `--state-dir=${stateDir}`, '--progress-interval=0.05'];
  let first;

  await step('a CSV and a gzip NDJSON file are replayed: counts and every bad row file:line are exact', async () => {
    first = runReplay(args);
    assert.equal(first.status, 2, `exit ${first.status}\nstdout: ${first.stdout}\nstderr: ${first.stderr}`);
    const reported = new Map();
    for (const m of first.stderr.matchAll(/^(.+):(\d+): rejected: (.*)$/gm)) reported.set(`${m[1]}:${m[2]}`, m[3]);
    assert.deepEqual([...reported.keys()].sort(), [...expectedBad.keys()].sort(),
                     `reported rejections differ\nstderr: ${first.stderr}`);
    for (const [where, fragment] of expectedBad)
      assert.ok(reported.get(where).includes(fragment), `${where}: "${reported.get(where)}" lacks "${fragment}"`);
    const summary = /replay: done; 2 files, (\d+) records acknowledged: accepted (\d+), rejected (\d+)/.exec(first.stdout);
    assert.ok(summary, `no summary line in: ${first.stdout}`);
    assert.equal(Number(summary[1]), expectedIds.length + expectedBad.size);
    assert.equal(Number(summary[2]), expectedIds.length);
    assert.equal(Number(summary[3]), expectedBad.size);
    assert.match(first.stderr, /replay: progress [\d.]+%/, 'plain progress lines when stderr is not a terminal');
  });

  await step('the rejects file holds each bad row once with file, line, reason and the row text', async () => {
    const rejects = readNdjson(rejectsFile);
    assert.equal(rejects.length, expectedBad.size);
    for (const r of rejects) {
      assert.ok(expectedBad.has(`${r.file}:${r.line}`), `unexpected reject ${JSON.stringify(r)}`);
      assert.equal(typeof r.reason, 'string');
      assert.ok(r.row.length > 0);
    }
    const wrongCount = rejects.find((r) => r.reason.includes('wrong column count'));
    assert.match(wrongCount.row, /^play,csv-\d+,p-\d+,\d+,t-1,0$/);
  });

  await step('every good row is in the file sink exactly once, with its own or its derived id', async () => {
    const counts = await waitForIds(expectedIds, 'first replay');
    const dup = expectedIds.filter((id) => counts.get(id) !== 1);
    assert.deepEqual(dup, [], 'ids not present exactly once');
    const events = readNdjson(sinkPath);
    const quoted = events.find((e) => e.id === derivedId(csv.file, csv.goodLines[7]));
    assert.ok(quoted, 'the CSV row with an embedded newline');
    const spanning = events.filter((e) => typeof e.note === 'string' && e.note.includes('\n'));
    assert.ok(spanning.length > 0 && spanning.every((e) => e.note === 'he said "stop"\nand left'),
              'quoted CSV cells keep escaped quotes and newlines');
    const csvEvent = events.find((e) => e.device_id === 'csv-1');
    assert.equal(typeof csvEvent.position_ms, 'number', 'numeric CSV cells become numbers');
    assert.equal(typeof csvEvent.ts, 'number');
    assert.ok(csvEvent.ts >= T0 && csvEvent.ts < T0 + 2000, 'events keep their own ts');
    assert.deepEqual(csvEvent.player, { codec: csvEvent.player.codec }, 'dotted headers nest');
    assert.ok(!('profile_id' in csvEvent) || csvEvent.profile_id === '' || csvEvent.profile_id.startsWith('p-'));
  });

  await step('running the same command again sends nothing: the state file says all is acknowledged', async () => {
    const again = runReplay(args);
    assert.equal(again.status, 2, `exit ${again.status}: ${again.stdout} ${again.stderr}`); // the old rejections stand
    assert.match(again.stdout, /this run: accepted 0, rejected 0/);
    assert.match(again.stderr, /resuming from .*: 3500 records already acknowledged/);
  });

  await step('a body over gateway.max-body-bytes (413) is halved until the one oversized row is rejected', async () => {
    const file = path.join(dir, 'oversized.ndjson');
    const lines = [];
    for (let i = 0; i < 40; ++i)
      lines.push(JSON.stringify({ type: 'play', device_id: `big-row-${i % 3}`, ts: T0 + i,
                                  blob: i === 17 ? 'x'.repeat(70000) : 'small' }));
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const r = runReplay([file, `--url=${url}`, '--restart', `--state-dir=${stateDir}`]);
    assert.equal(r.status, 2, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const rejected = [...r.stderr.matchAll(/^(.+):(\d+): rejected: (.*)$/gm)];
    assert.equal(rejected.length, 1, r.stderr);
    assert.equal(rejected[0][2], '18');
    assert.match(rejected[0][3], /the node answered 413/);
    assert.match(r.stdout, /accepted 39, rejected 1/);
    await waitForIds(lines.map((_, i) => derivedId(file, i + 1)).filter((_, i) => i !== 17), 'split batches');
  });

  await step('503 and 429 with Retry-After are waited out and resent: nothing lost, nothing doubled', async () => {
    // A proxy in front of the real node refuses some requests the way an overloaded node does.
    let n = 0;
    let refused = 0;
    const proxy = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        ++n;
        if (n % 4 === 2) {
          ++refused;
          res.writeHead(n % 8 === 2 ? 503 : 429, { 'content-type': 'application/json', 'retry-after': '1' });
          res.end('{"error":"overloaded","retry_after_s":1}');
          return;
        }
        const fwd = http.request({ host: '127.0.0.1', port: node.port, path: req.url, method: req.method,
                                   headers: req.headers }, (up) => {
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
        });
        fwd.end(Buffer.concat(chunks));
      });
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const file = path.join(dir, 'overload.ndjson');
      const lines = [];
      for (let i = 0; i < 400; ++i)
        lines.push(JSON.stringify({ type: 'stop', device_id: `ovl-${i % 5}`, ts: T0 + i }));
      fs.writeFileSync(file, lines.join('\n') + '\n');
      const child = spawn(binary, ['replay', file, `--url=http://127.0.0.1:${proxy.address().port}`,
                                   '--batch-events=20', '--concurrency=3', `--state-dir=${stateDir}`],
                          { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const code = await new Promise((resolve) => child.on('exit', resolve));
      assert.equal(code, 0, `exit ${code}\nstdout: ${out}\nstderr: ${err}`);
      const retries = Number(/retries (\d+)/.exec(out)[1]);
      assert.ok(refused > 0 && retries === refused, `${refused} refused, ${retries} retries reported`);
      const ids = lines.map((_, i) => derivedId(file, i + 1));
      const counts = await waitForIds(ids, 'overloaded replay');
      assert.deepEqual(ids.filter((id) => counts.get(id) !== 1), [], 'ids not present exactly once');
    } finally {
      proxy.close();
    }
  });

  // Resume after a clean interruption: --stop-after-batches raises SIGINT in the replay itself.
  const big = path.join(dir, 'big.ndjson');
  const bigRows = 6000;
  {
    const lines = [];
    for (let i = 0; i < bigRows; ++i)
      lines.push(JSON.stringify({ type: 'heartbeat', device_id: `big-${i % 40}`, ts: T0 + i, seq: i }));
    fs.writeFileSync(big, lines.join('\n') + '\n');
  }
  const bigIds = Array.from({ length: bigRows }, (_, i) => derivedId(big, i + 1));
  const bigState = path.join(dir, 'big.state');
  const bigArgs = [big, `--url=${url}`, '--batch-events=50', '--concurrency=4', `--state=${bigState}`,
                   '--progress-interval=0'];

  await step('a replay interrupted after 10 batches saves its state and exits 130', async () => {
    const r = runReplay([...bigArgs, '--stop-after-batches=10']);
    assert.equal(r.status, 130, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /replay: interrupted; .*run the same command again to resume/);
    const state = JSON.parse(fs.readFileSync(bigState, 'utf8'));
    assert.equal(state.files[0].done, false);
    assert.ok(state.files[0].records >= 500 && state.files[0].records < bigRows,
              `acknowledged prefix ${state.files[0].records}`);
  });

  await step('the rerun resumes from the state file and every row is in the sink exactly once', async () => {
    const r = runReplay(bigArgs);
    assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /resuming from .*big\.state: \d+ records already acknowledged/);
    assert.match(r.stdout, new RegExp(`1 files, ${bigRows} records acknowledged: accepted ${bigRows}, rejected 0`));
    const counts = await waitForIds(bigIds, 'resumed replay');
    assert.deepEqual(bigIds.filter((id) => counts.get(id) !== 1), [], 'ids not present exactly once');
  });

  // Resume after a hard kill: the batches in flight and those acknowledged since the last state
  // write are sent again (same ids), nothing is lost.
  const kill = path.join(dir, 'kill.csv');
  const killRows = 20000;
  {
    const lines = ['type,device_id,ts,seq'];
    for (let i = 0; i < killRows; ++i) lines.push(`heartbeat,kill-${i % 40},${T0 + i},${i}`);
    fs.writeFileSync(kill, lines.join('\n') + '\n');
  }
  const killIds = Array.from({ length: killRows }, (_, i) => derivedId(kill, i + 2));
  const killState = path.join(dir, 'kill.state');
  const killArgs = [kill, `--url=${url}`, '--batch-events=20', '--concurrency=2', `--state=${killState}`,
                    '--progress-interval=0'];

  await step('a replay killed with SIGKILL and rerun delivers every row; duplicates stay in the unsaved window', async () => {
    const child = spawn(binary, ['replay', ...killArgs], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let done = false;
    child.on('exit', () => { done = true; });
    await waitFor('a state file with an acknowledged prefix', () => {
      if (done) return true;
      try {
        return JSON.parse(fs.readFileSync(killState, 'utf8')).files[0].records >= 4000;
      } catch {
        return false;
      }
    }, 30000, 10);
    child.kill('SIGKILL');
    const how = await exited;
    if (how.signal !== 'SIGKILL') console.log(`# note: the replay finished (${JSON.stringify(how)}) before the kill`);
    const before = JSON.parse(fs.readFileSync(killState, 'utf8')).files[0].records;
    const r = runReplay(killArgs);
    assert.equal(r.status, 0, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const counts = await waitForIds(killIds, 'replay after kill');
    assert.deepEqual(killIds.filter((id) => !counts.has(id)), [], 'lost rows');
    const dups = killIds.reduce((n, id) => n + counts.get(id) - 1, 0);
    console.log(`# killed with ${before} of ${killRows} rows acknowledged in the state file; ${dups} rows delivered twice`);
    // In flight (2 × 20) plus at most the acks of one state-save interval.
    assert.ok(dups <= killRows / 4, `${dups} duplicates`);
  });
} finally {
  if (node) await stopNode(node);
}
fs.rmSync(dir, { recursive: true, force: true });
console.log('replay integration test passed');
