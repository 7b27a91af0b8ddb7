// A seeded viewing scenario for the aggregate and profile endpoints of issue 6, and an independent
// reference computation of every answer (docs/aggregates.md, docs/profiles.md).
//
// The generator simulates ~2,000 profiles watching the titles of conf/titles.csv over six hours
// of event time that cross a UTC midnight: sessions of play → heartbeats → pause/stop, resumes,
// completions, seeks, missing stops. Events arrive out of order (a small network delay), some
// very late (beyond the trending lateness and, for some, beyond the profiles' reorder horizon),
// some twice (the same id resent, within a batch and as whole batches), plus noise the
// aggregates ignore (clicks, unknown titles, events without a profile). The send order is fixed
// by the seed: the reference replays exactly that order.

import fs from 'node:fs';
import assert from 'node:assert/strict';
import { request, requireNode, waitFor } from './harness.mjs';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/// mulberry32: a small seeded PRNG (deterministic across runs and machines).
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

/// `1h52m`, `45m`, `90s`, `1500` (seconds) → ms.
export function durationMs(text) {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') throw new Error(`bad duration ${text}`);
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

/// Reads the catalog CSV with DuckDB's CSV reader (not the node's libcsv): id → {id, name,
/// genres, duration_ms}.
export async function loadCatalog(file) {
  const { DuckDBInstance } = requireNode('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const path = file.replaceAll("'", "''");
  const rows = (await con.runAndReadAll(
    `SELECT id, name, genres, duration FROM read_csv('${path}', header = true, all_varchar = true,
     quote = '"', escape = '"')`)).getRowObjectsJson();
  const titles = new Map();
  for (const r of rows) {
    const genres = [...new Set((r.genres ?? '').split('|').map((g) => g.trim()).filter((g) => g))];
    titles.set(r.id, { id: r.id, name: r.name, genres, duration_ms: durationMs(r.duration) });
  }
  if (titles.size === 0) throw new Error(`no titles in ${file}`);
  return titles;
}

/// The scenario: `batches` in send order (arrays of events; resent batches are copies with the
/// same ids), and `events` (all of them, flattened in send order).
export function generateScenario(titles, {
  seed = 6, profiles = 2000, minEvents = 100_000, batchSize = 250,
  start = Date.UTC(2026, 10, 21, 21, 0), spanMs = 6 * HOUR,
} = {}) {
  const rnd = prng(seed);
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  // Popularity: a seeded permutation of the titles with Zipf-like weights (so rankings have a
  // head and ties further down).
  const ids = [...titles.keys()];
  for (let i = ids.length - 1; i > 0; --i) {
    const j = Math.floor(rnd() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const weights = ids.map((_, i) => 1 / Math.pow(i + 1, 0.9));
  const total = weights.reduce((a, b) => a + b, 0);
  const pickTitle = () => {
    let x = rnd() * total;
    for (let i = 0; i < ids.length; ++i) if ((x -= weights[i]) <= 0) return ids[i];
    return ids[ids.length - 1];
  };
  let n = 0;
  const events = [];
  const add = (e) => { events.push({ id: `ev-${seed}-${n++}`, ...e }); };
  const session = (p) => {
    const device = `d-${p}${rnd() < 0.1 ? '-tablet' : ''}`;
    const profile = `p-${p}`;
    const title = pickTitle();
    const dur = titles.get(title).duration_ms;
    let ts = start + Math.floor(rnd() * spanMs);
    const r = rnd();
    let pos = r < 0.45 ? 0 : r < 0.75 ? Math.floor(dur * (0.1 + 0.7 * rnd()))
                                      : Math.floor(dur * (0.80 + 0.14 * rnd()));
    const lengthMs = Math.floor((5 + 55 * rnd()) * MINUTE);
    const beat = 30_000 + Math.floor(rnd() * 4) * 10_000; // 30–60 s heartbeats
    const end = ts + lengthMs;
    const base = { device_id: device, profile_id: profile, title_id: title };
    add({ ...base, type: 'play', ts, position_ms: pos });
    const missingStop = rnd() < 0.1;
    for (;;) {
      let step = beat;
      if (rnd() < 0.04) step = beat + 2 * MINUTE; // a stall: a gap in heartbeats
      ts += step;
      if (ts > end) break;
      pos += step;
      if (rnd() < 0.03) pos = Math.max(0, pos + Math.floor((rnd() - 0.3) * 20 * MINUTE)); // seek
      if (pos >= dur) { pos = dur; break; }
      add({ ...base, type: 'heartbeat', ts, position_ms: pos });
    }
    if (!missingStop || pos >= dur)
      add({ ...base, type: pos >= dur ? 'stop' : pick(['pause', 'stop']), ts, position_ms: pos });
    if (rnd() < 0.05) // a click on a title: not a playback event
      add({ device_id: device, profile_id: profile, type: 'click', ts: ts + 1000, title_id: pick(ids) });
  };
  for (let round = 0; n < minEvents; ++round)
    for (let p = 0; p < profiles && (round === 0 || n < minEvents); ++p) session(p);
  // Noise the aggregates ignore: unknown titles, events without a profile.
  for (let i = 0; i < 300; ++i) {
    const ts = start + Math.floor(rnd() * spanMs);
    add({ device_id: `d-${i}`, profile_id: `p-${i}`, type: 'heartbeat', ts,
          title_id: `t-unknown-${i % 7}`, position_ms: 1000 });
    add({ device_id: `d-${i}`, type: 'error', ts, code: 'E42' });
  }
  // Arrival: event time plus a delay; most within a minute (out of order, on time), some a few
  // minutes (near the watermark), some 8–45 minutes late.
  for (const e of events) {
    const r = rnd();
    const delay = r < 0.94 ? rnd() * MINUTE : r < 0.97 ? (2 + 4 * rnd()) * MINUTE
                                                       : (8 + 37 * rnd()) * MINUTE;
    e.arrival = e.ts + Math.floor(delay);
  }
  events.sort((a, b) => a.arrival - b.arrival || (a.id < b.id ? -1 : 1));
  const batches = [];
  for (let i = 0; i < events.length; i += batchSize) {
    const batch = events.slice(i, i + batchSize).map(({ arrival, ...e }) => e);
    if (rnd() < 0.3) batch.push({ ...batch[Math.floor(rnd() * batch.length)] }); // same id twice
    batches.push(batch);
    if (batches.length > 3 && rnd() < 0.03) // a device resending an older batch it got no ack for
      batches.push(batches[batches.length - 3].map((e) => ({ ...e })));
  }
  return { batches, events: batches.flat() };
}

const PLAYBACK = new Set(['play', 'pause', 'stop', 'heartbeat']);
const RANK = { play: 0, heartbeat: 1, pause: 2, stop: 3 };
const utcDay = (ts) => Math.floor(ts / DAY);
const isoDay = (ts) => new Date(ts).toISOString().slice(0, 10);
const byScoreThenId = (a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function isPlayback(e) {
  return PLAYBACK.has(e.type) && typeof e.profile_id === 'string' && e.profile_id !== ''
    && typeof e.title_id === 'string' && e.title_id !== '' && typeof e.position_ms === 'number';
}

/// The reference: replays `events` (send order) and answers every endpoint of issue 6.
export function reference(titles, events, {
  windowMs = HOUR, bucketMs = MINUTE, latenessMs = 5 * MINUTE, genreDays = 31,
  completionRatio = 0.95, maxCompletions = 200, heartbeatTimeoutMs = 90_000,
  seekToleranceMs = 10_000, reorderHorizonMs = 30 * MINUTE,
} = {}) {
  let maxTs = -Infinity;
  let late = 0;
  const lateIds = new Set();
  let unknown = 0;
  const counted = [];                 // {title, profile, bucket} not late when processed
  const genreProfiles = new Map();    // `${day}|${genre}` → Set(profile)
  const completed = new Map();        // profile → [titles], oldest first
  const pairs = new Map();            // title → Map(other → count)
  const perProfile = new Map();       // profile → playback events (log order) for profiles
  for (const e of events) {
    if (!isPlayback(e)) continue;
    const pos = Math.max(0, Math.trunc(e.position_ms));
    if (!perProfile.has(e.profile_id)) perProfile.set(e.profile_id, []);
    perProfile.get(e.profile_id).push({ ...e, pos });
    const t = titles.get(e.title_id);
    if (!t) { ++unknown; continue; }
    maxTs = Math.max(maxTs, e.ts);
    if (utcDay(e.ts) >= utcDay(maxTs) - genreDays + 1)
      for (const g of t.genres) {
        const key = `${utcDay(e.ts)}|${g}`;
        if (!genreProfiles.has(key)) genreProfiles.set(key, new Set());
        genreProfiles.get(key).add(e.profile_id);
      }
    if (pos >= completionRatio * t.duration_ms) {
      const list = completed.get(e.profile_id) ?? [];
      if (!list.includes(t.id)) {
        for (const other of list) {
          for (const [a, b] of [[t.id, other], [other, t.id]]) {
            if (!pairs.has(a)) pairs.set(a, new Map());
            pairs.get(a).set(b, (pairs.get(a).get(b) ?? 0) + 1);
          }
        }
        list.push(t.id);
        if (list.length > maxCompletions) list.shift();
        completed.set(e.profile_id, list);
      }
    }
    const bucket = Math.floor(e.ts / bucketMs);
    if ((bucket + 1) * bucketMs <= maxTs - latenessMs) { ++late; lateIds.add(e.id); }
    else counted.push({ title: t.id, profile: e.profile_id, bucket });
  }
  const name = (id) => titles.get(id)?.name ?? null;
  // docs/profiles.md: profile answers carry `name` only for titles in the catalog.
  const named = (id) => (titles.has(id) ? { name: titles.get(id).name } : {});
  const trending = (w, k, exclude) => {
    const first = Math.floor(maxTs / bucketMs) - w / bucketMs + 1;
    const sets = new Map();
    for (const c of counted) {
      if (c.bucket < first || c.title === exclude) continue;
      if (!sets.has(c.title)) sets.set(c.title, new Set());
      sets.get(c.title).add(c.profile);
    }
    return [...sets].map(([id, s]) => ({ id, score: s.size })).sort(byScoreThenId).slice(0, k);
  };
  const answers = {
    late,
    lateIds,
    unknown,
    trending(w, k) {
      return {
        window_ms: w, as_of: maxTs, watermark: maxTs - latenessMs,
        items: trending(w, k).map((x) => ({ title_id: x.id, name: name(x.id), profiles: x.score })),
      };
    },
    genres(date, k) {
      const day = utcDay(Date.parse(`${date}T00:00:00Z`));
      const items = [];
      for (const [key, s] of genreProfiles) {
        const [d, g] = key.split('|');
        if (Number(d) === day) items.push({ id: g, score: s.size });
      }
      return { date, items: items.sort(byScoreThenId).slice(0, k)
        .map((x) => ({ genre: x.id, profiles: x.score })) };
    },
    alsoWatched(title, k) {
      const nb = pairs.get(title);
      if (nb && nb.size > 0) {
        const items = [...nb].map(([id, score]) => ({ id, score })).sort(byScoreThenId).slice(0, k);
        return { title_id: title, source: 'cowatch',
                 items: items.map((x) => ({ title_id: x.id, name: name(x.id), score: x.score })) };
      }
      return { title_id: title, source: 'trending', reason: 'no co-watch data for this title yet',
               items: trending(windowMs, k, title)
                 .map((x) => ({ title_id: x.id, name: name(x.id), score: x.score })) };
    },
    /// docs/profiles.md "Continue watching": the newest playback event by order key per title.
    continueWatching(profile) {
      const list = perProfile.get(profile);
      if (!list) return null;
      const newest = new Map();
      for (const e of list) {
        const cur = newest.get(e.title_id);
        if (!cur || e.ts > cur.ts || (e.ts === cur.ts && (RANK[e.type] > RANK[cur.type]
            || (RANK[e.type] === RANK[cur.type] && e.pos > cur.pos))))
          newest.set(e.title_id, e);
      }
      const items = [];
      for (const [title, e] of newest) {
        const t = titles.get(title);
        const duration = t ? t.duration_ms : 0;
        if (t && e.pos >= completionRatio * duration) continue;
        items.push({ title_id: title, ...named(title), position_ms: e.pos, duration_ms: duration,
                     updated_ts: e.ts, last_event: e.type });
      }
      items.sort((a, b) => b.updated_ts - a.updated_ts || (a.title_id < b.title_id ? -1 : 1));
      return { profile_id: profile, items };
    },
    /// docs/profiles.md "Watch time": too-late events dropped per profile in log order, duplicates
    /// by order key, credits by consecutive pairs.
    watchTime(profile, from, to) {
      const list = perProfile.get(profile);
      if (!list) return null;
      let m = -Infinity;
      const byTitle = new Map();
      for (const e of list) {
        if (e.ts < m - reorderHorizonMs) continue; // too late for watch time
        m = Math.max(m, e.ts);
        const l = byTitle.get(e.title_id) ?? [];
        if (!l.some((x) => x.ts === e.ts && x.type === e.type && x.pos === e.pos)) l.push(e);
        byTitle.set(e.title_id, l);
      }
      const credit = new Map(); // date → Map(title → ms)
      for (const [title, l] of byTitle) {
        l.sort((x, y) => x.ts - y.ts || RANK[x.type] - RANK[y.type] || x.pos - y.pos);
        for (let i = 0; i + 1 < l.length; ++i) {
          const a = l[i], b = l[i + 1], dt = b.ts - a.ts, dp = b.pos - a.pos;
          if ((a.type === 'play' || a.type === 'heartbeat') && dt <= heartbeatTimeoutMs
              && Math.abs(dp - dt) <= seekToleranceMs) {
            const d = isoDay(a.ts);
            if (!credit.has(d)) credit.set(d, new Map());
            credit.get(d).set(title, (credit.get(d).get(title) ?? 0) + dt);
          }
        }
      }
      const days = [];
      const totals = new Map();
      let total = 0;
      for (const d of [...credit.keys()].sort()) {
        if (d < from || d > to) continue;
        const ts = [...credit.get(d)].filter(([, ms]) => ms > 0).sort(([a], [b]) => (a < b ? -1 : 1));
        if (ts.length === 0) continue;
        let dayTotal = 0;
        for (const [title, ms] of ts) {
          dayTotal += ms;
          totals.set(title, (totals.get(title) ?? 0) + ms);
        }
        total += dayTotal;
        days.push({ date: d, total_ms: dayTotal,
                    titles: ts.map(([title, ms]) => ({ title_id: title, ...named(title), watch_ms: ms })) });
      }
      return {
        profile_id: profile, from, to, total_ms: total,
        titles: [...totals].sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([title, ms]) => ({ title_id: title, ...named(title), watch_ms: ms })),
        days,
      };
    },
    profiles: [...perProfile.keys()],
    dates: [...new Set([...genreProfiles.keys()].map((k) => isoDay(Number(k.split('|')[0]) * DAY)))].sort(),
  };
  return answers;
}

/// Prometheus text → value of `name{labels}` (labels as an object), or undefined.
export function metricValue(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(',').filter((x) => x).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

/// Writes the scenario's batches as NDJSON (one batch per line) for debugging a failure.
export function dumpScenario(file, batches) {
  fs.writeFileSync(file, batches.map((b) => JSON.stringify(b)).join('\n') + '\n');
}

/// POSTs one batch; resolves to true when acknowledged (every event accepted), retries 503s
/// (overload) after their Retry-After; rejects when the connection fails (the node died).
export async function postBatch(node, batch) {
  for (;;) {
    const res = await request(node, 'POST', '/v1/events', batch);
    if (res.status === 503) {
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
      continue;
    }
    assert.equal(res.status, 200, `POST /v1/events: ${res.text}`);
    assert.equal(res.json.accepted, batch.length, `accepted: ${res.text}`);
    return true;
  }
}

/// Waits until the named consumers' durable offsets reach the log's head (everything sent is
/// applied and committed).
export async function waitDrained(node, consumers, timeoutMs = 60000) {
  let last = '';
  await waitFor(`consumers ${consumers.join(', ')} to catch up (${last})`, async () => {
    const text = (await request(node, 'GET', '/metrics')).text;
    const head = metricValue(text, 'sluice_log_next_offset') - 1;
    const behind = consumers.filter((c) => !(metricValue(text, 'sluice_consumer_offset', { consumer: c }) >= head));
    last = `head ${head}, behind: ${behind.join(',')}`;
    return head > 0 && behind.length === 0;
  }, timeoutMs, 100);
}

async function inParallel(items, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function getJson(node, url) {
  const res = await request(node, 'GET', url);
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${res.text}`);
  return res.json;
}

/// Every aggregate endpoint of issue 6 against the reference: trending for several windows,
/// popular genres per day, also-watched for every catalog title.
export async function compareAggregates(node, titles, ref) {
  for (const [w, ms, k] of [['1h', HOUR, 50], ['15m', 15 * MINUTE, 10], ['5m', 5 * MINUTE, 5], ['1m', MINUTE, 50]])
    assert.deepEqual(await getJson(node, `/v1/trending?window=${w}&k=${k}`), ref.trending(ms, k),
                     `trending window=${w} k=${k}`);
  assert.deepEqual(await getJson(node, '/v1/trending'), ref.trending(HOUR, 10), 'trending defaults');
  assert.ok(ref.dates.length >= 2, 'the scenario spans two UTC days');
  for (const d of ref.dates)
    assert.deepEqual(await getJson(node, `/v1/genres/popular?date=${d}&k=100`), ref.genres(d, 100),
                     `genres ${d}`);
  let cowatch = 0;
  for (const id of titles.keys()) {
    const got = await getJson(node, `/v1/titles/${id}/also-watched?k=5`);
    assert.deepEqual(got, ref.alsoWatched(id, 5), `also-watched ${id}`);
    cowatch += got.source === 'cowatch';
  }
  assert.ok(cowatch > titles.size / 2, `most titles have co-watch data (${cowatch})`);
}

/// Continue watching and watch time of every profile against the reference (docs/profiles.md).
export async function compareProfiles(node, ref) {
  const [from, to] = [ref.dates[0], ref.dates[ref.dates.length - 1]];
  const problems = [];
  await inParallel(ref.profiles, 8, async (p) => {
    const cw = await getJson(node, `/v1/profiles/${p}/continue-watching`);
    try { assert.deepEqual(cw, ref.continueWatching(p)); } catch (e) { problems.push(`continue-watching ${p}: ${e.message}`); }
    const wt = await getJson(node, `/v1/profiles/${p}/watch-time?from=${from}&to=${to}`);
    try { assert.deepEqual(wt, ref.watchTime(p, from, to)); } catch (e) { problems.push(`watch-time ${p}: ${e.message}`); }
  });
  const cw = problems.filter((p) => p.startsWith('continue-watching')).length;
  assert.equal(problems.length, 0, `profile answers differ from docs/profiles.md: ${cw} continue-watching, ${
    problems.length - cw} watch-time; first:\n${problems.slice(0, 2).join('\n')}`);
}
