// The admin console in a real browser (Debian's Chromium, headless, driven by playwright-core)
// against a real node: log in with a token, watch the live counter rise while events arrive, break
// a route and see the error at its line, fix and apply it (the version increments), replay a dead
// letter, and take a full-page screenshot of the overview (kept as docs/console.png).
//
//   node tests/integration/console.test.mjs <path/to/sluice> <source root>
//   SLUICE_SCREENSHOT=/tmp/console.png  writes the screenshot there (default <build dir>/console.png)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  baseUrl, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';
import { launchChromium } from './lib/browser.mjs';

const { binary, sourceRoot } = testArgs(import.meta.url);

const UI_TIMEOUT_MS = 15000;
const LIVE_SAMPLES_FOR_SCREENSHOT = 12;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-console-it-'));
const confFile = path.join(dataDir, 'console.conf');
const screenshot = process.env.SLUICE_SCREENSHOT || path.join(path.dirname(path.resolve(binary)), 'console.png');

// The routes the test breaks and fixes; line numbers below refer to this text.
const GOOD_ROUTES = `; routes of the console test
[routes.errors]
when = "type == \\"error\\""
sinks = ["errors"]

[routes._unmatched]
sinks = ["events"]
`;
const BROKEN_LINE = 3;
const BROKEN_ROUTES = GOOD_ROUTES.replace('when = "type == \\"error\\""', 'when = "type == "');
const FIXED_ROUTES = GOOD_ROUTES.replace('; routes of the console test', '; routes of the console test, fixed in the browser');

// A clustered live snapshot (the parts the cluster page reads), rendered without a cluster.
const CLUSTER_FIXTURE = {
  v: 1, t: Date.now(),
  node: { id: 'node-1', address: '127.0.0.1:8081', version: '0.1.0', started_ms: Date.now() - 60000, uptime_s: 60, health: 'ready' },
  cluster: {
    enabled: true, self: 'node-1', ring_version: 5, replicas: 2,
    members: [
      { name: 'node-1', address: '127.0.0.1:7101', http: 'http://127.0.0.1:8081', state: 'up', self: true, last_heard_ms: 0, share: 0.334 },
      { name: 'node-2', address: '127.0.0.1:7102', http: 'http://127.0.0.1:8082', state: 'up', self: false, last_heard_ms: 120, share: 0.333 },
      { name: 'node-3', address: '127.0.0.1:7103', http: 'javascript:alert(1)', state: 'down', self: false, last_heard_ms: 4200, share: 0.333 },
    ],
    forwarders: [
      { peer: 'node-2', state: 'up', acked_upto: 140, sent_upto: 140, head: 140, backlog_events: 0, in_flight_events: 0, resent_events: 0 },
      { peer: 'node-3', state: 'down', acked_upto: 123, sent_upto: 130, head: 140, backlog_events: 17, in_flight_events: 7, resent_events: 2 },
    ],
    replication: { pending_batches: 0, last_lag_ms: 2 },
  },
};

fs.writeFileSync(confFile, `
[sluice]
node = "console-node"
data-dir = "${dataDir}"

[gateway]
port = 0
console-dir = "${path.join(sourceRoot, 'console')}"

[catalog]
titles-file = "${path.join(sourceRoot, 'conf', 'titles.csv')}"

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[sinks.errors]
kind = "file"
path = "sinks/errors.ndjson"
flush-interval = 20ms

${GOOD_ROUTES}
[schemas.play]
version = 1
fields = { position_ms = { type = "int", min = 0 } }
`);

// Tokens: when this build has access control (`sluice token hash`), the console logs in with an
// admin token and the load comes with an ingest token; a build without it runs open.
function makeToken(name, scopes) {
  const token = crypto.randomBytes(24).toString('base64url');
  const r = spawnSync(binary, ['token', 'hash', `--name=${name}`, `--scopes=${scopes}`],
    { input: `${token}\n`, encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0 || !/\[tokens\./.test(r.stdout)) return null;
  return { token, section: r.stdout };
}
const adminToken = makeToken('console', 'admin');
const ingestToken = adminToken ? makeToken('devices', 'ingest') : null;
if (adminToken) fs.appendFileSync(confFile, `\n${adminToken.section}\n${ingestToken.section}\n`);
const auth = (t) => (t ? { authorization: `Bearer ${t.token}` } : {});

async function call(node, method, urlPath, body, token) {
  const res = await fetch(baseUrl(node) + urlPath, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...auth(token) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

// Background traffic: plays with profiles and titles, some errors, some malformed events (they
// show as rejections), paced by the acks.
let sent = 0;
let trafficOn = false;
let traffic = null;
function startTraffic(node) {
  trafficOn = true;
  traffic = (async () => {
    let n = 0;
    while (trafficOn) {
      const batch = [];
      for (let i = 0; i < 40; ++i, ++n) {
        const ts = Date.now();
        if (n % 25 === 24) batch.push({ type: 'play', ts });                    // no device_id: rejected
        else if (n % 10 === 0) batch.push({ type: 'error', device_id: `tv-${n % 7}`, ts, code: 'E42' });
        else batch.push({ type: 'play', device_id: `tv-${n % 7}`, profile_id: `p-${n % 13}`, ts,
          title_id: `t-${1 + (n % 9)}`, position_ms: (n % 50) * 1000 });
      }
      const res = await call(node, 'POST', '/v1/events', batch, ingestToken);
      if (res.status === 200) sent += res.json.accepted;
      // A pause between batches keeps the rate readable on the charts (and leaves the CPU to the node).
      await new Promise((r) => setTimeout(r, 60));
    }
  })();
}

let node;
let browser;
const pageErrors = [];
try {
  // With tokens, no anonymous access at all (the harness opens every scope unless told otherwise).
  node = await startReadyNode(binary, ['serve', `--config-file=${confFile}`,
    ...(adminToken ? ['--auth.anonymous=[]'] : [])]);
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(`CSP: ${m.text()}`);
  });
  const url = `${baseUrl(node)}/console/`;
  // The live feed goes through Playwright's WebSocket route (the page still connects to the node
  // itself, with its cookie and Origin), so the test can drop it and watch the console reconnect.
  const liveSockets = [];
  await page.routeWebSocket(/\/v1\/admin\/live$/, (ws) => {
    liveSockets.push(ws);
    ws.connectToServer();
  });

  await step('the console and its vendored chart library are served with security headers', async () => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('content-security-policy'), /^default-src 'self'; connect-src 'self' ws: wss:/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const lib = await fetch(`${baseUrl(node)}/console/vendor/uPlot.esm.js`);
    assert.equal(lib.status, 200);
    assert.match(lib.headers.get('content-type'), /^text\/javascript/);
    for (const p of ['/console/..%2f..%2fconf%2fsluice.conf', '/console/%2e%2e/package.json', '/console/package.json',
      '/console/node_modules/uplot/package.json']) {
      const r = await fetch(baseUrl(node) + p);
      assert.equal(r.status, 404, `${p} answered ${r.status}`);
    }
  });

  await step(adminToken ? 'logging in with a token gives an HttpOnly SameSite=Strict session cookie'
    : 'a node without an access policy opens the console without a login', async () => {
    await page.goto(url);
    if (adminToken) {
      await page.getByTestId('login-form').waitFor();
      await page.fill('#token', 'not-a-token');
      await page.click('[data-testid=login-form] button[type=submit]');
      await page.locator('.login-card .error').filter({ hasText: /not accepted/ }).waitFor();
      await page.fill('#token', adminToken.token);
      await page.click('[data-testid=login-form] button[type=submit]');
      await page.locator('#app').waitFor({ state: 'visible' });
      const cookie = (await context.cookies()).find((c) => c.name === 'sluice_session');
      assert.ok(cookie, 'a sluice_session cookie');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.match(await page.locator('#principal').textContent(), /console/);
    } else {
      await page.locator('#app').waitFor({ state: 'visible' });
    }
  });

  await step('the overview counter rises while events are sent, pushed over the live WebSocket', async () => {
    await page.locator('#live-status[data-state=live]').waitFor();
    const read = async () => Number((await page.locator('[data-testid=stat-accepted] .v').textContent()).replace(/[^0-9]/g, '')) || 0;
    const before = await read();
    startTraffic(node);
    await waitFor('the accepted counter to rise by 500', async () => (await read()) >= before + 500, UI_TIMEOUT_MS);
    const shown = await read();
    assert.ok(shown <= sent + before, `shown ${shown} ≤ sent ${sent}`);
    await page.locator('[data-testid=stat-in] .v').filter({ hasNotText: /^(—|0)$/ }).waitFor();
  });

  await step('a dropped live feed reconnects by itself and the numbers keep coming', async () => {
    const before = liveSockets.length;
    assert.ok(before >= 1);
    const read = async () => Number((await page.locator('[data-testid=stat-accepted] .v').textContent()).replace(/[^0-9]/g, '')) || 0;
    await liveSockets[before - 1].close({ code: 1011, reason: 'dropped by the test' });
    await waitFor('a new live WebSocket', () => liveSockets.length > before, UI_TIMEOUT_MS);
    await page.locator('#live-status[data-state=live]').waitFor();
    const shown = await read();
    await waitFor('the counter to rise after the reconnect', async () => (await read()) > shown, UI_TIMEOUT_MS);
  });

  await step('a broken route shows its error at its line; the fix applies as the next version', async () => {
    await page.goto(`${url}#/routes`);
    const pill = page.getByTestId('routes-version');
    await pill.filter({ hasText: /version \d+/ }).waitFor();
    const version = Number(await pill.getAttribute('data-version'));
    assert.ok(version >= 1);
    await page.getByTestId('routes-editor').fill(BROKEN_ROUTES);
    await page.getByTestId('routes-apply').click();
    const inline = page.getByTestId('routes-inline-error');
    await inline.waitFor({ state: 'visible' });
    assert.equal(Number(await inline.getAttribute('data-line')), BROKEN_LINE, await inline.textContent());
    assert.match(await inline.textContent(), new RegExp(`^Line ${BROKEN_LINE}, column \\d+: .+`));
    await page.locator(`.editor .gutter div.error[data-line="${BROKEN_LINE}"]`).waitFor();
    assert.equal(Number(await pill.getAttribute('data-version')), version, 'a refused text makes no version');

    if (adminToken) {
      // The cookie alone does not change state: the console's apply works because it sends the
      // session's X-CSRF-Token.
      const forged = await page.evaluate(async (text) => (await fetch('/v1/admin/routes', {
        method: 'PUT', headers: { 'content-type': 'text/plain' }, body: text })).status, FIXED_ROUTES);
      assert.equal(forged, 403, 'a state change without X-CSRF-Token is refused');
    }
    await page.getByTestId('routes-editor').fill(FIXED_ROUTES);
    await page.getByTestId('routes-apply').click();
    await pill.filter({ hasText: `version ${version + 1}` }).waitFor();
    await inline.waitFor({ state: 'hidden' });
    await page.getByTestId('toast-ok').filter({ hasText: `version ${version + 1}` }).waitFor();
    const now = await call(node, 'GET', '/v1/admin/routes', undefined, adminToken);
    assert.equal(now.status, 200);
    assert.equal(now.json.version, version + 1);
    assert.equal(now.json.text, FIXED_ROUTES);
    await page.locator(`[data-testid=routes-versions] li[data-version="${version + 1}"]`).waitFor();

    // History: open the first version and roll back to it (a new version with its text).
    await page.locator(`[data-testid=routes-versions] li[data-version="${version}"]`).click();
    await page.getByTestId('routes-viewer').filter({ hasText: `Version ${version}` }).waitFor();
    await page.getByTestId('routes-rollback').click();
    await pill.filter({ hasText: `version ${version + 2}` }).waitFor();
    const rolled = await call(node, 'GET', '/v1/admin/routes', undefined, adminToken);
    assert.equal(rolled.json.version, version + 2);
    assert.equal(rolled.json.comment, `rollback to ${version}`);
  });

  await step('a dead letter (a play event failing its schema) is inspected and replayed', async () => {
    const bad = { id: 'bad-play-1', type: 'play', device_id: 'tv-dl', profile_id: 'p-dl', ts: Date.now(),
      title_id: 't-1', position_ms: -5 };
    const res = await call(node, 'POST', '/v1/events', [bad], ingestToken);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.rejected.length, 1);
    await page.goto(`${url}#/dead-letters`);
    await page.getByTestId('dl-filter').fill('no such reason');
    await page.getByTestId('dl-table').filter({ hasText: 'No dead letter matches this reason' }).waitFor();
    await page.getByTestId('dl-filter').fill('position_ms');
    const row = page.locator('[data-testid=dl-table] tbody tr').filter({ hasText: 'position_ms' }).first();
    await row.waitFor();
    const id = Number(await row.getAttribute('data-id'));
    await row.click();
    await page.getByTestId('dl-event-json').filter({ hasText: '"bad-play-1"' }).waitFor();
    await row.locator('input[type=checkbox]').check();
    await page.getByTestId('dl-replay-selected').click();
    await page.getByTestId('toast-ok').filter({ hasText: 'Replayed 1 dead letter' }).waitFor();
    await page.locator(`[data-testid=dl-table] tbody tr[data-id="${id}"]`).filter({ hasText: 'replayed' }).waitFor();
    const listed = await call(node, 'GET', '/v1/admin/dead-letters', undefined, adminToken);
    assert.equal(listed.json.items.find((d) => d.id === id).replayed, true);
  });

  await step('the other pages render from the live feed and the query API', async () => {
    await page.goto(`${url}#/sinks`);
    await page.locator('[data-testid=sinks] [data-sink=events]').filter({ hasText: 'healthy' }).waitFor();
    await page.goto(`${url}#/actors`);
    await page.locator('[data-testid=actor-kinds] [data-kind=device]').waitFor();
    await page.getByTestId('profile-id').fill('p-1');
    await page.getByTestId('profile-id').press('Enter');
    await page.getByTestId('continue-watching').waitFor();
    await page.goto(`${url}#/trending`);
    await page.locator('[data-testid=trending] tbody tr').first().waitFor();
    if (adminToken) {
      await page.goto(`${url}#/access`);
      await page.locator('[data-testid=audit] tr').filter({ hasText: 'routes.update' }).first().waitFor();
      await page.locator('[data-testid=endpoints] tr').filter({ hasText: '/console/{file}' }).filter({ hasText: 'open' }).waitFor();
    }
  });

  await step('the cluster page of a single node lists it as the one member, up, with every key, and says how to start a cluster', async () => {
    await page.goto(`${url}#/cluster`);
    const row = page.locator('[data-testid=cluster-members] tbody tr[data-node=console-node]');
    await row.filter({ hasText: 'up' }).waitFor();
    assert.equal(await page.locator('[data-testid=cluster-members] tbody tr').count(), 1);
    assert.equal(await row.getAttribute('data-state'), 'up');
    assert.equal(await row.getAttribute('data-self'), 'true');
    assert.equal(await row.locator('.self-mark').textContent(), 'self');
    assert.match(await row.locator('.share').textContent(), /^100\.0%$/);
    await page.getByTestId('cluster-hint').filter({ hasText: 'sluice cluster up --nodes 3' }).waitFor();
    assert.match(await page.getByTestId('cluster-self').textContent(), /· ready ·/, 'this node\'s health');
    assert.equal(await page.getByTestId('cluster-forwarders').count(), 0, 'no forwarders on a single node');
    assert.equal(await page.getByTestId('chart-forward-backlog').isVisible(), false);
    // With the cluster core in this build, the row comes from its view embedded in the live feed.
    const api = await call(node, 'GET', '/v1/cluster', undefined, adminToken);
    if (api.status === 200) {
      assert.equal(api.json.enabled, false);
      const fed = await page.evaluate(async () => (await import('/console/js/live.js')).live.latest.cluster);
      assert.equal(fed && fed.enabled, false, `live feed's cluster: ${JSON.stringify(fed)}`);
      assert.equal(fed.members.length, 1);
      assert.equal(fed.members[0].name, 'console-node');
    }
    await page.goto(`${url}#/overview`);
    await page.getByTestId('stat-accepted').locator('.v').filter({ hasNotText: /^—$/ }).waitFor();
    assert.equal(await page.getByTestId('cluster-badge').isVisible(), false, 'no cluster badge on a single node');
  });

  await step('a clustered snapshot renders members with states, shares and gateway links, forwarders, replication and the ring', async () => {
    await page.goto(`${url}#/cluster`);
    await page.locator('[data-testid=cluster-members] tbody tr').first().waitFor();
    const sum = await page.evaluate(async (fixture) => {
      const m = await import('/console/js/cluster.js');
      const box = document.createElement('div');
      box.id = 'cluster-fixture';
      box.append(...m.view(fixture));
      document.getElementById('page').replaceChildren(box);
      return m.summary(fixture);
    }, CLUSTER_FIXTURE);
    assert.deepEqual(sum, { enabled: true, up: 2, total: 3 });
    const box = page.locator('#cluster-fixture');
    const rows = box.locator('[data-testid=cluster-members] tbody tr');
    assert.equal(await rows.count(), 3);
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => [tr.dataset.node, tr.dataset.state])),
      [['node-1', 'up'], ['node-2', 'up'], ['node-3', 'down']]);
    const n1 = box.locator('tr[data-node=node-1]');
    const n3 = box.locator('tr[data-node=node-3]');
    assert.equal(await n1.locator('.self-mark').count(), 1);
    assert.equal(await box.locator('tr[data-node=node-2] .self-mark').count(), 0);
    assert.equal(await n3.locator('.pill').getAttribute('data-state'), 'bad', 'down is red');
    assert.equal(await n1.locator('.pill').getAttribute('data-state'), 'ok', 'up is green');
    assert.match(await n1.locator('.share').textContent(), /^33\.4%$/);
    assert.equal(await n1.locator('.bar > span').evaluate((el) => el.style.width), '33.4%');
    assert.equal(await box.locator('tr[data-node=node-2] a').getAttribute('href'), 'http://127.0.0.1:8082/console/');
    assert.equal(await n3.locator('a').count(), 0, 'a non-http gateway address is not a link');
    assert.match(await n3.textContent(), /4s ago/);
    const fwd = box.locator('[data-testid=cluster-forwarders] tbody tr[data-peer=node-3]');
    assert.deepEqual(await fwd.locator('td').allTextContents(), ['node-3', 'down', '123', '130', '140', '17', '7', '2']);
    assert.equal(await box.locator('[data-testid=cluster-forwarders] tbody tr').count(), 2);
    assert.equal(await box.getByTestId('cluster-up').locator('.v').textContent(), '2/3');
    assert.equal(await box.getByTestId('cluster-ring').locator('.v').textContent(), '5');
    assert.equal(await box.getByTestId('cluster-backlog').locator('.v').textContent(), '17');
    assert.match(await box.getByTestId('cluster-replication').textContent(), /last lag 2 ms/);
    assert.equal(await box.getByTestId('cluster-hint').count(), 0, 'no single-node hint in a cluster');
    await page.goto(`${url}#/overview`); // the real page again
  });

  await step('a full-page screenshot of the overview is written and kept as docs/console.png', async () => {
    await page.goto(`${url}#/overview`);
    await waitFor(`${LIVE_SAMPLES_FOR_SCREENSHOT} live samples on the charts`, async () =>
      Number(await page.locator('#page').getAttribute('data-samples')) >= LIVE_SAMPLES_FOR_SCREENSHOT, 30000);
    // Clear the toasts of the earlier steps (they would cover the charts).
    await page.evaluate(() => document.getElementById('toasts').replaceChildren());
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    const size = fs.statSync(screenshot).size;
    assert.ok(size > 20000, `screenshot of ${size} bytes`);
    fs.copyFileSync(screenshot, path.join(sourceRoot, 'docs', 'console.png'));
    console.log(`# screenshot: ${screenshot} (${size} bytes), copied to docs/console.png`);
  });

  if (adminToken) {
    await step('logging out ends the session: the live feed closes and data needs a login again', async () => {
      await page.click('#logout');
      await page.getByTestId('login-form').waitFor();
      assert.deepEqual(await context.cookies(), [], 'the session cookie is cleared');
      const status = await page.evaluate(async () => (await fetch('/v1/admin/routes')).status);
      assert.equal(status, 401);
      await page.locator('#live-status[data-state=idle]').waitFor({ state: 'attached' });
    });
  }

  assert.deepEqual(pageErrors, [], 'no script errors or CSP violations in the page');
  trafficOn = false;
  await traffic;
  await browser.close();
  browser = null;
  const exit = await stopNode(node);
  assert.equal(exit.code, 0, `node exit ${JSON.stringify(exit)}`);
  fs.rmSync(dataDir, { recursive: true, force: true });
  console.log('console: all steps passed');
} catch (e) {
  trafficOn = false;
  console.error(e.stack || e.message);
  if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
  if (node) console.error(`node stderr (tail):\n${node.stderr.split('\n').slice(-30).join('\n')}`);
  if (browser) await browser.close().catch(() => {});
  if (node) await stopNode(node, 'SIGKILL').catch(() => {});
  process.exit(1);
}
