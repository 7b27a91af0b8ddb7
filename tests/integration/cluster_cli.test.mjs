// `sluice cluster up|status|down` (docs/cluster.md, "Running a cluster"): a real 3-node cluster on
// loopback in a temporary directory, on free ports. up → status (3 nodes up, shares summing to
// 100%) → a second up refused → down (no process left) → status fails → up again reuses the data
// dirs and the token → down.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fail, step, testArgs, waitFor } from './lib/harness.mjs';

const { binary, sourceRoot } = testArgs(import.meta.url);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cluster-cli-'));
const dir = path.join(work, 'cluster');
const nodes = ['node-1', 'node-2', 'node-3'];
// Every node: no fsync (a test), smaller LMDB maps, so three nodes fit a small machine.
const serveOptions = ['--', '--storage.durability=none', '--storage.initial-map-bytes=67108864'];

/// Runs `sluice cluster ...` from the source root (where conf/sluice.conf's relative paths start);
/// resolves { code, stdout, stderr }.
function cluster(args, timeoutMs = 120000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['cluster', ...args], { cwd: sourceRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`sluice cluster ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const show = (r) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/// The pids in the cluster's pid files.
function pidFiles() {
  const out = {};
  for (const n of nodes) {
    const f = path.join(dir, `${n}.pid`);
    if (fs.existsSync(f)) out[n] = Number(fs.readFileSync(f, 'utf8').trim());
  }
  return out;
}

/// Alive: /proc/<pid> exists and is not a zombie.
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

let started = []; // pids to kill if the test fails midway
process.on('exit', () => {
  if (started.some(alive)) {
    spawnSync(binary, ['cluster', 'down', '--dir', dir, '--timeout', '10s'], { cwd: sourceRoot });
    for (const pid of started) {
      try { process.kill(pid, 'SIGKILL'); } catch {}
    }
  }
});

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/// A base port P with P+1..P+3 (gateways) and P+101..P+103 (cluster ports) free.
async function freeBasePort() {
  for (let attempt = 0; attempt < 200; ++attempt) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    let ok = true;
    for (const p of [1, 2, 3, 101, 102, 103]) ok = ok && await portFree(base + p);
    if (ok) return base;
  }
  fail('no free base port found');
}

let base;

await step('bad arguments are refused with exit 2, naming the argument', async () => {
  const r = await cluster(['up', '--nodes', '0', '--dir', dir]);
  if (r.code !== 2 || !r.stderr.includes('--nodes must be between 1 and 99')) fail(show(r));
  const r2 = await cluster(['status', '--dir', dir, '--nodes', '3']);
  if (r2.code !== 2 || !r2.stderr.includes('not an option of `cluster status`')) fail(show(r2));
  if (fs.existsSync(dir)) fail(`${dir} was created by a refused command`);
});

await step('status and down of a directory without a cluster exit 1 and say so', async () => {
  for (const cmd of ['status', 'down']) {
    const r = await cluster([cmd, '--dir', dir]);
    if (r.code !== 1 || !r.stderr.includes(`no cluster in ${dir}`)) fail(`${cmd}: ${show(r)}`);
  }
});

await step('cluster up --nodes 3 starts three nodes that see each other up', async () => {
  base = await freeBasePort();
  const r = await cluster(['up', '--nodes', '3', '--dir', dir, '--base-port', String(base),
                           '--timeout', '90s', ...serveOptions]);
  started = Object.values(pidFiles());
  if (r.code !== 0) fail(show(r));
  for (let i = 1; i <= 3; ++i) {
    const row = new RegExp(`^node-${i}\\s+\\d+\\s+http://127\\.0\\.0\\.1:${base + i}\\s+127\\.0\\.0\\.1:${base + 100 + i}\\s+` +
                           `${dir}/node-${i}\\s+${dir}/node-${i}\\.log$`, 'm');
    if (!row.test(r.stdout)) fail(`no table row for node-${i} (${row}):\n${show(r)}`);
  }
  const token = fs.readFileSync(path.join(dir, 'admin-token'), 'utf8').trim();
  if (!r.stdout.includes(`admin token (shown once`) || !r.stdout.includes(token)) fail(`token not printed once:\n${show(r)}`);
  const mode = fs.statSync(path.join(dir, 'admin-token')).mode & 0o777;
  if (mode !== 0o600) fail(`admin-token has mode ${mode.toString(8)}, want 600`);
  if (started.length !== 3 || !started.every(alive)) fail(`pid files ${JSON.stringify(pidFiles())}, not 3 live nodes`);
  for (const n of nodes) {
    const conf = fs.readFileSync(path.join(dir, `${n}.conf`), 'utf8');
    if (!conf.includes('[tokens.sluice-cluster-up]')) fail(`${n}.conf lacks the token section`);
  }
  // The token works on every node, and /v1/cluster lists the three members up.
  for (let i = 1; i <= 3; ++i) {
    const res = await fetch(`http://127.0.0.1:${base + i}/v1/cluster`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.json();
    const up = body.members.filter((m) => m.state === 'up').map((m) => m.name).sort();
    if (res.status !== 200 || body.self !== `node-${i}` || up.join() !== nodes.join()) {
      fail(`node-${i} /v1/cluster: ${res.status} ${JSON.stringify(body)}`);
    }
  }
});

await step('cluster status exits 0 listing 3 nodes up with shares summing to 100%', async () => {
  const r = await cluster(['status', '--dir', dir]);
  if (r.code !== 0) fail(show(r));
  let sum = 0;
  for (let i = 1; i <= 3; ++i) {
    const m = new RegExp(`^node-${i}\\s+pid \\d+\\s+http://127\\.0\\.0\\.1:${base + i}\\s+up\\s+([\\d.]+)%\\s+.*\\sready\\s*$`, 'm')
      .exec(r.stdout);
    if (!m) fail(`no "up ... ready" row for node-${i}:\n${show(r)}`);
    sum += Number(m[1]);
  }
  if (Math.abs(sum - 100) > 0.5) fail(`shares sum to ${sum}%:\n${r.stdout}`);
  if (!r.stdout.includes('all 3 nodes up')) fail(show(r));
});

await step('a second cluster up is refused while the cluster runs', async () => {
  const before = pidFiles();
  const r = await cluster(['up', '--nodes', '3', '--dir', dir, '--base-port', String(base)]);
  if (r.code !== 1 || !r.stderr.includes(`a cluster is already running in ${dir}`) ||
      !r.stderr.includes(`node-1 (pid ${before['node-1']})`)) fail(show(r));
  if (JSON.stringify(pidFiles()) !== JSON.stringify(before)) fail('the refused up changed the pid files');
  if (!Object.values(before).every(alive)) fail('the refused up stopped a node');
});

await step('cluster down stops every node and removes the pid files', async () => {
  const pids = Object.values(pidFiles());
  const r = await cluster(['down', '--dir', dir, '--timeout', '30s']);
  if (r.code !== 0) fail(show(r));
  for (const n of nodes) {
    if (!new RegExp(`^${n}: pid \\d+ stopped \\(SIGTERM\\) after`, 'm').test(r.stdout)) fail(`${n} not stopped by SIGTERM:\n${show(r)}`);
  }
  const left = pids.filter(alive);
  if (left.length) fail(`processes left after down: ${left}`);
  if (Object.keys(pidFiles()).length) fail(`pid files left: ${JSON.stringify(pidFiles())}`);
});

await step('cluster status after down exits 1 and shows the nodes not running', async () => {
  const r = await cluster(['status', '--dir', dir]);
  if (r.code !== 1) fail(show(r));
  for (const n of nodes) {
    if (!new RegExp(`^${n}\\s+not running\\s.*unreachable`, 'm').test(r.stdout)) fail(`${n}:\n${show(r)}`);
  }
  const again = await cluster(['down', '--dir', dir]);
  if (again.code !== 0 || !again.stdout.includes('node-1: not running')) fail(`second down: ${show(again)}`);
});

await step('cluster up after down reuses the data dirs and the admin token', async () => {
  const token = fs.readFileSync(path.join(dir, 'admin-token'), 'utf8').trim();
  const lmdb = path.join(dir, 'node-2', 'lmdb');
  if (!fs.existsSync(lmdb)) fail(`${lmdb} missing after the first run`);
  const inode = fs.statSync(lmdb).ino;
  const r = await cluster(['up', '--nodes', '3', '--dir', dir, '--base-port', String(base),
                           '--timeout', '90s', ...serveOptions]);
  started = Object.values(pidFiles());
  if (r.code !== 0) fail(show(r));
  if (!r.stdout.includes('admin token: reused') || r.stdout.includes(token)) fail(`token not reused quietly:\n${show(r)}`);
  if (fs.statSync(lmdb).ino !== inode) fail('node-2 got a new data dir');
  const s = await cluster(['status', '--dir', dir]);
  if (s.code !== 0) fail(show(s));
});

await step('cluster down kills a node that ignores SIGTERM after the timeout', async () => {
  const pids = pidFiles();
  process.kill(pids['node-3'], 'SIGSTOP'); // a stopped process keeps SIGTERM pending
  const d = await cluster(['down', '--dir', dir, '--timeout', '1s']);
  if (d.code !== 0) fail(show(d));
  if (!new RegExp(`^node-3: pid ${pids['node-3']} killed \\(SIGKILL: no exit within 1000 ms of SIGTERM\\)`, 'm').test(d.stdout)) {
    fail(`node-3 not reported killed:\n${show(d)}`);
  }
  for (const n of ['node-1', 'node-2']) {
    if (!new RegExp(`^${n}: pid ${pids[n]} stopped \\(SIGTERM\\)`, 'm').test(d.stdout)) fail(`${n}:\n${show(d)}`);
  }
  const left = started.filter(alive);
  if (left.length) fail(`processes left after down: ${left}`);
  if (Object.keys(pidFiles()).length) fail(`pid files left: ${JSON.stringify(pidFiles())}`);
});

fs.rmSync(work, { recursive: true, force: true });
