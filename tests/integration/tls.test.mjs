// TLS through a real node: with gateway.tls-cert / tls-key set (a self-signed P-256 certificate made
// here with openssl), HTTPS POST /v1/events and WSS /v1/stream (JSON and msgpack frames) round-trip
// to the file sink, WSS /v1/admin/live pushes its snapshot; a client that does not trust the certificate fails; a plain HTTP request to the
// TLS port is not served and counts in sluice_gateway_tls_handshake_failures_total; unreadable or
// mismatched certificate and key paths fail start-up naming the option.
//
//   node tests/integration/tls.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, requireNode, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);
const WebSocket = requireNode('ws');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-tls-it-'));
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');
const otherKeyFile = path.join(dir, 'other-key.pem');
const confFile = path.join(dir, 'tls.conf');
const eventsPath = path.join(dir, 'sinks', 'events.ndjson');

function openssl(...args) {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw new Error(`openssl is needed for this test: ${r.error.message}`);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

function writeConf(cert, key) {
  fs.writeFileSync(confFile, `
[sluice]
node = "tls-node"
data-dir = "${dir}"

[gateway]
port = 0
tls-cert = "${cert}"
tls-key = "${key}"

[auth]
anonymous = ["ingest", "read"]

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`);
}

// Minimal msgpack encoder: maps, arrays, strings, small non-negative and 64-bit integers.
function msgpack(value) {
  const out = [];
  const enc = (v) => {
    if (typeof v === 'number') {
      if (v >= 0 && v < 128) return out.push(v);
      const b = Buffer.alloc(9);
      b[0] = 0xd3;
      b.writeBigInt64BE(BigInt(v), 1);
      return out.push(...b);
    }
    if (typeof v === 'string') {
      const s = Buffer.from(v, 'utf8');
      assert.ok(s.length < 32);
      return out.push(0xa0 | s.length, ...s);
    }
    if (Array.isArray(v)) {
      assert.ok(v.length < 16);
      out.push(0x90 | v.length);
      return v.forEach(enc);
    }
    const keys = Object.keys(v);
    assert.ok(keys.length < 16);
    out.push(0x80 | keys.length);
    for (const k of keys) {
      enc(k);
      enc(v[k]);
    }
  };
  enc(value);
  return Buffer.from(out);
}

let seq = 0;
const ev = (prefix) => ({ id: `${prefix}-${++seq}`, type: 'view', device_id: `dev-${seq % 3}`,
                          ts: 1700000000000 + seq });

function handshakeFailures(metricsText) {
  const m = /^sluice_gateway_tls_handshake_failures_total(?:\{\})? (\d+)/m.exec(metricsText);
  assert.ok(m, 'sluice_gateway_tls_handshake_failures_total in /metrics');
  return Number(m[1]);
}

/// Opens a WSS socket trusting `ca`; resolves once open, with `next()` for the next message.
function openWss(port, ca) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/v1/stream`, { ca });
  const queue = [];
  let waiter = null;
  ws.on('message', (data) => {
    queue.push(JSON.parse(data.toString('utf8')));
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(queue.shift());
    }
  });
  const next = (timeoutMs = 10000) => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)),
                             timeoutMs);
    waiter = (m) => { clearTimeout(timer); resolve(m); };
  });
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, opened, next };
}

async function main() {
  await step('generate a self-signed certificate for 127.0.0.1', async () => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
            '-keyout', keyFile, '-out', certFile);
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
            '-out', otherKeyFile);
  });
  const ca = fs.readFileSync(certFile);

  await step('unreadable or mismatched certificate and key fail start-up naming the option',
    async () => {
      const check = () => spawnSync(binary, ['check', `--config-file=${confFile}`],
                                    { encoding: 'utf8', timeout: 30000 });
      writeConf(path.join(dir, 'missing.pem'), keyFile);
      let r = check();
      assert.notEqual(r.status, 0, 'a missing certificate file was accepted');
      assert.match(r.stderr, /gateway\.tls-cert: cannot read '.*missing\.pem'/, r.stderr);
      writeConf(certFile, confFile); // not a PEM key
      r = check();
      assert.notEqual(r.status, 0, 'a key file that is no key was accepted');
      assert.match(r.stderr, /gateway\.tls-key: .* is not an unencrypted PEM private key/, r.stderr);
      writeConf(certFile, otherKeyFile);
      r = check();
      assert.notEqual(r.status, 0, 'a key of another certificate was accepted');
      assert.match(r.stderr, /gateway\.tls-key/, r.stderr);
      writeConf(certFile, keyFile);
      r = check();
      assert.equal(r.status, 0, `the good pair was refused: ${r.stderr}`);
    });

  writeConf(certFile, keyFile);
  const node = await startReadyNode(binary, ['serve', `--config-file=${confFile}`]);
  node.tls = { ca };
  try {
    const expected = new Set();

    await step('HTTPS POST /v1/events is acked and its events reach the file sink', async () => {
      const events = [ev('https'), ev('https'), ev('https')];
      const r = await request(node, 'POST', '/v1/events', { events, batch: 'h1' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.accepted, 3, r.text);
      for (const e of events) expected.add(e.id);
    });

    await step('WSS /v1/stream acks a JSON frame and a msgpack frame', async () => {
      const s = openWss(node.port, ca);
      await s.opened;
      const json = [ev('wss-json'), ev('wss-json')];
      s.ws.send(JSON.stringify({ events: json, batch: 'j1' }));
      assert.deepEqual(await s.next(), { ack: 'j1', accepted: 2, rejected: [] });
      const mp = [ev('wss-mp'), ev('wss-mp'), ev('wss-mp')];
      s.ws.send(msgpack({ events: mp, batch: 'm1' }), { binary: true });
      assert.deepEqual(await s.next(), { ack: 'm1', accepted: 3, rejected: [] });
      s.ws.close();
      for (const e of [...json, ...mp]) expected.add(e.id);
    });

    await step('WSS /v1/admin/live pushes the console snapshot', async () => {
      const ws = new WebSocket(`wss://127.0.0.1:${node.port}/v1/admin/live`, { ca });
      const frame = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no live frame within 10 s')), 10000);
        ws.once('message', (data, isBinary) => {
          clearTimeout(timer);
          resolve({ data: data.toString('utf8'), isBinary });
        });
        ws.once('error', reject);
      });
      ws.close();
      assert.equal(frame.isBinary, false);
      assert.equal(typeof JSON.parse(frame.data), 'object', frame.data);
    });

    await step('every acked event is in the file sink', async () => {
      await waitFor('8 events in the sink', () => {
        const got = new Set(readNdjson(eventsPath).map((e) => e.id));
        return [...expected].every((id) => got.has(id));
      });
    });

    const failuresNow = async () => handshakeFailures((await request(node, 'GET', '/metrics')).text);

    await step('a client that does not trust the certificate fails its handshake', async () => {
      const before = await failuresNow();
      await assert.rejects(
        () => new Promise((resolve, reject) => {
          const req = https.get(`https://127.0.0.1:${node.port}/healthz`, resolve);
          req.on('error', reject);
        }),
        (e) => /self[- ]signed|unable to verify|SELF_SIGNED/i.test(`${e.code} ${e.message}`));
      await assert.rejects(() => new Promise((resolve, reject) => {
        const ws = new WebSocket(`wss://127.0.0.1:${node.port}/v1/stream`);
        ws.once('open', resolve);
        ws.once('error', reject);
      }), /self[- ]signed/i);
      await waitFor('2 more handshake failures', async () => (await failuresNow()) >= before + 2);
    });

    await step('plain HTTP to the TLS port is not served and counts as a handshake failure',
      async () => {
        const before = await failuresNow();
        await assert.rejects(
          () => fetch(`http://127.0.0.1:${node.port}/v1/events`, {
            method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ events: [ev('plain')] }), signal: AbortSignal.timeout(10000),
          }),
          (e) => e.name !== 'TimeoutError' && e.name !== 'AbortError');
        await waitFor('one more handshake failure', async () => (await failuresNow()) >= before + 1);
        assert.ok(!readNdjson(eventsPath).some((e) => e.id.startsWith('plain')));
      });
  } finally {
    const exit = await stopNode(node);
    assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${node.stderr}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
