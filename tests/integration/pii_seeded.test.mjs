// Seeded PII end to end: a real node on conf/sluice.conf (its default routes, no PII settings:
// secure by default), 100,000 events carrying 10,000 values of every PII kind (Luhn-valid cards
// with spaces and dashes, e-mail addresses, phone numbers in E.164 and national formats, IPv4,
// IPv6) scattered through random string fields, nested maps and arrays. Afterwards no sink (the
// NDJSON files, the lake's Parquet files read by DuckDB, the dead letters) holds any of them
// unmasked. Then with pii = "hash": pseudonyms are HMAC-SHA256 of the normalized value, stable
// across two runs with one secret and different with another secret.
//
//   node tests/integration/pii_seeded.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readNdjson, request, requireNode, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { metric } from './lib/load.mjs';
import { prng } from './lib/scenario.mjs';

const { binary: sluiceBinary, sourceRoot } = testArgs(import.meta.url);

const { DuckDBInstance } = requireNode('@duckdb/node-api');

const EVENTS = 100_000;
const PER_KIND = 10_000;
const KINDS = ['card', 'email', 'phone', 'ipv4', 'ipv6'];
const BATCH = 1000;
const NOW = Date.UTC(2024, 10, 22, 10, 30);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-pii-test-'));
const baseConf = fs.readFileSync(path.join(sourceRoot, 'conf', 'sluice.conf'), 'utf8');

// -- generated PII ------------------------------------------------------------------------------

const rand = prng(20241122);
const int = (n) => Math.floor(rand() * n);
const digits = (n) => Array.from({ length: n }, () => int(10)).join('');

function luhnComplete(prefixAndBody) {
  // Appends the check digit that makes the number Luhn-valid.
  let sum = 0;
  for (let i = 0; i < prefixAndBody.length; ++i) {
    let d = Number(prefixAndBody[prefixAndBody.length - 1 - i]);
    if (i % 2 === 0) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return prefixAndBody + String((10 - (sum % 10)) % 10);
}

function card(i) {
  const brands = [['4', 16], ['51', 16], ['55', 16], ['2221', 16], ['34', 15], ['37', 15],
    ['6011', 16], ['4', 13], ['62', 19]];
  const [prefix, len] = brands[i % brands.length];
  const n = luhnComplete(prefix + digits(len - prefix.length - 1));
  const style = i % 3;
  if (style === 0) return n;
  const sep = style === 1 ? ' ' : '-';
  if (len === 15) return [n.slice(0, 4), n.slice(4, 10), n.slice(10)].join(sep);
  return n.match(/.{1,4}/g).join(sep);
}
function email(i) {
  const users = ['bob', 'alice.smith', 'j_doe', 'ops+alerts', 'Mary.O-Neil'];
  const hosts = ['example.com', 'mail.example.co.uk', 'corp-mail.example.org', 'x.io'];
  return `${users[i % users.length]}${i}@${hosts[int(hosts.length)]}`;
}
function phone(i) {
  const a = 2 + int(8), b = 2 + int(8);
  switch (i % 5) {
    case 0: return `+1${a}${digits(2)}${b}${digits(6)}`;
    case 1: return `+44 20 ${digits(4)} ${digits(4)}`;
    case 2: return `(${a}${digits(2)}) ${b}${digits(2)}-${digits(4)}`;
    case 3: return `${a}${digits(2)}-${b}${digits(2)}-${digits(4)}`;
    default: return `07${digits(3)} ${digits(6)}`;
  }
}
function ipv4(i) {
  return `${1 + int(223)}.${int(256)}.${int(256)}.${1 + int(254)}`;
}
function ipv6(i) {
  const h = () => int(0x10000).toString(16);
  return i % 2 === 0 ? `2001:db8:${h()}:${h()}::${h()}` : [h(), h(), h(), h(), h(), h(), h(), h()].join(':');
}
const makers = { card, email, phone, ipv4, ipv6 };

/// Where a value may sit in an event: a top-level string, a nested map, an array.
const FIELDS = ['note', 'comment', 'msg', 'contact', 'user_agent', 'meta.desc', 'meta.owner.info',
  'tags'];
const CONTEXTS = [(v) => v, (v) => `contact ${v} please`, (v) => `${v}, then`, (v) => `[${v}]`,
  (v) => `tel/mail: ${v}.`];

function place(e, field, text) {
  if (field === 'tags') { (e.tags ??= ['x']).push(text); return; }
  const parts = field.split('.');
  let obj = e;
  for (const p of parts.slice(0, -1)) obj = (obj[p] ??= { n: 1 });
  const leaf = parts[parts.length - 1];
  // A second value in one field is set off by punctuation: `+1 415 555 2671 4111...` would read
  // as one longer number, which is not a phone (see docs/routes.md).
  obj[leaf] = obj[leaf] ? `${obj[leaf]}; ${text}` : text;
}

/// 100,000 events; 10,000 values of every kind at random events and fields. Returns the events
/// and the seeded values by event id.
function makeEvents(prefix) {
  const events = [];
  for (let i = 0; i < EVENTS; ++i) {
    const type = i % 10 === 3 ? 'error' : i % 10 === 7 ? 'billing' : 'play';
    events.push({ id: `${prefix}-${i}`, type, device_id: `tv-${i % 50}`, profile_id: `p-${i % 97}`,
      ts: NOW + i, title_id: `t-${i % 500}`, position_ms: i * 1000, n: 1732233600000 + i,
      when: String(1732233600000 + i) });
  }
  const seeded = new Map(); // id -> [{kind, value}]
  const all = [];
  for (const kind of KINDS) {
    for (let k = 0; k < PER_KIND; ++k) {
      const e = events[int(EVENTS)];
      const value = makers[kind](k);
      place(e, FIELDS[int(FIELDS.length)], CONTEXTS[int(CONTEXTS.length)](value));
      if (!seeded.has(e.id)) seeded.set(e.id, []);
      seeded.get(e.id).push({ kind, value });
      all.push({ kind, value });
    }
  }
  return { events, seeded, all };
}

// -- node ---------------------------------------------------------------------------------------

/// conf/sluice.conf; `pii` set on every route when given.
function writeConf(name, pii) {
  let text = baseConf;
  if (pii) {
    assert.match(text, /^\[routes\._unmatched\]$/m, 'conf/sluice.conf has [routes._unmatched]');
    text = text.replace(/^(\[routes\.[^\]]+\])$/gm, `$1\npii = "${pii}"`);
  }
  const file = path.join(work, `${name}.conf`);
  fs.writeFileSync(file, text);
  return file;
}

async function runNode(name, events, { pii = null, secret = null } = {}) {
  const conf = writeConf(name, pii);
  const dataDir = path.join(work, name);
  const env = { ...process.env };
  delete env.SLUICE_PII_SECRET;
  if (secret) env.SLUICE_PII_SECRET = secret;
  const node = await startReadyNode(sluiceBinary, ['serve', `--config-file=${conf}`,
    '--gateway.port=0', `--sluice.data-dir=${dataDir}`], env);
  try {
    for (let i = 0; i < events.length; i += BATCH) {
      const batch = events.slice(i, i + BATCH);
      const r = await waitFor('a batch accepted', async () => {
        const res = await request(node, 'POST', '/v1/events', batch);
        return res.status === 200 ? res : null; // 503 under backpressure: retry
      }, 60000, 100);
      assert.equal(r.json.accepted, batch.length, r.text);
    }
    const files = ['events', 'errors', 'billing'].map((s) => path.join(dataDir, 'sinks', `${s}.ndjson`));
    const lines = () => files.reduce((n, f) => n + (fs.existsSync(f)
      ? fs.readFileSync(f, 'utf8').split('\n').length - 1 : 0), 0);
    await waitFor('every event in the file sinks', () => lines() >= events.length, 120000, 200);
    const metrics = (await request(node, 'GET', '/metrics')).text;
    return { node, dataDir, files, metrics };
  } finally {
    const exit = await stopNode(node, 'SIGTERM', 60000);
    assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}\n${tail(node.stderr)}`);
  }
}

/// Every output record as text, by event id: file sink lines, lake rows, dead letters.
async function outputs(run) {
  const byId = new Map();
  const add = (id, text) => byId.set(id, (byId.get(id) ?? '') + '\n' + text);
  for (const f of run.files)
    for (const line of fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n') : [])
      if (line) add(JSON.parse(line).id, line);
  const letters = readNdjson(path.join(run.dataDir, 'dead-letters', 'dead-letters.ndjson'));
  for (const l of letters) add(l.event?.id ?? l.id ?? 'dead-letter', JSON.stringify(l));
  const tableDir = path.join(run.dataDir, 'lake', 'events');
  const current = fs.readFileSync(path.join(tableDir, '_meta', 'current'), 'utf8').trim();
  const snap = JSON.parse(fs.readFileSync(path.join(tableDir, '_meta', current), 'utf8'));
  const list = snap.files.map((f) => `'${path.join(tableDir, f.path)}'`).join(', ');
  const db = await DuckDBInstance.create(':memory:');
  const duck = await db.connect();
  const rows = (await duck.runAndReadAll(`SELECT id, device_id, profile_id, title_id, attrs
    FROM read_parquet([${list}])`)).getRowObjectsJson();
  for (const r of rows) add(r.id, JSON.stringify(r));
  return { byId, lakeRows: rows.length, letters: letters.length };
}

function assertNoneUnmasked(out, seeded) {
  let checked = 0;
  for (const [id, values] of seeded) {
    const text = out.byId.get(id);
    assert.ok(text, `event ${id} reached the sinks`);
    for (const { kind, value } of values) {
      assert.ok(!text.includes(value), `${kind} ${value} of ${id} appears unmasked:\n${text}`);
      ++checked;
    }
  }
  return checked;
}

// -- the test -----------------------------------------------------------------------------------

try {
  const { events, seeded } = makeEvents('m');

  await step('100,000 events with 10,000 values of every PII kind go through the default config',
    async () => {
      const run = await runNode('mask', events);
      const out = await outputs(run);
      assert.equal(out.lakeRows, EVENTS, 'every event in the lake');
      const checked = assertNoneUnmasked(out, seeded);
      assert.equal(checked, PER_KIND * KINDS.length);
      // Masks, not removals: each kind's marker is there, and counted in /metrics.
      const all = [...out.byId.values()].join('\n');
      for (const kind of KINDS) {
        assert.ok(all.includes(`[masked:${kind}]`), `a [masked:${kind}] marker`);
        let total = 0;
        for (const route of ['errors', 'billing', '_unmatched'])
          for (const sink of ['lake-events'])
            total += metric(run.metrics, 'sluice_pii_detected_total', { route, kind, sink }) ?? 0;
        assert.ok(total >= PER_KIND, `sluice_pii_detected_total for ${kind} into the lake: ${total}`);
      }
      // Numbers stay numbers: the 13-digit epoch values (integer and string) are not cards.
      assert.ok(all.includes(`"n":${1732233600000 + 5}`), 'integer timestamps untouched');
      assert.ok(all.includes(`"when":"${1732233600000 + 5}"`), 'timestamp strings untouched');
    });

  // Hash mode: a smaller set is enough.
  const small = makeEvents('h');
  const few = small.events.slice(0, 5000);
  const fewSeeded = new Map([...small.seeded].filter(([id]) => Number(id.slice(2)) < 5000));
  const secretA = 'first-secret-0123456789abcdef';
  const secretB = 'second-secret-0123456789abcdef';
  // As sluice normalizes before hashing: digits (and a leading +) of cards and phones, lowercase
  // e-mail and IPv6 addresses.
  const normalize = (kind, v) => kind === 'card' || kind === 'phone'
    ? (v.startsWith('+') ? '+' : '') + v.replace(/[^0-9]/g, '')
    : kind === 'email' || kind === 'ipv6' ? v.toLowerCase() : v;
  const pseudonym = (secret, kind, v) => crypto.createHmac('sha256', secret)
    .update(normalize(kind, v)).digest('hex');

  let first;
  await step('with pii = "hash" each value becomes the HMAC-SHA256 of its normalized form', async () => {
    const out = await outputs(await runNode('hash-a', few, { pii: 'hash', secret: secretA }));
    assertNoneUnmasked(out, fewSeeded);
    for (const [id, values] of fewSeeded)
      for (const { kind, value } of values)
        assert.ok(out.byId.get(id).includes(pseudonym(secretA, kind, value)),
                  `${id}: pseudonym of ${kind} ${value}`);
    first = out;
  });

  await step('pseudonyms are stable across runs with the same secret, and differ with another',
    async () => {
      const again = await outputs(await runNode('hash-a2', few, { pii: 'hash', secret: secretA }));
      const other = await outputs(await runNode('hash-b', few, { pii: 'hash', secret: secretB }));
      for (const [id, values] of fewSeeded) {
        for (const { kind, value } of values) {
          const p = pseudonym(secretA, kind, value);
          assert.ok(again.byId.get(id).includes(p), `${id}: same pseudonym in the second run`);
          assert.ok(!other.byId.get(id).includes(p), `${id}: another secret, another pseudonym`);
          assert.ok(other.byId.get(id).includes(pseudonym(secretB, kind, value)));
        }
      }
      assert.ok(first);
    });

  await step('hashing without a secret refuses to start with a clear error', async () => {
    const conf = writeConf('nosecret', 'hash');
    const env = { ...process.env };
    delete env.SLUICE_PII_SECRET;
    const node = await import('node:child_process').then(({ spawnSync }) => spawnSync(sluiceBinary,
      ['serve', `--config-file=${conf}`, '--gateway.port=0',
        `--sluice.data-dir=${path.join(work, 'nosecret')}`], { env, encoding: 'utf8', timeout: 20000 }));
    assert.notEqual(node.status, 0);
    assert.match(node.stderr + node.stdout, /hashes fields or PII but no secret is configured: set pii\.secret or the environment variable SLUICE_PII_SECRET/);
  });
  fs.rmSync(work, { recursive: true, force: true });
} catch (e) {
  console.error(e);
  console.error(`work directory kept: ${work}`);
  process.exit(1);
}
