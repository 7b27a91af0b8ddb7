// Hot reload of routes under load: several HTTP clients post batches without pause while routes
// are swapped back and forth (errors to sink a, or to sink b), one swap is invalid (400 with line
// and column, nothing changes), one is a rollback. Afterwards every acknowledged event is in
// exactly the sinks the route version in effect at its log offset dictates — nothing lost,
// nothing duplicated, nothing routed by a half-applied set — and after a restart the versions are
// still there and the latest is in effect.
//
//   node tests/integration/routes_reload.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);

const CLIENTS = 4;
const BATCH = 20;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-routes-it-'));
const confFile = path.join(dataDir, 'routes.conf');
const sinkFile = (name) => path.join(dataDir, 'sinks', `${name}.ndjson`);
const sinkSection = (name) => `
[sinks.${name}]
kind = "file"
path = "sinks/${name}.ndjson"
flush-interval = 20ms
`;
fs.writeFileSync(confFile, `
[sluice]
node = "routes-node"
data-dir = "${dataDir}"

[gateway]
port = 0
${sinkSection('a')}${sinkSection('b')}${sinkSection('other')}
[routes.errors]
when = "type == \\"error\\""
sinks = ["a"]

[routes._unmatched]
sinks = ["other"]
`);

/// Route text sending errors to `sink`, everything else to "other".
const routesTo = (sink) => `; errors to ${sink}
[routes.errors]
when = "type == \\"error\\""
sinks = ["${sink}"]

[routes._unmatched]
sinks = ["other"]
`;
/// Where a version's text sends errors.
function errorSinkOf(text) {
  const m = /\[routes\.errors\][^[]*?sinks\s*=\s*\[\s*"(\w+)"/.exec(text);
  assert.ok(m, `cannot find the errors route in:\n${text}`);
  return m[1];
}

const args = ['serve', `--config-file=${confFile}`];
let node;

// -- load -----------------------------------------------------------------------------------------

const acked = new Map(); // id -> type
let loadRunning = true;
let batchesSent = 0;
async function client(c) {
  let n = 0;
  while (loadRunning) {
    const events = [];
    for (let i = 0; i < BATCH; i++, n++)
      events.push({ id: `c${c}-e${n}`, type: n % 3 === 0 ? 'error' : 'play', device_id: `dev${c}`,
                    ts: 1732233600000 + n });
    const res = await request(node, 'POST', '/v1/events', events);
    batchesSent++;
    if (res.status === 200) {
      assert.equal(res.json.accepted, BATCH, res.text);
      for (const e of events) acked.set(e.id, e.type);
    } else {
      assert.equal(res.status, 503, `unexpected answer to a batch: ${res.status} ${res.text}`);
    }
  }
}
/// Waits until `more` further events were acknowledged (the swaps happen under load).
async function underLoad(more) {
  const target = acked.size + more;
  await waitFor(`${more} more acknowledged events`, () => acked.size >= target, 20000, 5);
}

async function metric(name, labels = '') {
  const res = await request(node, 'GET', '/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ').pop()) : undefined;
}

try {
  await step('the config routes are version 1, readable through GET /v1/admin/routes', async () => {
    node = await startReadyNode(binary, args);
    const res = await request(node, 'GET', '/v1/admin/routes');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.version, 1);
    assert.equal(res.json.effective_from, 0);
    assert.equal(errorSinkOf(res.json.text), 'a');
    const errors = res.json.routes.find((r) => r.name === 'errors');
    assert.deepEqual(errors, { name: 'errors', when: 'type == "error"', sinks: ['a'], actions: {} });
    assert.deepEqual(res.json.unmatched_sinks, ['other']);
  });

  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
  const swapAnswers = [];
  await step('swaps under continuous load from several clients answer the new version', async () => {
    await underLoad(500);
    const puts = [
      () => request(node, 'PUT', '/v1/admin/routes', routesTo('b'), 'text/plain'),
      () => request(node, 'PUT', '/v1/admin/routes', { text: routesTo('a'), comment: 'back to a' }),
      () => request(node, 'PUT', '/v1/admin/routes', routesTo('b'), 'text/plain; charset=utf-8'),
      () => request(node, 'POST', '/v1/admin/routes/rollback', { version: 3 }),
      () => request(node, 'PUT', '/v1/admin/routes', routesTo('b'), 'text/plain'),
    ];
    for (const put of puts) {
      const res = await put();
      assert.equal(res.status, 200, res.text);
      swapAnswers.push(res.json);
      await underLoad(300);
    }
    assert.deepEqual(swapAnswers.map((a) => a.version), [2, 3, 4, 5, 6]);
    for (let i = 1; i < swapAnswers.length; i++)
      assert.ok(swapAnswers[i].effective_from > swapAnswers[i - 1].effective_from,
                `events were acknowledged between the swaps: ${JSON.stringify(swapAnswers)}`);
  });

  await step('an invalid PUT answers 400 with line and column and changes nothing', async () => {
    const bad = `[routes.errors]\nwhen = "type == "\nsinks = ["a"]\n`;
    const res = await request(node, 'PUT', '/v1/admin/routes', bad, 'text/plain');
    assert.equal(res.status, 400, res.text);
    assert.equal(typeof res.json.error, 'string');
    assert.equal(res.json.line, 2, res.text);
    assert.ok(res.json.column > 1, res.text);
    const unknown = await request(node, 'PUT', '/v1/admin/routes', routesTo('nowhere'), 'text/plain');
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(unknown.json.error, /nowhere/);
    assert.match(unknown.json.error, /cannot add sinks/);
    const missing = await request(node, 'POST', '/v1/admin/routes/rollback', { version: 99 });
    assert.equal(missing.status, 404, missing.text);
    const cur = await request(node, 'GET', '/v1/admin/routes');
    assert.equal(cur.json.version, 6);
    assert.equal(await metric('sluice_routes_version'), 6);
    assert.equal(await metric('sluice_routes_reloads_total', '{result="ok"}'), 5);
    assert.ok(await metric('sluice_routes_reloads_total', '{result="invalid"}') >= 3);
    await underLoad(300);
  });

  await step('the load stops; every client saw its batches acknowledged', async () => {
    loadRunning = false;
    await Promise.all(clients);
    assert.ok(acked.size >= 2000, `only ${acked.size} events acknowledged`);
    console.log(`  ${acked.size} events acknowledged in ${batchesSent} batches`);
  });

  let versions;
  await step('every acknowledged event is in exactly the sinks its route version dictates', async () => {
    const list = await request(node, 'GET', '/v1/admin/routes/versions');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.current, 6);
    assert.equal(list.json.versions.length, 6);
    versions = [];
    for (const v of list.json.versions) {
      const one = await request(node, 'GET', `/v1/admin/routes/versions/${v.version}`);
      assert.equal(one.status, 200, one.text);
      versions.push({ version: v.version, from: v.effective_from, errorsTo: errorSinkOf(one.json.text),
                      comment: v.comment });
    }
    assert.equal(versions[4].comment, 'rollback to 3');
    assert.equal(versions[2].comment, 'back to a');
    const sinkOf = (offset) => {
      let chosen = versions[0];
      for (const v of versions) if (v.from <= offset) chosen = v;
      return chosen.errorsTo;
    };
    const total = () => ['a', 'b', 'other'].reduce((n, s) => n + readNdjson(sinkFile(s)).length, 0);
    await waitFor('every acknowledged event in the sinks', () => total() >= acked.size, 20000);
    const seen = new Map(); // id -> [sink, offset]
    for (const s of ['a', 'b', 'other']) {
      for (const line of readNdjson(sinkFile(s))) {
        assert.ok(!seen.has(line.id), `${line.id} delivered twice: ${seen.get(line.id)} and ${s}`);
        seen.set(line.id, [s, line.offset]);
      }
    }
    let errorsA = 0, errorsB = 0;
    for (const [id, type] of acked) {
      assert.ok(seen.has(id), `acknowledged event ${id} is in no sink`);
      const [s, offset] = seen.get(id);
      const want = type === 'error' ? sinkOf(offset) : 'other';
      assert.equal(s, want, `${id} (${type}, offset ${offset}) is in ${s}, version says ${want}`);
      if (type === 'error') (s === 'a' ? errorsA++ : errorsB++);
    }
    assert.equal(seen.size, acked.size, 'the sinks hold events nobody acknowledged');
    assert.ok(errorsA > 0 && errorsB > 0, `both route sets routed events: a=${errorsA} b=${errorsB}`);
  });

  await step('after a restart the versions persist and the latest is in effect', async () => {
    assert.equal((await stopNode(node)).code, 0);
    node = await startReadyNode(binary, args);
    const cur = await request(node, 'GET', '/v1/admin/routes');
    assert.equal(cur.json.version, 6, cur.text);
    assert.equal(errorSinkOf(cur.json.text), 'b');
    const list = await request(node, 'GET', '/v1/admin/routes/versions');
    assert.equal(list.json.versions.length, 6, 'an unchanged config file adds no version');
    const before = readNdjson(sinkFile('b')).length;
    const res = await request(node, 'POST', '/v1/events',
                              [{ id: 'after-restart', type: 'error', device_id: 'd', ts: 1 }]);
    assert.equal(res.status, 200, res.text);
    await waitFor('the new error in sink b', () => readNdjson(sinkFile('b')).length > before);
    assert.equal(readNdjson(sinkFile('b')).at(-1).id, 'after-restart');
    assert.equal(readNdjson(sinkFile('a')).filter((l) => l.id === 'after-restart').length, 0);
  });

  await step('sluice routes check validates a file offline against the config sinks', async () => {
    const good = path.join(dataDir, 'good.routes');
    const bad = path.join(dataDir, 'bad.routes');
    fs.writeFileSync(good, routesTo('b'));
    fs.writeFileSync(bad, `[routes.errors]\nwhen = "type == "\nsinks = ["a"]\n`);
    const ok = spawnSync(binary, ['routes', 'check', good, `--config-file=${confFile}`],
                         { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /OK, 1 routes \(errors\)/);
    const ko = spawnSync(binary, ['routes', 'check', bad, `--config-file=${confFile}`],
                         { encoding: 'utf8' });
    assert.equal(ko.status, 1, ko.stderr + ko.stdout);
    assert.match(ko.stdout, new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: `));
  });

  assert.equal((await stopNode(node)).code, 0);
  fs.rmSync(dataDir, { recursive: true, force: true });
  console.log('routes_reload: ok');
} catch (e) {
  loadRunning = false;
  console.error(e);
  if (node) console.error(`node stderr (tail):\n${node.stderr.split('\n').slice(-30).join('\n')}`);
  if (node && !node.exited) node.proc.kill('SIGKILL');
  process.exit(1);
}
