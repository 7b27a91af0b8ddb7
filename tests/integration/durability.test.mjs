// Proof from the syscalls that `storage.durability = sync` makes a batch durable before its ack, and
// that the same check fails with `durability = none` (so it can fail).
//
//   node tests/integration/durability.test.mjs <path/to/sluice> <source root>
//
// Runs a real node under `strace -f`, posts N batches one at a time (each with a unique marker in
// its event id and an attribute large enough to put the log record in LMDB overflow pages, whose
// bytes start with the record), and checks in the trace, for each batch i:
//   1. W: a write (pwrite64/pwritev/writev) to a descriptor on lmdb/data.mdb carrying marker i;
//   2. S: an fdatasync/fsync of a descriptor on data.mdb that starts after W returned;
//   3. M: the meta-page write (LMDB's commit point) through a data.mdb descriptor opened with
//      O_DSYNC, after S;
//   4. R: the HTTP/1.1 200 response of batch i (a write/sendmsg on the client socket) after S and M.
// Ordering is by the trace's line order, which is causal here: a traced thread stays stopped at
// syscall exit until strace has printed it, and the response is written only after the log thread
// returned from the commit. Descriptors are mapped to files through the traced openat/close calls.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fail, request, startReadyNode, step, stopNode, testArgs } from './lib/harness.mjs';

const { binary, sourceRoot } = testArgs(import.meta.url);
const confFile = path.join(sourceRoot, 'conf', 'sluice.conf');
const BATCHES = 8;
const PAD_BYTES = 3000; // > half an LMDB page: the record goes to overflow pages

const TRACED = 'openat,close,fdatasync,fsync,msync,pwrite64,pwritev,write,writev,sendto,sendmsg';

function straceUsable() {
  const probe = spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { encoding: 'utf8' });
  if (probe.error) return `strace is not installed (${probe.error.message}); scripts/install-deps.sh installs it`;
  if (probe.status !== 0) {
    return `strace cannot trace here (ptrace not permitted?): ${probe.stderr.trim()}; run this test ` +
           'where ptrace is allowed (e.g. docker --cap-add=SYS_PTRACE)';
  }
  return '';
}

/// Parses an `strace -f -ttt -T` file into calls: { name, fd, args, result, start, end } where
/// start/end are line indexes (entry and exit as strace printed them).
function parseTrace(text) {
  const calls = [];
  const pending = new Map(); // pid → { head, start }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; ++i) {
    const m = /^(\d+)\s+\d+\.\d+\s+(.*)$/.exec(lines[i]);
    if (!m) continue;
    const [, pid, rest] = m;
    let full;
    let start = i;
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      const head = pending.get(pid);
      if (!head) continue;
      pending.delete(pid);
      full = head.head + resumed[1];
      start = head.start;
    } else if (rest.endsWith('<unfinished ...>')) {
      pending.set(pid, { head: rest.slice(0, -'<unfinished ...>'.length), start: i });
      continue;
    } else {
      full = rest;
    }
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)/.exec(full);
    if (!call) continue;
    const fdArg = /^(\d+)/.exec(call[2]);
    calls.push({ name: call[1], fd: fdArg ? Number(fdArg[1]) : -1, args: call[2],
                 result: call[3], start, end: i });
  }
  return calls;
}

/// Checks batches against the trace; returns one problem text per batch that is not proved
/// durable before its ack (empty: all proved).
function checkTrace(calls, markers) {
  const fds = new Map(); // fd → { path, dsync }
  const dataWrites = [];
  const syncs = [];
  const metaWrites = [];
  const responses = [];
  for (const c of calls) {
    if (c.name === 'openat' && Number(c.result) >= 0) {
      const p = /^[^,]+,\s+"([^"]*)",\s+([A-Z_|]+)/.exec(c.args);
      if (p) fds.set(Number(c.result), { path: p[1], dsync: /O_DSYNC|O_SYNC/.test(p[2]) });
      continue;
    }
    if (c.name === 'close') {
      fds.delete(c.fd);
      continue;
    }
    const file = fds.get(c.fd);
    const onData = file && file.path.endsWith('/data.mdb');
    if (onData && ['fdatasync', 'fsync'].includes(c.name) && c.result === '0') syncs.push(c);
    if (onData && ['pwrite64', 'pwritev', 'writev', 'write'].includes(c.name)) {
      dataWrites.push(c);
      if (file.dsync) metaWrites.push(c);
    }
    if (!file && ['write', 'writev', 'sendmsg', 'sendto'].includes(c.name) &&
        c.args.includes('HTTP/1.1 200') && c.args.includes('accepted')) {
      responses.push(c);
    }
  }
  if (responses.length !== markers.length) {
    return [`expected ${markers.length} HTTP 200 responses in the trace, found ${responses.length}`];
  }
  const problems = [];
  markers.forEach((marker, i) => {
    const r = responses[i];
    const w = dataWrites.find((x) => x.args.includes(marker));
    if (!w) {
      problems.push(`batch ${i} (${marker}): no write of it to data.mdb in the trace`);
      return;
    }
    if (w.end > r.start) {
      problems.push(`batch ${i}: its response (line ${r.start + 1}) was sent before its log write returned (line ${w.end + 1})`);
      return;
    }
    const s = syncs.find((x) => x.start > w.end && x.end < r.start);
    if (!s) {
      problems.push(`batch ${i}: no fdatasync/fsync of data.mdb between its log write (line ${w.end + 1}) and its response (line ${r.start + 1})`);
      return;
    }
    const m = metaWrites.find((x) => x.start > s.end && x.end < r.start);
    if (!m) problems.push(`batch ${i}: no O_DSYNC meta-page write of data.mdb between the fdatasync (line ${s.end + 1}) and the response (line ${r.start + 1})`);
  });
  return problems;
}

/// Stops the node that `strace` runs: SIGTERM goes to the traced sluice process (strace itself
/// would detach and leave it running); strace exits when its tracee does.
async function stopTraced(node) {
  const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(node.proc.pid)], { encoding: 'utf8' });
  const pids = children.stdout.split('\n').map((x) => Number(x.trim())).filter((x) => x > 0);
  if (pids.length !== 1) {
    await stopNode(node, 'SIGKILL');
    fail(`expected one traced sluice process under strace ${node.proc.pid}, found ${JSON.stringify(pids)}`);
  }
  process.kill(pids[0], 'SIGTERM');
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the traced node did not exit within 30 s of SIGTERM')), 30000);
  });
  try {
    await Promise.race([node.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runMode(mode, dir) {
  const traceFile = path.join(dir, `strace-${mode}.txt`);
  const dataDir = path.join(dir, mode);
  const node = await startReadyNode('strace', [
    '-f', '-ttt', '-T', '-s', '8192', '-e', `trace=${TRACED}`, '-o', traceFile,
    binary, 'serve', `--config-file=${confFile}`, '--gateway.port=0', `--sluice.data-dir=${dataDir}`,
    `--storage.durability=${mode}`,
  ]);
  const markers = [];
  try {
    for (let i = 0; i < BATCHES; ++i) {
      const marker = `durable-${mode}-${i}-${process.pid}`;
      markers.push(marker);
      const res = await request(node, 'POST', '/v1/events', [
        { id: marker, type: 'play', device_id: `tv-${i}`, ts: 1732233600000 + i, pad: 'p'.repeat(PAD_BYTES) },
      ]);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.accepted, 1);
    }
  } finally {
    await stopTraced(node);
  }
  return checkTrace(parseTrace(fs.readFileSync(traceFile, 'utf8')), markers);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-durability-'));
try {
  const why = straceUsable();
  if (why) fail(why);

  await step(`sync: every one of ${BATCHES} acks follows an fdatasync of its log write and the O_DSYNC commit`, async () => {
    const problems = await runMode('sync', dir);
    assert.deepEqual(problems, [], `durability = sync acked a batch before it was durable:\n${problems.join('\n')}`);
  });

  await step('none: the same check fails for every batch (no fsync before any ack)', async () => {
    const problems = await runMode('none', dir);
    assert.equal(problems.length, BATCHES,
                 `with durability = none every batch should fail the check; problems:\n${problems.join('\n')}`);
    for (const p of problems) assert.match(p, /no fdatasync\/fsync of data\.mdb/);
  });

  fs.rmSync(dir, { recursive: true, force: true });
  console.log('durability: all steps passed');
} catch (e) {
  console.error(`FAIL: ${e.stack || e.message}\n(traces kept in ${dir})`);
  process.exit(1);
}
