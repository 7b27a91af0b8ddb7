// Rate limits and the bootstrap admin token on a real node: a batch over its token's bucket is a
// 429 with Retry-After (nothing of it stored); events over their device's bucket are rejected by
// index while the other devices' events of the same batch are acknowledged and reach the sink; a
// batch wholly over its device's bucket is a 429; every refusal is counted in /metrics. A node
// without tokens prints an admin token once and keeps only its hash.
//
//   node tests/integration/access_limits.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-limits-it-'));
const confFile = path.join(dataDir, 'limits.conf');
const sinkFile = path.join(dataDir, 'sinks', 'events.ndjson');
const SLOW_TOKEN = 'tok-slow-fleet';
// The token's own limit: 1 event/s with a burst of 10 (refilling 10 takes 10 s: the test's two
// requests come well within it).
const hashed = spawnSync(binary, ['token', 'hash', '--name=slow', '--scopes=ingest', '--iterations=1000'],
                         { input: `${SLOW_TOKEN}\n`, encoding: 'utf8' });
assert.equal(hashed.status, 0, hashed.stderr);
const config = (dir) => `
[sluice]
node = "limits-node"
data-dir = "${dir}"

[gateway]
port = 0

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`;
fs.writeFileSync(confFile, `${config(dataDir)}
${hashed.stdout}events-per-s = 1
burst = 10
`);

const ev = (id, device) => ({ id, type: 'play', device_id: device, ts: 1732233600000 });
async function metric(node, name, labels) {
  const res = await request(node, 'GET', '/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

let node;
try {
  await step('a node with anonymous ingest, a token limited to 1 event/s and devices to 1 event/s (burst 5)', async () => {
    node = await startReadyNode(binary, [
      'serve', `--config-file=${confFile}`, '--auth.anonymous=["ingest","read"]',
      '--limits.device-events-per-s=1', '--limits.device-burst=5']);
  });

  await step('a batch over its token\'s bucket is a 429 with Retry-After, nothing of it stored', async () => {
    const auth = { authorization: `Bearer ${SLOW_TOKEN}` };
    const first = Array.from({ length: 10 }, (_, i) => ev(`tok-a-${i}`, `tok-dev-${i}`));
    const ok = await request(node, 'POST', '/v1/events', first, 'application/json', auth);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.accepted, 10);
    const second = Array.from({ length: 10 }, (_, i) => ev(`tok-b-${i}`, `tok-dev-${i}`));
    const refused = await request(node, 'POST', '/v1/events', second, 'application/json', auth);
    assert.equal(refused.status, 429, refused.text);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, refused.headers.get('retry-after'));
    assert.equal(refused.json.kind, 'token');
    assert.equal(refused.json.principal, 'slow');
    assert.match(refused.json.error, /rate limited: token 'slow' is over 1 events\/s/);
    assert.equal(await metric(node, 'sluice_rate_limited_total', '{kind="token"}'), 10);
  });

  await step('events over their device\'s bucket are rejected by index, the other devices\' go through', async () => {
    // hot: 8 events (5 pass: its burst), three cold devices with one each, interleaved
    const batch = [];
    let hot = 0;
    for (let i = 0; i < 11; i++) {
      if (i % 3 === 2) batch.push(ev(`cold-${i}`, `cold-${i}`));
      else batch.push(ev(`hot-${hot++}`, 'hot'));
    }
    assert.equal(hot, 8);
    const res = await request(node, 'POST', '/v1/events', batch);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, 8); // 5 hot + 3 cold
    const hotIndices = batch.map((e, i) => (e.device_id === 'hot' ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(res.json.rejected.map((r) => r.index), hotIndices.slice(5));
    for (const r of res.json.rejected) assert.equal(r.error, "rate limited: device 'hot' over 1 events/s");
    const expected = new Set(batch.filter((e, i) => !hotIndices.slice(5).includes(i)).map((e) => e.id));
    await waitFor('the accepted events in the sink', () => {
      const ids = new Set(readNdjson(sinkFile).map((e) => e.id));
      return [...expected].every((id) => ids.has(id));
    });
    const ids = new Set(readNdjson(sinkFile).map((e) => e.id));
    for (const i of hotIndices.slice(5)) assert.ok(!ids.has(batch[i].id), `${batch[i].id} was stored`);
    assert.ok(!ids.has('tok-b-0'), 'an event of the refused batch was stored');
  });

  await step('a batch wholly over its device\'s bucket is a 429 naming every event', async () => {
    const res = await request(node, 'POST', '/v1/events', [ev('hot-x', 'hot'), ev('hot-y', 'hot')]);
    assert.equal(res.status, 429, res.text);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.equal(res.json.kind, 'device');
    assert.deepEqual(res.json.rejected.map((r) => r.index), [0, 1]);
    assert.equal(await metric(node, 'sluice_rate_limited_total', '{kind="device"}'), 3 + 2);
  });

  await step('SIGTERM stops the node', async () => {
    assert.equal((await stopNode(node)).code, 0);
  });

  const bootDir = path.join(dataDir, 'boot');
  const bootConf = path.join(dataDir, 'boot.conf');
  fs.writeFileSync(bootConf, config(bootDir));
  let adminToken;
  await step('a node without tokens prints an admin token once and keeps only its hash', async () => {
    node = await startReadyNode(binary, ['serve', `--config-file=${bootConf}`, '--auth.anonymous=[]']);
    const m = /admin token \(shown once\): (\S+)/.exec(node.stderr);
    assert.ok(m, node.stderr);
    adminToken = m[1];
    const stored = fs.readFileSync(path.join(bootDir, 'admin-token.hash'), 'utf8');
    assert.match(stored, /^pbkdf2-sha256\$600000\$/);
    assert.ok(!stored.includes(adminToken));
    assert.equal((fs.statSync(path.join(bootDir, 'admin-token.hash')).mode & 0o777), 0o600);
    assert.equal((await request(node, 'GET', '/metrics')).status, 401);
    assert.equal((await request(node, 'POST', '/v1/events', ev('b1', 'd'))).status, 401);
    const ok = await request(node, 'GET', '/v1/admin/routes', undefined, undefined,
                             { authorization: `Bearer ${adminToken}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await stopNode(node)).code, 0);
  });

  await step('after a restart the token is not shown again and still works', async () => {
    node = await startReadyNode(binary, ['serve', `--config-file=${bootConf}`, '--auth.anonymous=[]']);
    assert.ok(!node.stderr.includes('shown once'), node.stderr);
    const ok = await request(node, 'POST', '/v1/events', ev('b2', 'd'), 'application/json',
                             { authorization: `Bearer ${adminToken}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await stopNode(node)).code, 0);
  });
} finally {
  if (node && !node.exited) await stopNode(node, 'SIGKILL').catch(() => {});
}
fs.rmSync(dataDir, { recursive: true, force: true });
