// Access control on a real node with tokens: the whole endpoint table the node serves (read from
// GET /v1/admin/endpoints) answers 401 without a token, 403 with a token lacking the scope and
// neither with the right one; console sessions (login, CSRF, the WebSocket Origin check, logout,
// expiry); and the audit log of a route change and a failed login.
//
//   node tests/integration/access_scopes.test.mjs <path/to/sluice> <source root>

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  baseUrl, request, requireNode, startReadyNode, step, stopNode, testArgs, waitFor
} from './lib/harness.mjs';

const { binary } = testArgs(import.meta.url);
const WebSocket = requireNode('ws');

const SESSION_TTL_S = 3;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-access-it-'));
const confFile = path.join(dataDir, 'access.conf');

/// `sluice token hash` for `token` (read from stdin); returns the [tokens.<name>] section.
function tokenSection(name, token, scopes) {
  const res = spawnSync(binary, ['token', 'hash', `--name=${name}`, `--scopes=${scopes}`,
                                 '--iterations=1000'], { input: `${token}\n`, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.ok(!res.stdout.includes(token), 'the token itself is not printed when read from stdin');
  assert.match(res.stdout, /^\[tokens\.\w+\]\nhash = "pbkdf2-sha256\$1000\$[^"]+"\nscopes = \[/);
  return res.stdout;
}

const tokens = { ingest: 'tok-devices-secret', read: 'tok-dash-secret', admin: 'tok-ops-secret' };
fs.writeFileSync(confFile, `
[sluice]
node = "access-node"
data-dir = "${dataDir}"

[gateway]
port = 0

[sinks.events]
kind = "file"
path = "sinks/events.ndjson"
flush-interval = 20ms

[routes._unmatched]
sinks = ["events"]

${tokenSection('devices', tokens.ingest, 'ingest')}
${tokenSection('dash', tokens.read, 'read')}
${tokenSection('ops', tokens.admin, 'admin')}
`);

const bearer = (t) => ({ authorization: `Bearer ${t}` });
/// A token lacking `scope` (admin implies read, so read endpoints get the ingest token).
const wrongFor = { ingest: tokens.read, read: tokens.ingest, admin: tokens.read };

/// The status of a WebSocket upgrade (101 when it opened).
function upgradeStatus(node, urlPath, headers = {}, origin = undefined) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${node.port}${urlPath}`, { headers, origin });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no answer to ${urlPath}`)); },
                             10000);
    ws.on('open', () => { clearTimeout(timer); ws.close(); resolve({ status: 101 }); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, body }); });
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/// One request to a table row: a WebSocket upgrade or an HTTP request with an empty JSON body.
async function call(node, row, headers) {
  const urlPath = row.pattern.replace('{n}', '1').replace('{type}', 'play').replace(/\{\w+\}/g, 'x');
  if (row.websocket) return upgradeStatus(node, urlPath, headers, `${baseUrl(node)}`);
  const body = row.method === 'GET' || row.method === 'HEAD' ? undefined : '{}';
  const res = await request(node, row.method, urlPath, body, 'application/json', headers);
  return { status: res.status, body: res.text, headers: res.headers, json: res.json };
}

async function audit(node, limit = 50) {
  const res = await request(node, 'GET', `/v1/admin/audit?limit=${limit}`, undefined, undefined,
                            bearer(tokens.admin));
  assert.equal(res.status, 200, res.text);
  return res.json.records;
}

async function login(node, token) {
  const res = await request(node, 'POST', '/v1/auth/login', { token });
  return res;
}

let node;
try {
  await step('a node with tokens starts without making a bootstrap token', async () => {
    node = await startReadyNode(binary, ['serve', `--config-file=${confFile}`,
                                         '--auth.anonymous=[]', `--auth.session-ttl=${SESSION_TTL_S}s`,
                                         '--auth.audited-failures-per-s=0']);
    assert.ok(!node.stderr.includes('shown once'), node.stderr);
    assert.ok(!fs.existsSync(path.join(dataDir, 'admin-token.hash')));
  });

  let rows;
  await step('GET /v1/admin/endpoints lists the whole table with scopes (admin only)', async () => {
    const res = await request(node, 'GET', '/v1/admin/endpoints', undefined, undefined,
                              bearer(tokens.admin));
    assert.equal(res.status, 200, res.text);
    rows = res.json.endpoints;
    const has = (m, p, s) => assert.ok(rows.some((r) => r.method === m && r.pattern === p && r.scope === s),
                                       `${m} ${p} ${s} missing from ${JSON.stringify(rows)}`);
    has('POST', '/v1/events', 'ingest');
    has('GET', '/v1/stream', 'ingest');
    has('GET', '/v1/admin/live', 'admin');
    has('GET', '/metrics', 'read');
    has('GET', '/healthz', 'open');
    has('PUT', '/v1/admin/routes', 'admin');
    has('POST', '/v1/auth/login', 'open');
    has('GET', '/v1/admin/audit', 'admin');
    has('GET', '/v1/admin/endpoints', 'admin');
    for (const r of rows) assert.ok(['open', 'ingest', 'read', 'admin'].includes(r.scope), JSON.stringify(r));
    assert.ok(rows.length >= 20, `only ${rows.length} endpoints`);
  });

  await step('every non-open endpoint: 401 without a token, 403 with a wrong scope, neither with the right one', async () => {
    let checked = 0;
    for (const row of rows) {
      const what = `${row.method} ${row.pattern}`;
      if (row.scope === 'open') continue;
      const none = await call(node, row, {});
      assert.equal(none.status, 401, `${what} without a token: ${none.status} ${none.body}`);
      if (!row.websocket) {
        assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/, what);
        assert.equal(none.json.required, row.scope, `${what}: ${none.body}`);
      }
      const invalid = await call(node, row, bearer('not-a-token'));
      assert.equal(invalid.status, 401, `${what} with an invalid token: ${invalid.status} ${invalid.body}`);
      const wrong = await call(node, row, bearer(wrongFor[row.scope]));
      assert.equal(wrong.status, 403, `${what} with a token lacking ${row.scope}: ${wrong.status} ${wrong.body}`);
      if (!row.websocket) {
        assert.equal(wrong.json.required, row.scope, what);
        assert.ok(Array.isArray(wrong.json.scopes), `${what}: ${wrong.body}`);
      }
      const right = await call(node, row, bearer(tokens[row.scope]));
      assert.ok(right.status !== 401 && right.status !== 403,
                `${what} with scope ${row.scope}: ${right.status} ${right.body}`);
      checked++;
    }
    assert.ok(checked >= 15, `checked only ${checked} endpoints`);
    // an admin token reads too (admin implies read), but does not ingest
    const metrics = await request(node, 'GET', '/metrics', undefined, undefined, bearer(tokens.admin));
    assert.equal(metrics.status, 200);
    const events = await request(node, 'POST', '/v1/events', { type: 'a', device_id: 'd', ts: 1 },
                                 'application/json', bearer(tokens.admin));
    assert.equal(events.status, 403, events.text);
    // open endpoints need nothing
    assert.equal((await request(node, 'GET', '/healthz')).status, 200);
  });

  await step('a failed login is 401, counted and audited', async () => {
    const res = await login(node, 'wrong-token');
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json.invalid, 'token');
    const records = await audit(node);
    assert.ok(records.some((r) => r.action === 'auth.login' && r.status === 401 && r.peer === '127.0.0.1'),
              JSON.stringify(records.slice(0, 5)));
    const m = await request(node, 'GET', '/metrics', undefined, undefined, bearer(tokens.read));
    assert.match(m.text, /sluice_auth_failures_total\{reason="login"\} [1-9]/);
    assert.match(m.text, /sluice_auth_failures_total\{reason="scope"\} [1-9]/);
    assert.match(m.text, /sluice_auth_failures_total\{reason="missing_credentials"\} [1-9]/);
  });

  await step('login sets an HttpOnly SameSite=Strict cookie; GET /v1/auth/session answers the same', async () => {
    const res = await login(node, tokens.admin);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.principal, 'ops');
    assert.deepEqual(res.json.scopes, ['read', 'admin']);
    assert.match(res.json.csrf, /^[A-Za-z0-9_-]{43}$/);
    const cookie = res.headers.get('set-cookie');
    assert.match(cookie, /^sluice_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/$/);
    const session = await request(node, 'GET', '/v1/auth/session', undefined, undefined,
                                  { cookie: cookie.split(';')[0] });
    assert.equal(session.status, 200, session.text);
    assert.deepEqual(session.json, res.json);
    assert.equal((await request(node, 'GET', '/v1/auth/session')).status, 401);
  });

  await step('cookie requests that change state need X-CSRF-Token: missing 403, wrong 403, right passes (and is audited)', async () => {
    const res = await login(node, tokens.admin);
    const cookie = res.headers.get('set-cookie').split(';')[0];
    const csrf = res.json.csrf;
    const current = await request(node, 'GET', '/v1/admin/routes', undefined, undefined, { cookie });
    assert.equal(current.status, 200, current.text);
    const body = { text: current.json.text, comment: 'access test' };
    const missing = await request(node, 'PUT', '/v1/admin/routes', body, 'application/json', { cookie });
    assert.equal(missing.status, 403, missing.text);
    assert.equal(missing.json.missing, 'X-CSRF-Token');
    const wrong = await request(node, 'PUT', '/v1/admin/routes', body, 'application/json',
                                { cookie, 'x-csrf-token': 'x'.repeat(43) });
    assert.equal(wrong.status, 403, wrong.text);
    const right = await request(node, 'PUT', '/v1/admin/routes', body, 'application/json',
                                { cookie, 'x-csrf-token': csrf });
    assert.equal(right.status, 200, right.text);
    const records = await audit(node);
    const change = records.find((r) => r.action === 'routes.update' && r.status === 200);
    assert.ok(change, JSON.stringify(records.slice(0, 5)));
    assert.equal(change.principal, 'ops');
    assert.equal(change.method, 'PUT');
    assert.equal(change.peer, '127.0.0.1');
    assert.match(change.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(records.some((r) => r.action === 'auth.forbidden' && r.summary === 'csrf'));
    const lines = fs.readFileSync(path.join(dataDir, 'audit.log'), 'utf8').trim().split('\n');
    assert.ok(lines.map((l) => JSON.parse(l)).some((r) => r.action === 'routes.update'));
    // bearer requests need no CSRF token
    const viaBearer = await request(node, 'POST', '/v1/admin/routes/rollback', { version: 1 },
                                    'application/json', bearer(tokens.admin));
    assert.equal(viaBearer.status, 200, viaBearer.text);
    assert.ok((await audit(node)).some((r) => r.action === 'routes.rollback' && r.principal === 'ops'));
  });

  await step('a cookie WebSocket upgrade from another origin is refused, from the same origin it is not', async () => {
    const res = await login(node, tokens.admin);
    const cookie = res.headers.get('set-cookie').split(';')[0];
    const cross = await upgradeStatus(node, '/v1/admin/live', { cookie }, 'https://evil.example');
    assert.equal(cross.status, 403, cross.body);
    assert.match(cross.body, /Origin/);
    const same = await upgradeStatus(node, '/v1/admin/live', { cookie }, baseUrl(node));
    assert.ok(same.status !== 401 && same.status !== 403, `${same.status} ${same.body}`);
  });

  await step('logout ends the session and clears the cookie', async () => {
    const res = await login(node, tokens.read);
    const cookie = res.headers.get('set-cookie').split(';')[0];
    assert.equal((await request(node, 'GET', '/v1/trending', undefined, undefined, { cookie })).status, 200);
    const out = await request(node, 'POST', '/v1/auth/logout', undefined, undefined, { cookie });
    assert.equal(out.status, 200, out.text);
    assert.match(out.headers.get('set-cookie'), /^sluice_session=; .*Max-Age=0/);
    assert.equal((await request(node, 'GET', '/v1/auth/session', undefined, undefined, { cookie })).status, 401);
    assert.equal((await request(node, 'GET', '/v1/trending', undefined, undefined, { cookie })).status, 401);
    assert.ok((await audit(node)).some((r) => r.action === 'auth.logout' && r.principal === 'dash'));
  });

  await step(`a session expires after auth.session-ttl (${SESSION_TTL_S}s)`, async () => {
    const res = await login(node, tokens.read);
    const cookie = res.headers.get('set-cookie').split(';')[0];
    const started = Date.now();
    assert.equal((await request(node, 'GET', '/v1/auth/session', undefined, undefined, { cookie })).status, 200);
    await waitFor('the session to expire', async () =>
      (await request(node, 'GET', '/v1/auth/session', undefined, undefined, { cookie })).status === 401,
    (SESSION_TTL_S + 10) * 1000, 200);
    assert.ok(Date.now() - started >= SESSION_TTL_S * 1000 - 200, 'expired too early');
    const denied = await request(node, 'GET', '/v1/trending', undefined, undefined, { cookie });
    assert.equal(denied.status, 401);
    assert.equal(denied.json.invalid, 'session');
  });

  await step('sluice replay and sluice dlq present a token from SLUICE_TOKEN or --token-file; without one they are refused', async () => {
    const history = path.join(dataDir, 'history.ndjson');
    fs.writeFileSync(history, [1, 2, 3].map((i) =>
      JSON.stringify({ id: `cli-${i}`, type: 'play', device_id: 'cli-dev', ts: 1732233600000 + i })).join('\n') + '\n');
    const url = `--url=${baseUrl(node)}`;
    const env = (token) => {
      const e = { ...process.env };
      delete e.SLUICE_TOKEN;
      if (token) e.SLUICE_TOKEN = token;
      return e;
    };
    const refused = spawnSync(binary, ['replay', history, url, '--restart'], { env: env(), encoding: 'utf8' });
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /refused the token \(HTTP 401/);
    const sent = spawnSync(binary, ['replay', history, url, '--restart'],
                           { env: env(tokens.ingest), encoding: 'utf8' });
    assert.equal(sent.status, 0, sent.stderr);
    const tokenFile = path.join(dataDir, 'admin.token');
    fs.writeFileSync(tokenFile, `${tokens.admin}\n`, { mode: 0o600 });
    const listed = spawnSync(binary, ['dlq', 'list', url, `--token-file=${tokenFile}`], { env: env(), encoding: 'utf8' });
    assert.equal(listed.status, 0, listed.stderr);
    const anonymous = spawnSync(binary, ['dlq', 'list', url], { env: env(), encoding: 'utf8' });
    assert.notEqual(anonymous.status, 0, anonymous.stdout);
    assert.match(anonymous.stderr + anonymous.stdout, /401/);
  });

  await step('SIGTERM stops the node', async () => {
    assert.equal((await stopNode(node)).code, 0);
  });
} finally {
  if (node && !node.exited) await stopNode(node, 'SIGKILL').catch(() => {});
}
fs.rmSync(dataDir, { recursive: true, force: true });
