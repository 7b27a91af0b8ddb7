// Schemas and enrichment through a real node: a batch with good and bad events is acknowledged
// with the bad ones rejected by index and reason; the good ones reach the sink with
// schema_version, device_type, country and session_id; the bad ones are in the dead letters with
// the reason; violations are counted in /metrics; GET /v1/schemas lists the schemas; a WebSocket
// batch gets the same treatment; sessions continue across a restart.
//
//   node tests/integration/schemas_enrich.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, requireNode, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-schemas-it-'));
const confFile = path.join(dataDir, 'schemas.conf');
const geoip = path.join(dataDir, 'geoip.csv');
const eventsPath = path.join(dataDir, 'sinks', 'events.ndjson');
fs.writeFileSync(geoip, 'network,country\n203.0.113.0/24,NZ\n203.0.113.128/25,AU\n2001:db8::/32,NL\n');
fs.writeFileSync(confFile, `
[sluice]
node = "schemas-node"
data-dir = "${dataDir}"

[gateway]
port = 0

[schemas]
unknown-types = "accept"

[schemas.play]
version = 2
required = ["title_id", "position_ms"]
fields = {
  title_id = { type = "string", pattern = "^t-[0-9]+$" },
  position_ms = { type = "int", min = 0 },
  quality = { type = "string", enum = ["sd", "hd"] },
}

[schemas.heartbeat]
version = 1
fields = { position_ms = "int" }

[enrich]
enabled = true
geoip-file = "${geoip}"
trust-forwarded-for = true
max-clock-skew = 5min

[sessions]
enabled = true
gap = 30min

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`);

const args = ['serve', `--config-file=${confFile}`];
const T0 = 1732233600000;
const MIN = 60000;
const TV_UA = 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36';

async function metric(node, name, labels) {
  const res = await request(node, 'GET', '/metrics');
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of res.text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (want.every((w) => line.includes(w))) return Number(line.split(' ').pop());
  }
  return 0;
}

const sinkEvents = () => new Map(readNdjson(eventsPath).map((e) => [e.id, e]));

let node;
try {
  node = await startReadyNode(binary, args);

  await step('GET /v1/schemas lists the schemas and GET /v1/schemas/{type} shows one or 404s',
    async () => {
      const all = await request(node, 'GET', '/v1/schemas');
      assert.equal(all.status, 200, all.text);
      assert.equal(all.json.unknown_types, 'accept');
      assert.deepEqual(all.json.schemas.map((s) => s.label).sort(), ['heartbeat@1', 'play@2']);
      const play = await request(node, 'GET', '/v1/schemas/play');
      assert.equal(play.status, 200, play.text);
      assert.equal(play.json.version, 2);
      const pos = play.json.fields.find((f) => f.name === 'position_ms');
      assert.deepEqual(pos, { name: 'position_ms', type: 'int', required: true, min: 0 });
      const none = await request(node, 'GET', '/v1/schemas/nope');
      assert.equal(none.status, 404, none.text);
      assert.match(none.json.error, /no schema for event type 'nope'/);
    });

  await step('a mixed batch: bad events rejected by index with the rule, good ones accepted',
    async () => {
      const batch = [
        { id: 'good-0', type: 'play', device_id: 'tv-1', ts: T0, title_id: 't-1', position_ms: 0 },
        { id: 'bad-1', type: 'play', device_id: 'tv-1', ts: T0 + 1, title_id: 't-1', position_ms: -5 },
        { id: 'env-2', type: 'play', ts: T0 + 2 }, // envelope error: missing device_id
        { id: 'bad-3', type: 'play', device_id: 'tv-1', ts: T0 + 3, position_ms: 1 },
        { id: 'good-4', type: 'click', device_id: 'tv-1', ts: T0 + 4 * MIN, device_model: 'iPhone15,2' },
        { id: 'bad-5', type: 'play', device_id: 'tv-1', ts: T0 + 5, title_id: 'x', position_ms: 1 },
        { id: 'good-6', type: 'play', device_id: 'tv-1', ts: T0 + 60 * MIN, title_id: 't-2',
          position_ms: 10, quality: 'hd' },
        { id: 'bad-7', type: 'play', device_id: 'tv-1', ts: T0 + 7, title_id: 't-1', position_ms: 1,
          quality: '8k' },
        { id: 'skew-8', type: 'heartbeat', device_id: 'tv-9', ts: Date.now() + 3600000, position_ms: 1 },
      ];
      const res = await request(node, 'POST', '/v1/events', batch, 'application/json',
        { 'user-agent': TV_UA, 'x-forwarded-for': '203.0.113.200, 10.0.0.1' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, 4, res.text);
      assert.deepEqual(res.json.rejected, [
        { index: 1, error: 'schema play@2: field position_ms: below minimum 0' },
        { index: 2, error: "missing field 'device_id'" },
        { index: 3, error: 'schema play@2: field title_id: missing (required)' },
        { index: 5, error: 'schema play@2: field title_id: value "x" does not match pattern ^t-[0-9]+$' },
        { index: 7, error: 'schema play@2: field quality: value "8k" not in enum [sd, hd]' },
      ]);
    });

  await step('the good events reach the sink with schema_version, device_type, country, session_id',
    async () => {
      await waitFor('4 events in the sink', () => sinkEvents().size === 4);
      const got = sinkEvents();
      assert.deepEqual([...got.keys()].sort(), ['good-0', 'good-4', 'good-6', 'skew-8']);
      const g0 = got.get('good-0');
      assert.equal(g0.schema_version, 'play@2');
      assert.equal(g0.device_type, 'tv');
      assert.equal(g0.country, 'AU', 'the longest prefix of 203.0.113.200 (X-Forwarded-For)');
      assert.match(g0.session_id, /^[0-9a-f]{32}$/);
      const g4 = got.get('good-4');
      assert.equal(g4.schema_version, undefined, 'click has no schema');
      assert.equal(g4.device_type, 'mobile', 'device_model wins over the User-Agent');
      assert.equal(g4.session_id, g0.session_id, '4 minutes later: the same session');
      const g6 = got.get('good-6');
      assert.equal(g6.schema_version, 'play@2');
      assert.notEqual(g6.session_id, g0.session_id, '56 minutes later: a new session');
      const skew = got.get('skew-8');
      assert.equal(skew.schema_version, 'heartbeat@1');
      assert.ok(skew.clock_skew_ms > 3500000, JSON.stringify(skew));
      assert.equal(g0.clock_skew_ms, undefined);
    });

  await step('the bad events are in the dead letters with the reason, before the ack', async () => {
    // The ack above came after the dead-letter store's fsync: no waiting needed.
    const res = await request(node, 'GET', '/v1/admin/dead-letters?reason=schema');
    assert.equal(res.status, 200, res.text);
    const byId = new Map(res.json.items.map((x) => [x.event.id, x]));
    assert.deepEqual([...byId.keys()].sort(), ['bad-1', 'bad-3', 'bad-5', 'bad-7']);
    assert.equal(byId.get('bad-1').reason, 'schema play@2: field position_ms: below minimum 0');
    assert.equal(byId.get('bad-1').origin, 'schema');
    assert.equal(byId.get('bad-1').event.position_ms, -5, 'the event is kept as sent');
  });

  await step('violations are counted by type and rule in /metrics', async () => {
    assert.equal(await metric(node, 'sluice_schema_violations_total', { type: 'play', rule: 'min' }), 1);
    assert.equal(await metric(node, 'sluice_schema_violations_total', { type: 'play', rule: 'required' }), 1);
    assert.equal(await metric(node, 'sluice_schema_violations_total', { type: 'play', rule: 'pattern' }), 1);
    assert.equal(await metric(node, 'sluice_schema_violations_total', { type: 'play', rule: 'enum' }), 1);
    assert.equal(await metric(node, 'sluice_events_rejected_total', { reason: 'schema' }), 4);
    assert.equal(await metric(node, 'sluice_events_clock_skewed_total', {}), 1);
    // The new metrics are well-formed: promtool reports no problem about them.
    const text = (await request(node, 'GET', '/metrics')).text;
    const p = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.ok(!p.error, `cannot run promtool: ${p.error}`);
    const mine = `${p.stdout}${p.stderr}`.split('\n')
      .filter((l) => /sluice_schema_violations|sluice_events_clock_skewed/.test(l));
    assert.deepEqual(mine, [], 'promtool on the schema metrics');
  });

  await step('a WebSocket batch is validated and enriched from the upgrade request', async () => {
    const WebSocket = requireNode('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${node.port}/v1/stream`, {
      headers: { 'user-agent': 'Roku/DVP-9.10', 'x-forwarded-for': '2001:db8::7' },
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const ack = new Promise((resolve) => ws.once('message', (m) => resolve(JSON.parse(m.toString()))));
    ws.send(JSON.stringify({ batch: 'b1', events: [
      { id: 'ws-bad', type: 'play', device_id: 'roku-1', ts: T0, title_id: 't-1', position_ms: 'x' },
      { id: 'ws-good', type: 'play', device_id: 'roku-1', ts: T0, title_id: 't-1', position_ms: 3 },
    ] }));
    const a = await ack;
    ws.close();
    assert.equal(a.ack, 'b1');
    assert.equal(a.accepted, 1, JSON.stringify(a));
    assert.deepEqual(a.rejected, [
      { index: 0, error: 'schema play@2: field position_ms: expected int, got string' }]);
    await waitFor('ws-good in the sink', () => sinkEvents().has('ws-good'));
    const e = sinkEvents().get('ws-good');
    assert.equal(e.device_type, 'tv');
    assert.equal(e.country, 'NL');
    assert.equal(e.schema_version, 'play@2');
  });

  await step('sessions continue across a restart (state committed with the log)', async () => {
    const before = sinkEvents().get('good-6').session_id;
    await stopNode(node);
    node = await startReadyNode(binary, args);
    const res = await request(node, 'POST', '/v1/events', [
      { id: 'after-restart', type: 'play', device_id: 'tv-1', ts: T0 + 80 * MIN, title_id: 't-2',
        position_ms: 20 }]);
    assert.equal(res.status, 200, res.text);
    await waitFor('after-restart in the sink', () => sinkEvents().has('after-restart'));
    assert.equal(sinkEvents().get('after-restart').session_id, before, '20 minutes later');
  });
} finally {
  if (node) await stopNode(node);
  fs.rmSync(dataDir, { recursive: true, force: true });
}
