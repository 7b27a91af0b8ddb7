// The load of one crash trial: a seeded event generator and the clients that stream its events to
// a node over HTTP (`POST /v1/events`, JSON arrays) and WebSocket (`/v1/stream`, JSON text and
// msgpack binary frames, many in flight), recording which ids the node acknowledged.
//
// Every profile belongs to exactly one client, and that client sends its events with a strictly
// increasing `ts` in order (HTTP: one request at a time; WebSocket: frames are committed in frame
// order). So a profile's state is a function of the set of its events the log kept, whatever
// subset a kill -9 leaves: see recomputeProfiles in checks.mjs.

import { requireNode } from '../../integration/lib/harness.mjs';

const WebSocket = requireNode('ws');

/// Event time of the first event of every profile: 2024-11-22T10:00:00Z (the lake partitions by ts).
export const BASE_TS = Date.UTC(2024, 10, 22, 10);
/// Event time between two consecutive events of one profile (unique, increasing ts per profile).
const TS_STEP_MS = 997;
/// Playback event types that move profile state (actors/profile_model.cpp).
const PLAYBACK = ['play', 'heartbeat', 'pause', 'stop'];
/// Batch sizes (events per request or frame), inclusive.
const MIN_BATCH = 5;
const MAX_BATCH = 60;
/// WebSocket frames awaiting their ack per connection (below gateway.max-inflight-frames = 64, so
/// the gateway never stops reading because of this client alone).
const WS_WINDOW = 32;
/// How long a client waits after a 503/429 before its next batch (the node asked it to back off).
const BACKOFF_MS = 100;

/// mulberry32: a small seeded PRNG; returns a function yielding floats in [0, 1).
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/// Duration of title number `t` (the same on every event of the title).
export const titleDuration = (t) => 60000 + 7919 * t;

/// Generates the events of one client: its own profiles (`profiles` of them, `titles` titles
/// each), plus errors, billing and clicks. `next(n)` returns the next n events.
export class EventSource {
  constructor({ trial, client, rand, profiles, titles }) {
    this.prefix = `t${trial}-c${client}`;
    this.rand = rand;
    this.titles = titles;
    this.seq = 0;
    this.profiles = [];
    for (let j = 0; j < profiles; ++j)
      this.profiles.push({ id: `p-${this.prefix}-${j}`, ts: BASE_TS + j * 13 });
  }

  pick(n) {
    return Math.floor(this.rand() * n);
  }

  one() {
    const id = `${this.prefix}-${this.seq++}`;
    const device_id = `dev-${this.prefix}-${this.pick(4)}`;
    const r = this.rand();
    if (r < 0.7) {
      const p = this.profiles[this.pick(this.profiles.length)];
      p.ts += TS_STEP_MS;
      const t = this.pick(this.titles);
      const duration_ms = titleDuration(t);
      // About one in five positions completes the title (>= any completion ratio up to 1).
      const position_ms = this.rand() < 0.2 ? duration_ms : this.pick(duration_ms);
      return { id, type: PLAYBACK[this.pick(PLAYBACK.length)], device_id, profile_id: p.id,
               ts: p.ts, title_id: `title-${t}`, position_ms, duration_ms };
    }
    const ts = BASE_TS + this.seq * 10;
    if (r < 0.8) return { id, type: 'error', device_id, ts, code: `E${this.pick(100)}` };
    if (r < 0.9) {
      const p = this.profiles[this.pick(this.profiles.length)];
      // Billing carries a profile but no playback: it must not change continue-watching.
      return { id, type: 'billing', device_id, profile_id: p.id, ts, amount_cents: this.pick(5000) };
    }
    return { id, type: 'click', device_id, ts, target: `row-${this.pick(10)}` };
  }

  next(n) {
    const out = [];
    for (let i = 0; i < n; ++i) out.push(this.one());
    return out;
  }

  batchSize() {
    return MIN_BATCH + this.pick(MAX_BATCH - MIN_BATCH + 1);
  }
}

/// Minimal msgpack encoder (maps, arrays, strings, safe integers, booleans, nil) for the binary
/// frames; no msgpack package is installed in tests/node.
export function msgpack(value) {
  const out = [];
  const enc = (v) => {
    if (v === null || v === undefined) return out.push(0xc0);
    if (v === true) return out.push(0xc3);
    if (v === false) return out.push(0xc2);
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`msgpack: not a safe integer: ${v}`);
      if (v >= 0 && v < 128) return out.push(v);
      const b = Buffer.alloc(9);
      b[0] = 0xd3;
      b.writeBigInt64BE(BigInt(v), 1);
      return out.push(...b);
    }
    if (typeof v === 'string') {
      const s = Buffer.from(v, 'utf8');
      if (s.length < 32) out.push(0xa0 | s.length);
      else if (s.length < 256) out.push(0xd9, s.length);
      else out.push(0xda, s.length >> 8, s.length & 0xff);
      return out.push(...s);
    }
    if (Array.isArray(v)) {
      if (v.length < 16) out.push(0x90 | v.length);
      else out.push(0xdc, v.length >> 8, v.length & 0xff);
      return v.forEach(enc);
    }
    const keys = Object.keys(v);
    if (keys.length < 16) out.push(0x80 | keys.length);
    else out.push(0xde, keys.length >> 8, keys.length & 0xff);
    for (const k of keys) {
      enc(k);
      enc(v[k]);
    }
  };
  enc(value);
  return Buffer.from(out);
}

/// What the clients of one trial saw. `sent`: id → event; `acked`: ids acknowledged; `problems`:
/// contract violations (unexpected rejections, out-of-order acks, errors before the kill).
export class Ledger {
  constructor() {
    this.sent = new Map();
    this.acked = new Set();
    this.refused = 0; // events in batches answered 503/429 (backpressure): not acknowledged
    this.batches = 0;
    this.problems = [];
  }

  send(events) {
    for (const e of events) this.sent.set(e.id, e);
    ++this.batches;
  }

  /// Records a commit reply `{accepted, rejected:[{index}]}` for `events`.
  ack(events, reply, where) {
    const rejected = new Set((reply.rejected ?? []).map((r) => r.index));
    if (rejected.size) this.problems.push(`${where}: valid events rejected: ${JSON.stringify(reply.rejected)}`);
    if (reply.accepted !== events.length - rejected.size)
      this.problems.push(`${where}: accepted ${reply.accepted} of ${events.length} (${rejected.size} rejected)`);
    events.forEach((e, i) => { if (!rejected.has(i)) this.acked.add(e.id); });
  }
}

/// An HTTP client: one `POST /v1/events` (JSON array) at a time until `state.killed`.
export async function runHttpClient(port, source, ledger, state) {
  const url = `http://127.0.0.1:${port}/v1/events`;
  let n = 0;
  while (!state.killed) {
    const events = source.next(source.batchSize());
    ledger.send(events);
    const where = `http ${source.prefix} request ${++n}`;
    let res, text;
    try {
      res = await fetch(url, { method: 'POST', body: JSON.stringify(events),
                               headers: { 'content-type': 'application/json' } });
      text = await res.text();
    } catch (e) {
      if (!state.killed) ledger.problems.push(`${where}: ${e.cause?.message ?? e.message} before the kill`);
      return;
    }
    if (res.status === 200) {
      // A reply that arrived is an ack even if the kill came while we were reading it.
      ledger.ack(events, JSON.parse(text), where);
    } else if (res.status === 503 || res.status === 429) {
      ledger.refused += events.length;
      await new Promise((r) => setTimeout(r, BACKOFF_MS));
    } else {
      ledger.problems.push(`${where}: HTTP ${res.status} ${text}`);
      return;
    }
  }
}

/// A WebSocket client: frames alternate JSON text / msgpack binary at random, each
/// `{"events":[...],"batch":"<id>"}`, up to WS_WINDOW unacknowledged; acks must come in frame
/// order. Runs until `state.killed` (the socket then breaks).
export function runWsClient(port, source, ledger, state) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`);
    const inflight = []; // [{ batch, events }] in send order
    let frames = 0;
    let done = false;
    const finish = (problem) => {
      if (done) return;
      done = true;
      if (problem && !state.killed) ledger.problems.push(`ws ${source.prefix}: ${problem} before the kill`);
      try { ws.terminate(); } catch {}
      resolve();
    };
    const fill = () => {
      while (!state.killed && !done && inflight.length < WS_WINDOW) {
        const events = source.next(source.batchSize());
        const batch = `${source.prefix}-f${++frames}`;
        ledger.send(events);
        inflight.push({ batch, events });
        const body = { events, batch };
        if (source.rand() < 0.5) ws.send(JSON.stringify(body));
        else ws.send(msgpack(body), { binary: true });
      }
      if (state.killed) finish();
    };
    ws.on('open', fill);
    ws.on('message', (data) => {
      let m;
      try {
        m = JSON.parse(data.toString('utf8'));
      } catch {
        return finish(`unparsable frame ${data.toString('utf8').slice(0, 200)}`);
      }
      const head = inflight.shift();
      if (!head) return finish(`frame with nothing in flight: ${JSON.stringify(m)}`);
      const where = `ws ${source.prefix} frame ${head.batch}`;
      if (m.ack === undefined) {
        // An error frame: the message was undecodable, which our frames never are.
        ledger.problems.push(`${where}: error frame ${JSON.stringify(m)}`);
        return finish();
      }
      if (String(m.ack) !== head.batch) {
        ledger.problems.push(`${where}: ack ${JSON.stringify(m.ack)} out of frame order`);
        return finish();
      }
      if (m.error !== undefined) ledger.refused += head.events.length; // failed commit, retry_after
      else ledger.ack(head.events, m, where);
      fill();
    });
    ws.on('error', (e) => finish(e.message));
    ws.on('close', () => finish('socket closed'));
    state.onKill.push(() => { if (!done && inflight.length === 0) finish(); });
  });
}
