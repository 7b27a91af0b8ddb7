// Issue 6 exactly-once: the seeded scenario of aggregates_scenario.test.mjs with a kill -9 of the
// node while batches are in flight; the node restarts on the same data dir, the client resends
// what was not acknowledged (the same ids: duplicates if the batch had been committed), and
// after the consumers catch up every endpoint still matches the reference.
//
//   node tests/integration/aggregates_crash.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request, startReadyNode, step, stopNode, testArgs, waitFor } from './lib/harness.mjs';
import {
  compareAggregates, compareProfiles, generateScenario, loadCatalog, metricValue, postBatch,
  reference, waitDrained,
} from './lib/scenario.mjs';

const { binary, sourceRoot } = testArgs(import.meta.url);
const titlesFile = path.join(sourceRoot, 'conf', 'titles.csv');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-aggregates-crash-'));
const args = ['serve', `--config-file=${path.join(sourceRoot, 'conf', 'sluice.conf')}`,
              '--gateway.port=0', `--sluice.data-dir=${path.join(work, 'data')}`,
              `--catalog.titles-file=${titlesFile}`,
              // State commits every second: the kill loses up to a second of aggregate and
              // profile state, which the restart replays from the log.
              '--actors.checkpoint-interval=1s'];
const CONSUMERS = ['aggregates', 'profiles.0', 'profiles.1'];

const titles = await loadCatalog(titlesFile);
const { batches, events } = generateScenario(titles, { seed: 7 });
const ref = reference(titles, events);
let node;
let ok = false;
try {
  node = await startReadyNode(binary, args);
  const crashAt = Math.floor(batches.length * 0.45);
  let next = 0;
  await step(`batches are sent until a kill -9 loses the ack of batch ${crashAt} and hits batch ${crashAt + 1} in flight`, async () => {
    for (; next < crashAt; ++next) {
      await postBatch(node, batches[next]);
      if (next === Math.floor(crashAt / 2)) // some state is committed before the crash
        await waitFor('a first aggregator checkpoint', async () => metricValue(
          (await request(node, 'GET', '/metrics')).text, 'sluice_consumer_offset', { consumer: 'aggregates' }) > 0);
    }
    // Batch crashAt is committed, but the client is to behave as if its ack was lost in the
    // crash (it resends it: duplicates in the log); batch crashAt + 1 is in flight when the node
    // dies (committed or not). One batch at a time keeps the log order, and so the reference,
    // deterministic.
    await postBatch(node, batches[next]);
    const inflight = postBatch(node, batches[next + 1]).then(() => true, () => false);
    node.proc.kill('SIGKILL');
    const acked = await inflight;
    await node.exit;
    console.log(`  in-flight batch acknowledged: ${acked}; resending from batch ${next}`);
  });
  await step('the node restarts on the same data dir and the rest is sent (resends included)', async () => {
    node = await startReadyNode(binary, args);
    const atStart = (await request(node, 'GET', '/metrics')).text;
    const stored = metricValue(atStart, 'sluice_consumer_offset', { consumer: 'aggregates' });
    const head = metricValue(atStart, 'sluice_log_next_offset') - 1;
    await waitDrained(node, CONSUMERS);
    const replayed = metricValue((await request(node, 'GET', '/metrics')).text, 'sluice_aggregate_events_total');
    console.log(`  the aggregator restored offset ${stored} of ${head} and re-applied ${replayed} events`);
    assert.ok(stored > 0, 'the aggregator restored a committed offset');
    assert.ok(replayed <= head - stored, 'only events above the stored offset were applied again');
    for (; next < batches.length; ++next) await postBatch(node, batches[next]);
  });
  await step('after the consumers catch up, the aggregates match the reference', async () => {
    await waitDrained(node, CONSUMERS);
    await compareAggregates(node, titles, ref);
  });
  await step('continue watching and watch time still match the reference', () => compareProfiles(node, ref));
  ok = true;
} finally {
  if (node) await stopNode(node, 'SIGKILL');
  if (ok) fs.rmSync(work, { recursive: true, force: true });
  else console.error(`kept ${work}`);
}
