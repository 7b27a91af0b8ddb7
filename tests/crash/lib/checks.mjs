// The checks of one crash trial: what the file sinks and the lake table hold, and the profile state
// recomputed from the events the log kept, exactly as actors/profile_model.cpp computes it.

import fs from 'node:fs';
import path from 'node:path';
import { requireNode } from '../../integration/lib/harness.mjs';

const { DuckDBInstance } = requireNode('@duckdb/node-api');

/// The file sinks of conf/sluice.conf and the event types its routes send them.
export const FILE_SINKS = ['events', 'errors', 'billing'];
/// The file sink an event type is routed to (conf/sluice.conf: errors, billing, _unmatched).
export const sinkOf = (type) => (type === 'error' ? 'errors' : type === 'billing' ? 'billing' : 'events');

/// Reads `<data>/sinks/<name>.ndjson` for every file sink. Returns { lines: id → [{sink, offset}],
/// torn: [lines that are not one JSON object] }. A torn line is what a kill -9 in the middle of a
/// write leaves if the sink does not repair its file on restart; the next batch then glues onto it.
export function readFileSinks(dataDir) {
  const lines = new Map();
  const torn = [];
  for (const sink of FILE_SINKS) {
    const file = path.join(dataDir, 'sinks', `${sink}.ndjson`);
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    const parts = text.split('\n');
    if (parts[parts.length - 1] === '') parts.pop();
    else torn.push(`${sink}: last line has no newline`);
    for (const line of parts) {
      let e;
      try {
        e = JSON.parse(line);
      } catch {
        torn.push(`${sink}: ${line.slice(0, 120)}`);
        continue;
      }
      if (!lines.has(e.id)) lines.set(e.id, []);
      lines.get(e.id).push({ sink, offset: e.offset, type: e.type });
    }
  }
  return { lines, torn };
}

/// Checks the file sinks against the ledger: every acknowledged id present in the sink of its type,
/// nothing that was never sent, and the same offset on every copy of an id. Returns { problems,
/// duplicates, kept } where `kept` is the set of sent ids the sinks hold (what the log kept).
export function checkFileSinks(sinks, ledger) {
  const problems = [];
  let duplicates = 0;
  const kept = new Set();
  for (const [id, copies] of sinks.lines) {
    const e = ledger.sent.get(id);
    if (!e) {
      problems.push(`file sinks hold id ${id} that no client sent`);
      continue;
    }
    kept.add(id);
    duplicates += copies.length - 1;
    const want = sinkOf(e.type);
    for (const c of copies) {
      if (c.sink !== want) problems.push(`${id} (${e.type}) in sink ${c.sink}, expected ${want}`);
      if (c.offset !== copies[0].offset) problems.push(`${id}: copies with offsets ${copies[0].offset} and ${c.offset}`);
    }
  }
  const missing = [...ledger.acked].filter((id) => !kept.has(id));
  if (missing.length)
    problems.push(`${missing.length} acknowledged ids missing from the file sinks, e.g. ${missing.slice(0, 5).join(', ')}`);
  for (const t of sinks.torn) problems.push(`torn file sink line: ${t}`);
  return { problems, duplicates, kept };
}

/// The snapshot `<data>/lake/events/_meta/current` names (null when there is none).
export function readLakeCurrent(tableDir) {
  const pointer = path.join(tableDir, '_meta', 'current');
  if (!fs.existsSync(pointer)) return null;
  const name = fs.readFileSync(pointer, 'utf8').trim();
  return JSON.parse(fs.readFileSync(path.join(tableDir, '_meta', name), 'utf8'));
}

/// Checks the lake table `events` of a stopped node: the files of the current snapshot hold every
/// acknowledged id exactly once, and exactly the ids the file sinks hold (`kept`). Returns
/// { problems, rows, files }.
export async function checkLake(tableDir, ledger, kept) {
  const problems = [];
  const snap = readLakeCurrent(tableDir);
  if (!snap) {
    if (ledger.acked.size) problems.push(`lake: no _meta/current in ${tableDir}`);
    return { problems, rows: 0, files: 0 };
  }
  const files = snap.files.map((f) => path.join(tableDir, f.path));
  for (const f of files) if (!fs.existsSync(f)) problems.push(`lake: file of current missing: ${f}`);
  if (problems.length || files.length === 0) {
    if (files.length === 0 && ledger.acked.size) problems.push('lake: current lists no files');
    return { problems, rows: 0, files: files.length };
  }
  const list = `[${files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ')}]`;
  const db = await DuckDBInstance.create(':memory:');
  const duck = await db.connect();
  try {
    const sql = async (q) => (await duck.runAndReadAll(q)).getRowObjectsJson();
    const [{ n }] = await sql(`SELECT count(*)::VARCHAR AS n FROM read_parquet(${list})`);
    const metaRows = snap.files.reduce((s, f) => s + f.rows, 0);
    if (Number(n) !== metaRows) problems.push(`lake: ${n} rows in the files, ${metaRows} in snapshot ${snap.snapshot_id}`);
    const dups = await sql(`SELECT id, count(*)::VARCHAR AS n FROM read_parquet(${list})
                            GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 10`);
    if (dups.length) problems.push(`lake: duplicate ids, e.g. ${dups.map((d) => `${d.id}×${d.n}`).join(', ')}`);
    const ids = new Set((await sql(`SELECT DISTINCT id FROM read_parquet(${list})`)).map((r) => r.id));
    const missing = [...ledger.acked].filter((id) => !ids.has(id));
    if (missing.length)
      problems.push(`lake: ${missing.length} acknowledged ids missing, e.g. ${missing.slice(0, 5).join(', ')}`);
    const notKept = [...ids].filter((id) => !kept.has(id));
    if (notKept.length)
      problems.push(`lake: ${notKept.length} ids not in the file sinks, e.g. ${notKept.slice(0, 5).join(', ')}`);
    const unlaked = [...kept].filter((id) => !ids.has(id));
    if (unlaked.length)
      problems.push(`lake: ${unlaked.length} ids of the file sinks missing, e.g. ${unlaked.slice(0, 5).join(', ')}`);
    return { problems, rows: Number(n), files: files.length };
  } finally {
    duck.closeSync?.();
  }
}

/// `[profiles] completion-ratio` and `max-titles` of a conf file (CAF INI).
export function profileOptions(confText) {
  const section = /^\[profiles\]\s*$([\s\S]*?)(?=^\[|$(?![\s\S]))/m.exec(confText);
  if (!section) throw new Error('conf has no [profiles] section');
  const value = (key) => {
    const m = new RegExp(`^${key}\\s*=\\s*([0-9.]+)\\s*$`, 'm').exec(section[1]);
    if (!m) throw new Error(`conf [profiles] has no ${key}`);
    return Number(m[1]);
  };
  return { completionRatio: value('completion-ratio'), maxTitles: value('max-titles') };
}

/// Continue-watching per profile recomputed from `events` (the kept events, any order) the way
/// profile_model::apply computes it for events applied in ts order per profile: per title the
/// newest event wins (position clamped at 0, its type as last_event, completed when position >=
/// ratio × duration), only the `maxTitles` most recently updated titles are remembered, and the
/// titles not completed are listed newest first (ties by title_id). Returns profile_id → items.
export function recomputeProfiles(events, { completionRatio, maxTitles }) {
  const PLAYBACK = new Set(['play', 'pause', 'stop', 'heartbeat']);
  const profiles = new Map(); // profile_id → Map(title_id → progress)
  const sorted = [...events].sort((a, b) => a.ts - b.ts);
  for (const e of sorted) {
    if (e.profile_id === undefined) continue;
    if (!profiles.has(e.profile_id)) profiles.set(e.profile_id, new Map());
    if (!PLAYBACK.has(e.type) || typeof e.title_id !== 'string' || !e.title_id ||
        !Number.isInteger(e.position_ms)) continue;
    const titles = profiles.get(e.profile_id);
    const tp = titles.get(e.title_id) ?? { title_id: e.title_id, duration_ms: 0, updated_ts: 0 };
    if (Number.isInteger(e.duration_ms) && e.duration_ms > 0) tp.duration_ms = e.duration_ms;
    if (e.ts < tp.updated_ts) continue;
    tp.position_ms = Math.max(0, e.position_ms);
    tp.updated_ts = e.ts;
    tp.last_event = e.type;
    tp.completed = tp.duration_ms > 0 && tp.position_ms >= completionRatio * tp.duration_ms;
    titles.set(e.title_id, tp);
    while (titles.size > maxTitles) {
      let oldest;
      for (const t of titles.values()) if (!oldest || t.updated_ts < oldest.updated_ts) oldest = t;
      titles.delete(oldest.title_id);
    }
  }
  const out = new Map();
  for (const [id, titles] of profiles) {
    const items = [...titles.values()].filter((t) => !t.completed)
      .sort((a, b) => (a.updated_ts !== b.updated_ts ? b.updated_ts - a.updated_ts
                                                    : a.title_id < b.title_id ? -1 : 1))
      .map(({ title_id, position_ms, duration_ms, updated_ts, last_event }) =>
        ({ title_id, position_ms, duration_ms, updated_ts, last_event }));
    out.set(id, items);
  }
  return out;
}

/// Parses Prometheus text: every line a comment or `name{labels} value`. Returns the problems.
export function checkMetricsText(text) {
  const problems = [];
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$/;
  let samples = 0;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    if (!sample.test(line)) problems.push(`metrics: unparsable line ${line.slice(0, 120)}`);
    else ++samples;
  }
  if (samples === 0) problems.push('metrics: no samples');
  return problems;
}
