// Load for the backpressure tests (overload, sink outage, disk full): HTTP and WebSocket clients
// that send events as fast as the node takes them, record every acknowledged id, and check every
// refusal (503/429 with Retry-After and a JSON error body; WebSocket error frames apart, in
// `wsErrors`); an RSS sampler; /metrics parsing; a
// streaming reader of the ids in a file sink; a slow downstream for a file sink (a FIFO read at a
// limited rate).
//
//   const load = startLoad(node, { httpClients: 4, wsClients: 2 });
//   ... await load.stop();   // stops sending, waits for the acks of frames in flight
//   load.acked (Set of ids), load.stats, load.problems (protocol violations seen)

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { baseUrl, requireNode } from './harness.mjs';

const WebSocket = requireNode('ws');

/// Event time of the generated events: 2024-11-22T10:30:00Z (one lake partition).
const EVENT_TS = Date.UTC(2024, 10, 22, 10, 30);
/// Devices per client: events of one batch belong to one device, as an SDK sends them.
const DEVICES_PER_CLIENT = 8;
/// A refused HTTP client waits this long before it sends again: far below the Retry-After it is
/// given, so the offered load stays above what the node takes.
const REFUSED_PAUSE_MS = 20;
/// How long stop() waits for the acks of WebSocket frames still in flight.
const WS_DRAIN_TIMEOUT_MS = 20000;
/// Timeout of one HTTP request: a node that pushes back answers at once.
const HTTP_TIMEOUT_MS = 30000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// `n` events with ids `<prefix>-<seq + i>` of one device.
export function makeBatch(prefix, seq, n) {
  const device = `tv-${prefix}-${seq % DEVICES_PER_CLIENT}`;
  const events = [];
  for (let i = 0; i < n; ++i) {
    events.push({ id: `${prefix}-${seq + i}`, type: 'play', device_id: device, ts: EVENT_TS + seq + i,
      title_id: `t-${(seq + i) % 97}`, position_ms: (seq + i) * 10 });
  }
  return events;
}

/// Checks a refused HTTP reply; returns a problem string or null.
function checkRefusal(status, retryAfter, text) {
  if (!/^[1-9]\d*$/.test(retryAfter ?? '')) return `${status} without a valid Retry-After (${retryAfter})`;
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return `${status} with a non-JSON body: ${text.slice(0, 200)}`;
  }
  if (typeof body.error !== 'string' || body.error.length === 0) return `${status} without an error: ${text}`;
  return null;
}

/// Starts `httpClients` HTTP clients (one request at a time each) and `wsClients` WebSocket clients
/// (`wsInflight` frames in flight each), `batchEvents` events per request or frame, ids prefixed
/// with `prefix`, together offering at most `eventsPerS` (default: as fast as they can). They run
/// until `stop()`.
export function startLoad(node, { httpClients = 4, wsClients = 2, wsInflight = 16, batchEvents = 100,
  prefix = 'e', eventsPerS = Infinity } = {}) {
  const load = {
    acked: new Set(),
    problems: [],
    wsErrors: [], // the first few WebSocket error frames
    stats: { httpAccepted: 0, httpRefused: 0, httpRefusedByStatus: {}, httpRefusalReasons: {},
      wsAccepted: 0, wsErrorFrames: 0, wsFrames: 0, wsAbandonedFrames: 0, wsMaxAckGapMs: 0, startedAt: Date.now(),
      stoppedAt: 0 },
  };
  let running = true;
  // Pacing: each batch reserves its share of time; a client whose slot lies ahead waits for it.
  let nextSlot = Date.now();
  const pace = async () => {
    if (!Number.isFinite(eventsPerS)) return;
    const now = Date.now();
    nextSlot = Math.max(nextSlot, now) + (batchEvents * 1000) / eventsPerS;
    if (nextSlot - now > 1) await sleep(nextSlot - now);
  };
  const problem = (p) => {
    if (load.problems.length < 20) load.problems.push(p);
  };

  const httpClient = async (c) => {
    let seq = 0;
    while (running) {
      await pace();
      if (!running) break;
      const events = makeBatch(`${prefix}h${c}`, seq, batchEvents);
      seq += batchEvents;
      let res, text;
      try {
        res = await fetch(`${baseUrl(node)}/v1/events`, { method: 'POST', body: JSON.stringify(events),
          headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
        text = await res.text();
      } catch (e) {
        if (running) problem(`HTTP client ${c}: ${e.message}`);
        return;
      }
      if (res.status === 200) {
        const body = JSON.parse(text);
        if (body.accepted !== events.length || body.rejected.length !== 0) {
          problem(`HTTP 200 but not every event accepted: ${text}`);
        }
        for (const e of events) load.acked.add(e.id);
        load.stats.httpAccepted += events.length;
      } else if (res.status === 503 || res.status === 429) {
        load.stats.httpRefused++;
        load.stats.httpRefusedByStatus[res.status] = (load.stats.httpRefusedByStatus[res.status] ?? 0) + 1;
        const p = checkRefusal(res.status, res.headers.get('retry-after'), text);
        if (p) problem(p);
        else {
          const reason = JSON.parse(text).error.replace(/: .*/, '');
          load.stats.httpRefusalReasons[reason] = (load.stats.httpRefusalReasons[reason] ?? 0) + 1;
        }
        await sleep(REFUSED_PAUSE_MS);
      } else {
        problem(`HTTP ${res.status}: ${text.slice(0, 200)}`);
        return;
      }
    }
  };

  const wsClient = (c) => new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${node.port}/v1/stream`);
    const inflight = []; // { batch, ids } in send order (acks come back in order)
    let seq = 0;
    let lastAck = 0;
    const finish = () => {
      ws.terminate();
      resolve();
    };
    let filling = false;
    const fill = async () => {
      if (filling) return;
      filling = true;
      while (running && inflight.length < wsInflight) {
        await pace();
        if (!running || ws.readyState !== WebSocket.OPEN) break;
        const events = makeBatch(`${prefix}w${c}`, seq, batchEvents);
        const batch = `${prefix}w${c}-b${seq}`;
        seq += batchEvents;
        inflight.push({ batch, ids: events.map((e) => e.id) });
        ws.send(JSON.stringify({ batch, events }));
        load.stats.wsFrames++;
      }
      filling = false;
      if (!running && inflight.length === 0) finish();
    };
    ws.on('open', () => {
      lastAck = Date.now();
      fill();
    });
    ws.on('message', (data) => {
      const now = Date.now();
      if (running) load.stats.wsMaxAckGapMs = Math.max(load.stats.wsMaxAckGapMs, now - lastAck);
      lastAck = now;
      let ack;
      try {
        ack = JSON.parse(data.toString());
      } catch {
        problem(`WebSocket ${c}: non-JSON frame ${data.toString().slice(0, 200)}`);
        return;
      }
      const head = inflight.shift();
      if (!head || ack.ack !== head.batch) {
        problem(`WebSocket ${c}: ack ${JSON.stringify(ack).slice(0, 200)} for ${head?.batch}`);
        return finish();
      }
      if (ack.error !== undefined) {
        // A refusal, not a protocol violation: listed apart (the overload test wants none).
        load.stats.wsErrorFrames++;
        if (load.wsErrors.length < 5) load.wsErrors.push(JSON.stringify(ack));
      } else if (ack.accepted !== head.ids.length) {
        problem(`WebSocket ${c}: partial ack ${JSON.stringify(ack)}`);
      } else {
        for (const id of head.ids) load.acked.add(id);
        load.stats.wsAccepted += head.ids.length;
      }
      fill();
    });
    ws.on('error', (e) => {
      if (running) problem(`WebSocket ${c}: ${e.message}`);
      resolve();
    });
    ws.on('close', () => {
      if (running) problem(`WebSocket ${c} closed while the load ran`);
      resolve();
    });
    load.wsStoppers.push((abandon) => {
      if (abandon) {
        load.stats.wsAbandonedFrames += inflight.length;
        inflight.length = 0;
      }
      if (inflight.length === 0) finish();
    });
  });

  load.wsStoppers = [];
  const clients = [
    ...Array.from({ length: httpClients }, (_, c) => httpClient(c)),
    ...Array.from({ length: wsClients }, (_, c) => wsClient(c)),
  ];
  /// Stops sending; resolves once every client finished (WebSocket frames in flight acked). With
  /// `abandonAfterMs`, WebSocket frames still unacked then are given up (not acked: counted in
  /// stats.wsAbandonedFrames) instead of failing, for a node that legitimately stopped reading.
  load.stop = async ({ abandonAfterMs } = {}) => {
    running = false;
    load.stats.stoppedAt = Date.now();
    for (const s of load.wsStoppers) s(false);
    let timer, abandonTimer;
    if (abandonAfterMs !== undefined) {
      abandonTimer = setTimeout(() => load.wsStoppers.forEach((s) => s(true)), abandonAfterMs);
    }
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(
        `load clients did not finish within ${WS_DRAIN_TIMEOUT_MS} ms of stop`)), WS_DRAIN_TIMEOUT_MS);
    });
    try {
      await Promise.race([Promise.all(clients), timeout]);
    } finally {
      clearTimeout(timer);
      clearTimeout(abandonTimer);
    }
  };
  return load;
}

/// The value of the Prometheus sample `name{labels}` in `text` (labels: {k: v}, matched exactly
/// and in any order), or undefined.
export function metric(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(',').filter((s) => s.length).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

/// Samples VmRSS and RssAnon (bytes) of process `pid` every `intervalMs`; `stop()` ends it.
export function sampleRss(pid, intervalMs = 500) {
  const s = { samples: 0, maxRss: 0, maxAnon: 0 };
  const read = () => {
    let text;
    try {
      text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      return; // exited
    }
    const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    s.samples++;
    s.maxRss = Math.max(s.maxRss, kb('VmRSS'));
    s.maxAnon = Math.max(s.maxAnon, kb('RssAnon'));
  };
  read();
  const timer = setInterval(read, intervalMs);
  s.stop = () => {
    clearInterval(timer);
    read();
  };
  return s;
}

/// Counts how often each id occurs in a file sink's NDJSON file: Map id → count.
export async function sinkIdCounts(file) {
  const counts = new Map();
  if (!fs.existsSync(file)) return counts;
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.length) continue;
    const id = JSON.parse(line).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/// Acked ids missing from `counts` (at most `limit` of them listed) and how many there are.
export function missingIds(acked, counts, limit = 10) {
  const missing = [];
  let n = 0;
  for (const id of acked) {
    if (!counts.has(id)) {
      if (missing.length < limit) missing.push(id);
      ++n;
    }
  }
  return { n, some: missing };
}

/// A file sink's downstream that takes `bytesPerS` at most (0: nothing, the sink blocks): `file`
/// becomes a FIFO (unless it is one) whose reader (this process) reads at that rate, so the sink's
/// writes block once the pipe is full. Open it before the node starts (the sink's open waits for a
/// reader); one reader per node run (the node's exit ends it). `unthrottle()` lifts the limit;
/// `counts` maps each id read to how often (pass the previous run's to add to it); `ended`
/// resolves when the writer closed the FIFO.
export function slowFifo(file, bytesPerS, counts = new Map()) {
  if (!fs.existsSync(file) || !fs.statSync(file).isFIFO()) {
    const r = spawnSync('mkfifo', [file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mkfifo ${file}: ${r.stderr || r.error?.message}`);
  }
  const TICK_MS = 100;
  const s = { counts, bytes: 0, limit: bytesPerS };
  const stream = fs.createReadStream(file, { highWaterMark: 16 * 1024 });
  let budget = (s.limit * TICK_MS) / 1000;
  let partial = '';
  const timer = setInterval(() => {
    budget = (s.limit * TICK_MS) / 1000;
    if (stream.isPaused() && budget > 0) stream.resume();
  }, TICK_MS);
  stream.setEncoding('utf8').on('data', (chunk) => {
    s.bytes += chunk.length;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (!line.length) continue;
      const id = JSON.parse(line).id;
      s.counts.set(id, (s.counts.get(id) ?? 0) + 1);
    }
    budget -= chunk.length;
    if (budget <= 0 && Number.isFinite(s.limit)) stream.pause();
  });
  s.ended = new Promise((resolve, reject) => {
    stream.on('end', () => {
      clearInterval(timer);
      if (partial.length) reject(new Error(`torn last line in ${file}: ${partial.slice(0, 100)}`));
      else resolve();
    });
    stream.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
  });
  s.ended.catch(() => {}); // a torn line after a SIGKILL matters only to whoever awaits it
  s.unthrottle = () => {
    s.limit = Infinity;
    stream.resume();
  };
  return s;
}
