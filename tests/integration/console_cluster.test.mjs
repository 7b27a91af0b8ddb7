// The console's cluster page against a real 2-node cluster on loopback: both nodes find each other
// through cluster.seeds, the console on node 1 lists both members `up` (and the overview badge says
// 2/2), node 2 stops and its row turns `down` (badge 1/2) while its forwarder stays listed.
//
//   node tests/integration/console_cluster.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  baseUrl, request, startReadyNode, step, stopNode, tail, testArgs, waitFor
} from './lib/harness.mjs';
import { launchChromium } from './lib/browser.mjs';

const { binary, sourceRoot } = testArgs(import.meta.url);

const UI_TIMEOUT_MS = 15000;
const FAILURE_TIMEOUT_MS = 1500; // cluster.failure-timeout for this test (default 3 s)
const JOIN_TIMEOUT_MS = 30000;

/// A free loopback TCP port (asked from the kernel, then released for the node to bind).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-console-cluster-it-'));
const ports = [await freePort(), await freePort()];
const seeds = JSON.stringify(ports.map((p) => `127.0.0.1:${p}`));

function nodeArgs(i) {
  const name = `node-${i + 1}`;
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'node.conf');
  fs.writeFileSync(conf, `
[sluice]
node = "${name}"
data-dir = "${dir}"

[gateway]
port = 0
console-dir = "${path.join(sourceRoot, 'console')}"

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]
`);
  return ['serve', `--config-file=${conf}`, `--cluster.port=${ports[i]}`, `--cluster.host=127.0.0.1`,
    `--cluster.seeds=${seeds}`, `--cluster.failure-timeout=${FAILURE_TIMEOUT_MS}ms`];
}

/// The member states a node's GET /v1/cluster lists, by name.
async function memberStates(node) {
  const res = await request(node, 'GET', '/v1/cluster');
  if (res.status !== 200) throw new Error(`/v1/cluster answered ${res.status}: ${res.text}`);
  return Object.fromEntries(res.json.members.map((m) => [m.name, m.state]));
}

const nodes = [];
let browser;
const pageErrors = [];
try {
  await step('two nodes started with each other as seeds each list both members up', async () => {
    nodes.push(await startReadyNode(binary, nodeArgs(0)));
    nodes.push(await startReadyNode(binary, nodeArgs(1)));
    for (const n of nodes) {
      await waitFor('both members up', async () => {
        const s = await memberStates(n);
        return s['node-1'] === 'up' && s['node-2'] === 'up' && Object.keys(s).length === 2;
      }, JOIN_TIMEOUT_MS, 100);
    }
  });

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(`CSP: ${m.text()}`);
  });
  const url = `${baseUrl(nodes[0])}/console/`;
  const row = (name, state) => page.locator(`[data-testid=cluster-members] tbody tr[data-node="${name}"]${state ? `[data-state="${state}"]` : ''}`);

  await step('the console on node 1 shows both members up, node 1 as self, and a forwarder to node 2', async () => {
    await page.goto(`${url}#/overview`);
    await page.getByTestId('cluster-badge').filter({ hasText: 'cluster: 2/2 up' }).waitFor();
    await page.goto(`${url}#/cluster`);
    await row('node-1', 'up').waitFor();
    await row('node-2', 'up').waitFor();
    assert.equal(await page.locator('[data-testid=cluster-members] tbody tr').count(), 2);
    assert.equal(await row('node-1').getAttribute('data-self'), 'true');
    assert.equal(await row('node-2').getAttribute('data-self'), 'false');
    assert.equal(await row('node-2').locator('.pill').textContent(), 'up');
    assert.equal(await row('node-2').locator('td.mono').first().textContent(), `127.0.0.1:${ports[1]}`);
    const href = await row('node-2').locator('a').getAttribute('href');
    assert.equal(href, `http://127.0.0.1:${nodes[1].port}/console/`, 'a link to node 2\'s own console');
    // Both shares add up to the whole ring.
    const shares = await page.locator('[data-testid=cluster-members] .share .num').allTextContents();
    const total = shares.reduce((a, s) => a + Number.parseFloat(s), 0);
    assert.ok(Math.abs(total - 100) < 0.5, `shares ${shares.join(', ')}`);
    await page.locator('[data-testid=cluster-forwarders] tbody tr[data-peer=node-2]').waitFor();
    await page.getByTestId('cluster-up').filter({ hasText: '2/2' }).waitFor();
    assert.equal(await page.getByTestId('cluster-hint').count(), 0);
    assert.ok(await page.getByTestId('chart-forward-backlog').isVisible(), 'the forward backlog chart');
  });

  await step('node 2 stops and its row on node 1\'s console turns down (badge 1/2)', async () => {
    const exit = await stopNode(nodes[1]);
    assert.equal(exit.code, 0, `node 2 exit ${JSON.stringify(exit)}`);
    await row('node-2', 'down').waitFor({ timeout: FAILURE_TIMEOUT_MS + 10000 });
    assert.equal(await row('node-2').locator('.pill').getAttribute('data-state'), 'bad');
    assert.equal(await row('node-1').getAttribute('data-state'), 'up');
    await page.getByTestId('cluster-up').filter({ hasText: '1/2' }).waitFor();
    await page.goto(`${url}#/overview`);
    await page.getByTestId('cluster-badge').filter({ hasText: 'cluster: 1/2 up' }).waitFor();
  });

  assert.deepEqual(pageErrors, [], 'no script errors or CSP violations in the page');
  await browser.close();
  browser = null;
  const exit = await stopNode(nodes[0]);
  assert.equal(exit.code, 0, `node 1 exit ${JSON.stringify(exit)}`);
  fs.rmSync(root, { recursive: true, force: true });
  console.log('console_cluster: all steps passed');
} catch (e) {
  console.error(e.stack || e.message);
  if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
  for (const n of nodes) console.error(`node on :${n.port} stderr (tail):\n${tail(n.stderr)}`);
  if (browser) await browser.close().catch(() => {});
  for (const n of nodes) await stopNode(n, 'SIGKILL').catch(() => {});
  process.exit(1);
}
