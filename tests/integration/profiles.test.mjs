// Profiles and the title catalog through a real node: GET /v1/titles/{id}, watch time per title
// per day and continue watching (computed here from docs/profiles.md, independently of the node),
// 400/404 answers naming the parameter, catalog reload by POST and SIGHUP (a bad file keeps the
// old catalog and names the line), and a bad catalog failing `sluice check`.
//
//   node tests/integration/profiles.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  request, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-profiles-it-'));
const confFile = path.join(dataDir, 'profiles.conf');
const titlesFile = path.join(dataDir, 'titles.csv');
const CATALOG = 'id,name,genres,duration\n' +
  'm-1,Harbour Lights,Drama|Mystery,1h40m\n' +
  'm-2,"Orbit, Again",Sci-Fi,600\n';
fs.writeFileSync(titlesFile, CATALOG);
fs.writeFileSync(confFile, `
[sluice]
node = "profiles-node"
data-dir = "${dataDir}"

[gateway]
port = 0

[actors]
checkpoint-interval = 20ms

[catalog]
titles-file = "${titlesFile}"

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`);

const DAY = Date.UTC(2024, 10, 22); // 2024-11-22T00:00:00Z
const S = 1000;
let seq = 0;
const ev = (type, title, ts, pos, extra = {}) =>
  ({ id: `pe-${++seq}`, type, device_id: 'tv-1', profile_id: 'p-1', ts, title_id: title, position_ms: pos, ...extra });

// docs/profiles.md, "Reference implementation".
const rank = { play: 0, heartbeat: 1, pause: 2, stop: 3 };
function watchTime(events, timeout = 90000, tolerance = 10000) {
  const byTitle = new Map(), out = new Map();
  for (const e of events) {
    const x = { ts: e.ts, type: e.type, pos: Math.max(0, Math.trunc(e.position_ms)) };
    const list = byTitle.get(e.title_id) ?? [];
    if (!list.some((y) => y.ts === x.ts && y.type === x.type && y.pos === x.pos)) list.push(x);
    byTitle.set(e.title_id, list);
  }
  for (const [title, list] of byTitle) {
    list.sort((x, y) => x.ts - y.ts || rank[x.type] - rank[y.type] || x.pos - y.pos);
    for (let i = 0; i + 1 < list.length; ++i) {
      const a = list[i], b = list[i + 1], dt = b.ts - a.ts, dp = b.pos - a.pos;
      if ((a.type === 'play' || a.type === 'heartbeat') && dt <= timeout && Math.abs(dp - dt) <= tolerance) {
        const key = `${title}|${new Date(a.ts).toISOString().slice(0, 10)}`;
        out.set(key, (out.get(key) ?? 0) + dt);
      }
    }
  }
  return out;
}

// The watch-time answer the doc promises for `events` over [from, to].
function expectedWatchTime(events, from, to, names) {
  const byDay = new Map(), totals = new Map();
  for (const [key, ms] of watchTime(events)) {
    const [title, date] = key.split('|');
    if (date < from || date > to || ms === 0) continue;
    if (!byDay.has(date)) byDay.set(date, new Map());
    byDay.get(date).set(title, ms);
    totals.set(title, (totals.get(title) ?? 0) + ms);
  }
  const list = (m) => [...m.keys()].sort().map((t) =>
    (names[t] ? { title_id: t, name: names[t], watch_ms: m.get(t) } : { title_id: t, watch_ms: m.get(t) }));
  const days = [...byDay.keys()].sort().map((date) => ({
    date, total_ms: [...byDay.get(date).values()].reduce((a, b) => a + b, 0), titles: list(byDay.get(date)) }));
  return { profile_id: 'p-1', from, to, total_ms: days.reduce((a, d) => a + d.total_ms, 0),
           titles: list(totals), days };
}

async function post(node, events) {
  const r = await request(node, 'POST', '/v1/events', events);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.accepted, events.length, r.text);
}

const args = ['serve', `--config-file=${confFile}`];
let node;
try {
  node = await startReadyNode(binary, args);

  await step('GET /v1/titles/{id} answers a catalog title and 404 for an unknown id', async () => {
    const r = await request(node, 'GET', '/v1/titles/m-2');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { id: 'm-2', name: 'Orbit, Again', genres: ['Sci-Fi'], duration_ms: 600000 });
    const unknown = await request(node, 'GET', '/v1/titles/nope');
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json.error, 'unknown title');
  });

  const events = [
    // m-1 across midnight: play, heartbeats, a seek, a pause, a late heartbeat, a duplicate.
    ev('play', 'm-1', DAY - 40 * S, 0),
    ev('heartbeat', 'm-1', DAY - 10 * S, 30 * S),
    ev('heartbeat', 'm-1', DAY + 20 * S, 60 * S),
    ev('heartbeat', 'm-1', DAY + 50 * S, 900 * S),   // seek forward: not watching
    ev('heartbeat', 'm-1', DAY + 80 * S, 930 * S),
    ev('pause', 'm-1', DAY + 95 * S, 945 * S),
    ev('play', 'm-1', DAY + 400 * S, 945 * S),
    ev('heartbeat', 'm-1', DAY + 430 * S, 975 * S),   // then no stop: the session just ends
    // m-2 completes (600 s in the catalog), x-9 is not in the catalog (event duration).
    ev('play', 'm-2', DAY + 1000 * S, 0),
    ev('stop', 'm-2', DAY + 1030 * S, 590 * S),
    ev('play', 'x-9', DAY + 2000 * S, 0, { duration_ms: 3_600_000 }),
    ev('heartbeat', 'x-9', DAY + 2030 * S, 30 * S, { duration_ms: 3_600_000 }),
  ];
  const late = [
    ev('heartbeat', 'm-1', DAY + 65 * S, 915 * S),   // late, between two heartbeats
    { ...events[1], id: 'another-id' },              // a duplicate with its own id
  ];
  const names = { 'm-1': 'Harbour Lights', 'm-2': 'Orbit, Again' };

  await step('watch time per title per day matches the documented formula, out of order and with duplicates', async () => {
    await post(node, events);
    await post(node, late);
    const all = [...events, ...late];
    const want = expectedWatchTime(all, '2024-11-21', '2024-11-22', names);
    assert.ok(want.total_ms > 0 && want.days.length === 2, JSON.stringify(want));
    let got;
    await waitFor('watch-time to match the reference', async () => {
      got = await request(node, 'GET', '/v1/profiles/p-1/watch-time?from=2024-11-21&to=2024-11-22');
      return got.status === 200 && JSON.stringify(got.json) === JSON.stringify(want);
    }, 10000).catch((e) => {
      e.message += `\n  got:  ${got?.status} ${got?.text}\n  want: ${JSON.stringify(want)}`;
      throw e;
    });
    const one = await request(node, 'GET', '/v1/profiles/p-1/watch-time?from=2024-11-22&to=2024-11-22');
    assert.deepEqual(one.json, expectedWatchTime(all, '2024-11-22', '2024-11-22', names));
    const defaults = await request(node, 'GET', '/v1/profiles/p-1/watch-time');
    assert.equal(defaults.status, 200, defaults.text);
    assert.equal(defaults.json.to, '2024-11-22', 'to defaults to the newest event day');
    assert.equal(defaults.json.from, '2024-10-24', 'from defaults to 29 days before');
    assert.equal(defaults.json.total_ms, want.total_ms);
  });

  await step('continue watching lists titles in progress, newest first, with names; completed ones leave', async () => {
    const r = await request(node, 'GET', '/v1/profiles/p-1/continue-watching');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {
      profile_id: 'p-1',
      items: [
        { title_id: 'x-9', position_ms: 30000, duration_ms: 3600000, updated_ts: DAY + 2030 * S, last_event: 'heartbeat' },
        { title_id: 'm-1', position_ms: 975000, duration_ms: 6000000, updated_ts: DAY + 430 * S, last_event: 'heartbeat', name: 'Harbour Lights' },
      ],
    });
  });

  await step('bad parameters answer 400 naming the parameter; unknown profiles 404', async () => {
    for (const [query, parameter] of [['from=2024-13-01', 'from'], ['to=22.11.2024', 'to'],
      ['from=2024-11-23&to=2024-11-22', 'from'], ['from=2023-01-01&to=2024-06-01', 'to'], ['day=2024-11-22', 'day']]) {
      const r = await request(node, 'GET', `/v1/profiles/p-1/watch-time?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.equal(r.json.parameter, parameter, `${query}: ${r.text}`);
      assert.ok(r.json.error.length > 0);
    }
    for (const p of ['/v1/profiles/nobody/watch-time', '/v1/profiles/nobody/continue-watching']) {
      const r = await request(node, 'GET', p);
      assert.equal(r.status, 404, `${p}: ${r.text}`);
      assert.equal(r.json.error, 'unknown profile');
    }
  });

  await step('POST /v1/admin/catalog/reload: a bad file keeps the catalog (400 with the line), a good one swaps it', async () => {
    fs.writeFileSync(titlesFile, CATALOG + 'm-3,Broken,Drama,soon\n');
    const bad = await request(node, 'POST', '/v1/admin/catalog/reload');
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.json.error, /line 4: title "m-3": duration "soon"/);
    assert.equal(bad.json.titles, 2);
    assert.equal((await request(node, 'GET', '/v1/titles/m-3')).status, 404);
    fs.writeFileSync(titlesFile, CATALOG.replace('Harbour Lights', 'Harbour Lights (Director\'s Cut)') +
      'm-3,Fixed,Drama,45m\n');
    const good = await request(node, 'POST', '/v1/admin/catalog/reload');
    assert.equal(good.status, 200, good.text);
    assert.equal(good.json.titles, 3);
    assert.equal((await request(node, 'GET', '/v1/titles/m-3')).json.name, 'Fixed');
    const cw = await request(node, 'GET', '/v1/profiles/p-1/continue-watching');
    assert.equal(cw.json.items[1].name, 'Harbour Lights (Director\'s Cut)', 'names are read at query time');
  });

  await step('SIGHUP reloads the catalog; a bad file on SIGHUP is logged and keeps the catalog', async () => {
    fs.writeFileSync(titlesFile, CATALOG + 'm-4,By Signal,Comedy,30m\n');
    node.proc.kill('SIGHUP');
    await waitFor('m-4 after SIGHUP', async () => (await request(node, 'GET', '/v1/titles/m-4')).status === 200);
    assert.equal((await request(node, 'GET', '/v1/titles/m-3')).status, 404, 'the whole file replaced the catalog');
    fs.writeFileSync(titlesFile, 'id,name,genres\n');
    node.proc.kill('SIGHUP');
    await waitFor('the failed reload in the log', () => /title catalog reload failed/.test(node.stderr));
    assert.match(node.stderr, /line 1: the header lacks the column \\"duration\\"/);
    assert.equal((await request(node, 'GET', '/v1/titles/m-4')).status, 200, 'old catalog kept');
    const m = await request(node, 'GET', '/metrics');
    assert.match(m.text, /sluice_catalog_reloads_total\{result="error"\} 2/);
    assert.match(m.text, /sluice_catalog_titles 3/);
  });

  await step('a restart keeps watch time (state committed with the log offset)', async () => {
    const before = await request(node, 'GET', '/v1/profiles/p-1/watch-time?from=2024-11-21&to=2024-11-22');
    const r = await stopNode(node, 'SIGTERM');
    assert.deepEqual(r, { code: 0, signal: null }, tail(node.stderr));
    fs.writeFileSync(titlesFile, CATALOG);
    node = await startReadyNode(binary, args);
    const after = await request(node, 'GET', '/v1/profiles/p-1/watch-time?from=2024-11-21&to=2024-11-22');
    assert.equal(after.status, 200, after.text);
    assert.deepEqual(after.json.days, before.json.days.map((d) => ({ ...d,
      titles: d.titles.map((t) => (t.title_id === 'm-1' ? { ...t, name: 'Harbour Lights' } : t)) })));
  });

  await step('sluice check fails on a bad catalog, naming the file and the line', async () => {
    fs.writeFileSync(titlesFile, CATALOG + 'm-1,Twice,Drama,1h\n');
    const r = spawnSync(binary, ['check', `--config-file=${confFile}`], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`${titlesFile}: line 4: duplicate id "m-1" (first on line 2)`), r.stderr);
  });
} finally {
  if (node && !node.exited) await stopNode(node, 'SIGKILL').catch(() => {});
  fs.rmSync(dataDir, { recursive: true, force: true });
}
