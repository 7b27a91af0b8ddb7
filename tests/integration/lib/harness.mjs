// Shared helpers of the integration tests: start and stop real sluice nodes, wait on conditions
// with deadlines, make HTTP requests, load npm modules from tests/node/node_modules.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/// `require` resolving from tests/node (where ./test.sh installs the npm clients).
/**
 * The arguments every integration test gets from ctest, `node X.test.mjs <sluice binary> <source
 * root>`; prints the usage and exits 2 when one is missing.
 */
export function testArgs(moduleUrl) {
  const [binary, sourceRoot] = process.argv.slice(2);
  if (!binary || !sourceRoot) {
    console.error(`usage: node ${path.basename(fileURLToPath(moduleUrl))} <sluice binary> <source root>`);
    process.exit(2);
  }
  return { binary, sourceRoot };
}

export const requireNode = createRequire(path.join(here, '..', '..', 'node', 'package.json'));
/// tests/node/node_modules (for spawning package binaries such as s3rver).
export const nodeModules = path.join(here, '..', '..', 'node', 'node_modules');

const running = new Set(); // child processes to kill if the test fails
process.on('exit', () => {
  for (const p of running) {
    try { p.kill('SIGKILL'); } catch {}
  }
});

export function fail(msg) {
  throw new Error(msg);
}
/// An error that waitFor does not retry.
export class Fatal extends Error {}

/// Calls `fn` until it returns a truthy value (returned) or the deadline passes (throws).
export async function waitFor(what, fn, timeoutMs = 10000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      fail(`timed out after ${timeoutMs} ms waiting for ${what}` +
           (last instanceof Error ? `: ${last.message}` : ''));
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/// Runs one named step; prints `ok - name (ms)` or rethrows with the step's name.
export async function step(name, fn) {
  const start = Date.now();
  try {
    await fn();
  } catch (e) {
    e.message = `step "${name}" failed: ${e.message}`;
    throw e;
  }
  console.log(`ok - ${name} (${Date.now() - start} ms)`);
}

export function tail(text, n = 30) {
  return text.split('\n').slice(-n).join('\n');
}

/// Access options the harness adds to every `serve` (docs/access.md): anonymous access to every
/// scope unless the test passes its own `--auth.*` option, and no device rate limit unless it
/// passes a `--limits.*` option; so tests that are not about access control need no tokens.
export const openAccessArgs = ['--auth.anonymous=["ingest","read","admin"]'];
export const unlimitedArgs = ['--limits.device-events-per-s=0'];
export function withTestAccess(args) {
  if (!args.includes('serve')) return args;
  const out = [...args];
  if (!args.some((a) => a.startsWith('--auth.'))) out.push(...openAccessArgs);
  if (!args.some((a) => a.startsWith('--limits.'))) out.push(...unlimitedArgs);
  return out;
}

/// Spawns `binary` with `args` (e.g. ['serve', '--config-file=...', '--gateway.port=0', ...]) and
/// collects its output. Returns { proc, stdout, stderr, port, exited, exit (promise) }. A `serve`
/// gets the harness's access options (see `withTestAccess`).
export function spawnNode(binary, args, env = process.env) {
  const proc = spawn(binary, withTestAccess(args), { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(proc);
  const node = { proc, stdout: '', stderr: '', port: 0, exited: null };
  node.exit = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      node.exited = { code, signal };
      resolve(node.exited);
    });
  });
  proc.on('error', (e) => { node.exited = { code: null, signal: null, error: e }; });
  proc.stdout.setEncoding('utf8').on('data', (d) => { node.stdout += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { node.stderr += d; });
  return node;
}

/// Spawns a node (pass `--gateway.port=0`) and waits for its `listening on` line; sets `port`.
export async function startReadyNode(binary, args, env = process.env, timeoutMs = 20000) {
  const node = spawnNode(binary, args, env);
  try {
    node.port = await waitFor('the "listening on" line', () => {
      if (node.exited) throw new Fatal(`node exited before listening: ${JSON.stringify(node.exited)}`);
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(node.stdout);
      return m && Number(m[1]);
    }, timeoutMs, 20);
  } catch (e) {
    e.message += `\nnode stderr (tail):\n${tail(node.stderr)}`;
    throw e;
  }
  return node;
}

/// Sends `signal` and waits for the exit (throws after `timeoutMs`). Returns { code, signal }.
export async function stopNode(node, signal = 'SIGTERM', timeoutMs = 15000) {
  if (node.exited) return node.exited;
  node.proc.kill(signal);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `node did not exit within ${timeoutMs} ms of ${signal}\nstderr tail:\n${tail(node.stderr)}`)),
      timeoutMs);
  });
  try {
    return await Promise.race([node.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/// `https://` for a node started with TLS (set `node.tls = { ca }`, the PEM the client trusts).
export const baseUrl = (node) => `${node.tls ? 'https' : 'http'}://127.0.0.1:${node.port}`;

/// One HTTPS request trusting `tls.ca` (fetch cannot take a CA); resolves like fetch's Response.
function httpsFetch(url, init, tls) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method, headers: init.headers, ca: tls.ca,
                                     signal: init.signal }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: h, text: async () => text });
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/// One HTTP request to the node (HTTPS when `node.tls` is set); `body` objects are sent as JSON.
/// Returns { status, text, json, headers }.
export async function request(node, method, urlPath, body, contentType = 'application/json',
                              headers = {}) {
  const init = { method, signal: AbortSignal.timeout(10000), headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    init.headers['content-type'] = contentType;
  }
  const res = node.tls ? await httpsFetch(baseUrl(node) + urlPath, init, node.tls)
                       : await fetch(baseUrl(node) + urlPath, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

/// Reads a `{...}\n` NDJSON file into objects (missing file: []).
export function readNdjson(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
}
