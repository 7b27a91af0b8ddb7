// Issue 6 end to end: a seeded scenario of 100,000+ viewing events (2,000 profiles, the titles of
// conf/titles.csv; out-of-order, late and duplicate events) sent over HTTP to a real node, and
// every endpoint — trending, popular genres, also-watched, continue watching, watch time —
// compared with an independent reference computed here (tests/integration/lib/scenario.mjs).
//
//   node tests/integration/aggregates_scenario.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readNdjson, request, startReadyNode, step, stopNode, testArgs } from './lib/harness.mjs';
import {
  compareAggregates, compareProfiles, dumpScenario, generateScenario, loadCatalog, metricValue,
  postBatch, reference, waitDrained,
} from './lib/scenario.mjs';

const { binary, sourceRoot } = testArgs(import.meta.url);
const titlesFile = path.join(sourceRoot, 'conf', 'titles.csv');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-aggregates-'));
const dataDir = path.join(work, 'data');
const args = ['serve', `--config-file=${path.join(sourceRoot, 'conf', 'sluice.conf')}`,
              '--gateway.port=0', `--sluice.data-dir=${dataDir}`, `--catalog.titles-file=${titlesFile}`];
const CONSUMERS = ['aggregates', 'profiles.0', 'profiles.1', 'sink.events'];

const titles = await loadCatalog(titlesFile);
const { batches, events } = generateScenario(titles);
const ref = reference(titles, events);
dumpScenario(path.join(work, 'scenario.ndjson'), batches);
let node;
let ok = false;
try {
  await step(`the scenario has ${events.length} events in ${batches.length} batches, with late and duplicate events`, () => {
    assert.ok(events.length >= 100_000);
    assert.ok(ref.profiles.length >= 2000);
    assert.ok(ref.late > 500, `late events: ${ref.late}`);
    assert.ok(new Set(events.map((e) => e.id)).size < events.length, 'some ids are sent twice');
  });
  node = await startReadyNode(binary, args);
  await step('every batch is acknowledged over HTTP, in order', async () => {
    for (const b of batches) await postBatch(node, b);
  });
  await step('the aggregator, the profile shards and the events sink catch up', () => waitDrained(node, CONSUMERS));
  await step('trending, popular genres and also-watched match the reference', () => compareAggregates(node, titles, ref));
  await step('late events are counted in /metrics exactly as the reference finds them', async () => {
    const text = (await request(node, 'GET', '/metrics')).text;
    assert.equal(metricValue(text, 'sluice_aggregate_late_events_total'), ref.late);
    assert.equal(metricValue(text, 'sluice_aggregate_unknown_title_events_total'), ref.unknown);
  });
  await step('late events still reach the events sink', () => {
    const ids = new Set(readNdjson(path.join(dataDir, 'sinks', 'events.ndjson')).map((e) => e.id));
    const missing = [...ref.lateIds].filter((id) => !ids.has(id));
    assert.equal(missing.length, 0, `late events missing from the sink: ${missing.slice(0, 5)}`);
  });
  await step('bad parameters answer 400 naming the parameter, unknown titles 404', async () => {
    for (const [url, param] of [['/v1/trending?window=2h', 'window'], ['/v1/trending?window=90s', 'window'],
                                ['/v1/trending?window=abc', 'window'], ['/v1/trending?k=0', 'k'],
                                ['/v1/trending?top=3', 'top'], ['/v1/genres/popular?date=2026-13-01', 'date'],
                                ['/v1/genres/popular?date=yesterday', 'date'],
                                ['/v1/titles/t-1/also-watched?k=21', 'k']]) {
      const res = await request(node, 'GET', url);
      assert.equal(res.status, 400, `${url}: ${res.text}`);
      assert.equal(res.json.parameter, param, `${url}: ${res.text}`);
    }
    assert.equal((await request(node, 'GET', '/v1/titles/t-nope/also-watched')).status, 404);
  });
  await step('a clean restart answers the same from the stored state', async () => {
    assert.deepEqual((await stopNode(node)).code, 0);
    node = await startReadyNode(binary, args);
    await compareAggregates(node, titles, ref);
  });
  await step('continue watching and watch time of every profile match the reference', () => compareProfiles(node, ref));
  ok = true;
} finally {
  if (node) await stopNode(node, 'SIGKILL');
  if (ok) fs.rmSync(work, { recursive: true, force: true });
  else console.error(`kept ${work} (scenario.ndjson: the batches in send order)`);
}
