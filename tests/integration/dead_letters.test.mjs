// Dead letters through a real node: a sink whose path is a directory fails for good, its events go
// to the dead-letter sink; the admin API lists them (paging, reason filter, 400 on bad
// parameters); after the operator fixes the sink and restarts, `POST .../replay` and
// `sluice dlq replay` send them through the pipeline again, once.
//
//   node tests/integration/dead_letters.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);

const CLICKS = 25; // routed to the broken sink: all become dead letters
const PLAYS = 5;   // routed to the healthy sink
const PAGE = 10;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-dlq-it-'));
const confFile = path.join(dataDir, 'dlq.conf');
const brokenPath = path.join(dataDir, 'broken.ndjson');
const eventsPath = path.join(dataDir, 'sinks', 'events.ndjson');
fs.writeFileSync(confFile, `
[sluice]
node = "dlq-node"
data-dir = "${dataDir}"

[gateway]
port = 0

[sinks.broken]
kind = "file"
path = "broken.ndjson"
flush-interval = 20ms
max-attempts = 2
backoff-initial = 10ms

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes.clicks]
when = "type == \\"click\\""
sinks = ["broken"]

[routes._unmatched]
sinks = ["events"]
`);

const args = ['serve', `--config-file=${confFile}`];
const clickIds = Array.from({ length: CLICKS }, (_, i) => `click-${i}`);

function dlq(...rest) {
  const r = spawnSync(binary, ['dlq', ...rest], { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  return r;
}

async function list(node, query = '') {
  const res = await request(node, 'GET', `/v1/admin/dead-letters${query}`);
  assert.equal(res.status, 200, `GET dead-letters${query}: ${res.status} ${res.text}`);
  return res.json;
}

let node;
try {
  // The sink's path is a directory: open() fails with EISDIR, a permanent error.
  fs.mkdirSync(brokenPath);
  node = await startReadyNode(binary, args);

  await step('events routed to a broken sink become dead letters, the others are delivered', async () => {
    const events = clickIds.map((id, i) => ({ id, type: 'click', device_id: 'tv-1', ts: 1732233600000 + i, n: i }));
    for (let i = 0; i < PLAYS; ++i)
      events.push({ id: `play-${i}`, type: 'play', device_id: 'tv-2', ts: 1732233600000 + i });
    const res = await request(node, 'POST', '/v1/events', events);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, CLICKS + PLAYS);
    await waitFor(`${CLICKS} dead letters`, async () => (await list(node)).total === CLICKS);
    await waitFor('the plays in the healthy sink', () => readNdjson(eventsPath).length === PLAYS);
  });

  await step('the listing pages with the next cursor and shows reason, origin, time and event', async () => {
    const seen = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const page = await list(node, `?after=${after}&limit=${PAGE}`);
      assert.equal(page.total, CLICKS);
      assert.ok(page.items.length <= PAGE);
      seen.push(...page.items);
      ++pages;
      if (page.next === null) break;
      assert.equal(page.next, page.items[page.items.length - 1].id);
      after = page.next;
    }
    assert.equal(pages, Math.ceil(CLICKS / PAGE));
    assert.deepEqual(seen.map((x) => x.id), Array.from({ length: CLICKS }, (_, i) => i + 1));
    assert.deepEqual(seen.map((x) => x.event.id).sort(), [...clickIds].sort());
    for (const item of seen) {
      assert.equal(item.origin, 'sink.broken');
      assert.match(item.reason, /sink broken refused the batch: .*Is a directory/);
      assert.equal(item.replayed, false);
      assert.ok(Math.abs(item.at - Date.now()) < 600000, `at ${item.at} is not a recent epoch ms`);
      assert.equal(item.event.type, 'click');
      assert.equal(item.event.device_id, 'tv-1');
      assert.equal(typeof item.event.n, 'number', 'attributes are kept');
    }
  });

  await step('the reason filter matches substrings of the reason', async () => {
    const hit = await list(node, `?reason=${encodeURIComponent('Is a directory')}&limit=5`);
    assert.equal(hit.total, CLICKS);
    assert.equal(hit.items.length, 5);
    const miss = await list(node, '?reason=no-such-reason');
    assert.deepEqual(miss, { items: [], next: null, total: 0 });
  });

  await step('bad parameters and bodies get 400 naming the parameter, unknown ids 404', async () => {
    for (const [query, param] of [['?limit=0', 'limit'], ['?limit=abc', 'limit'], ['?limit=100000', 'limit'],
                                  ['?after=-1', 'after'], ['?after=x', 'after'], ['?reason=', 'reason'],
                                  ['?colour=red', 'colour']]) {
      const res = await request(node, 'GET', `/v1/admin/dead-letters${query}`);
      assert.equal(res.status, 400, `${query}: ${res.status} ${res.text}`);
      assert.equal(res.json.parameter, param, `${query}: ${res.text}`);
      assert.ok(res.json.error.length > 0);
    }
    for (const [body, param] of [['{}', 'ids'], ['{"ids":[]}', 'ids'], ['{"ids":["x"]}', 'ids'],
                                 ['{"all":false}', 'all'], ['{"ids":[1],"all":true}', 'ids'],
                                 ['{"colour":1}', 'colour'], ['not json', 'body']]) {
      const res = await request(node, 'POST', '/v1/admin/dead-letters/replay', body);
      assert.equal(res.status, 400, `${body}: ${res.status} ${res.text}`);
      assert.equal(res.json.parameter, param, `${body}: ${res.text}`);
    }
    const unknown = await request(node, 'POST', '/v1/admin/dead-letters/replay', { ids: [1, 999] });
    assert.equal(unknown.status, 404, unknown.text);
    assert.deepEqual(unknown.json.unknown, [999]);
  });

  await step('sluice dlq list reads the node through the config file and prints every page', async () => {
    const r = dlq('list', `--config-file=${confFile}`, '--limit=7');
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trim().split('\n');
    assert.equal(rows[0], 'id\tat\torigin\treplayed\tevent\treason');
    assert.equal(rows.length, CLICKS + 2, r.stdout);
    assert.equal(rows[rows.length - 1], `${CLICKS} of ${CLICKS} dead letters`);
    assert.match(rows[1], /^1\t\d+\tsink\.broken\tfalse\tclick-\d+\tsink broken refused the batch/);
    const usage = dlq('replay', `--config-file=${confFile}`);
    assert.equal(usage.status, 2, 'replay without a selection is a usage error');
    assert.match(usage.stderr, /exactly one of --ids, --reason, --all/);
  });

  await step('after the sink is fixed and the node restarted, a replay delivers the named ids', async () => {
    await stopNode(node);
    fs.rmdirSync(brokenPath); // the operator fixes the sink
    node = await startReadyNode(binary, args);
    const first = (await list(node, '?limit=3')).items.map((x) => x.event.id);
    const res = await request(node, 'POST', '/v1/admin/dead-letters/replay', { ids: [1, 2, 3] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { replayed: 3, skipped: 0 });
    await waitFor('3 replayed events in the fixed sink', () => readNdjson(brokenPath).length === 3);
    assert.deepEqual(readNdjson(brokenPath).map((e) => e.id).sort(), [...first].sort());
    const listed = await list(node, '?limit=4');
    assert.deepEqual(listed.items.map((x) => x.replayed), [true, true, true, false]);
  });

  await step('replaying the same ids again is skipped', async () => {
    const res = await request(node, 'POST', '/v1/admin/dead-letters/replay', { ids: [3, 2, 1] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { replayed: 0, skipped: 3 });
  });

  await step('sluice dlq replay --reason sends the rest, and every click lands exactly once', async () => {
    const r = dlq('replay', `--url=http://127.0.0.1:${node.port}`, '--reason=Is a directory');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { replayed: CLICKS - 3, skipped: 3 });
    await waitFor(`${CLICKS} events in the fixed sink`, () => readNdjson(brokenPath).length >= CLICKS);
    const ids = readNdjson(brokenPath).map((e) => e.id).sort();
    assert.deepEqual(ids, [...clickIds].sort());
    const again = dlq('replay', `--url=http://127.0.0.1:${node.port}`, '--all');
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { replayed: 0, skipped: CLICKS });
    const all = await list(node, `?limit=${CLICKS}`);
    assert.ok(all.items.every((x) => x.replayed), 'every dead letter shows replayed: true');
    const metrics = (await request(node, 'GET', '/metrics')).text;
    assert.match(metrics, new RegExp(`^sluice_dead_letters_replayed_total ${CLICKS}$`, 'm'));
    assert.equal(readNdjson(eventsPath).length, PLAYS, 'the healthy sink got nothing twice');
  });

  await stopNode(node);
  fs.rmSync(dataDir, { recursive: true, force: true });
  console.log('dead letters: all steps passed');
} catch (e) {
  console.error(`FAIL: ${e.stack || e.message}`);
  if (node) console.error(`node stderr (tail):\n${node.stderr.split('\n').slice(-30).join('\n')}`);
  process.exit(1);
}
