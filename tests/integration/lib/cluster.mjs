// Helpers of the cluster integration tests (docs/cluster.md): start N real sluice nodes on loopback
// with free ports and a shared seed list, wait until every node sees every other one up, kill and
// restart single members (same data dir, same ports), read /v1/cluster, /metrics and the sinks.
//
// A member is { name, port (gateway), clusterPort, dataDir, args, node } where `node` is the
// harness's spawned process (replaced on restart); `request(member, ...)` from harness.mjs works on
// it since it has `port`.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fail, Fatal, readNdjson, request, spawnNode, stopNode, tail, waitFor } from './harness.mjs';

/// `count` distinct free TCP ports on 127.0.0.1 (held open together, so no two are the same; a
/// port can still be taken by someone else between this call and the node's bind: rare).
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; ++i) {
      const srv = net.createServer();
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/// Spawns `member` (again, after a stop) and waits for its gateway's `listening on` line.
export async function startMember(binary, member, timeoutMs = 30000) {
  const node = spawnNode(binary, member.args);
  member.node = node;
  try {
    await waitFor(`${member.name} listening on ${member.port}`, () => {
      if (node.exited) throw new Fatal(`${member.name} exited before listening: ${JSON.stringify(node.exited)}`);
      return node.stdout.includes(`listening on 127.0.0.1:${member.port}`);
    }, timeoutMs, 20);
  } catch (e) {
    e.message += `\n${member.name} stderr (tail):\n${tail(node.stderr)}`;
    throw e;
  }
  return member;
}

/**
 * Starts an `n`-node cluster: node-1..node-n, data dirs `<dir>/node-i`, free gateway and cluster
 * ports, every node seeded with every cluster port. `config` is the config file (paths in it are
 * relative to the data dir); `extraArgs` go to every node (e.g. `--cluster.failure-timeout=2s`).
 * Does not wait for membership: call `waitAllUp`.
 */
export async function startCluster({ binary, config, dir, n = 3, extraArgs = [] }) {
  const ports = await freePorts(2 * n);
  const seeds = JSON.stringify(Array.from({ length: n }, (_, i) => `127.0.0.1:${ports[n + i]}`));
  const members = [];
  for (let i = 0; i < n; ++i) {
    const name = `node-${i + 1}`;
    const dataDir = path.join(dir, name);
    fs.mkdirSync(dataDir, { recursive: true });
    members.push({
      name, port: ports[i], clusterPort: ports[n + i], dataDir, node: null,
      args: ['serve', `--config-file=${config}`, `--sluice.node=${name}`, `--sluice.data-dir=${dataDir}`,
             `--gateway.port=${ports[i]}`, `--cluster.port=${ports[n + i]}`, `--cluster.seeds=${seeds}`,
             ...extraArgs],
    });
  }
  await Promise.all(members.map((m) => startMember(binary, m)));
  return members;
}

/// `kill -9` (default) or SIGTERM of a member; resolves when the process is gone.
export async function stopMember(member, signal = 'SIGKILL') {
  if (member.node) await stopNode(member.node, signal, 30000);
}

/// Stops every member still running (SIGTERM, then SIGKILL for one that does not exit).
export async function stopCluster(members) {
  await Promise.all(members.map(async (m) => {
    if (!m.node || m.node.exited) return;
    try {
      await stopNode(m.node, 'SIGTERM', 20000);
    } catch {
      await stopNode(m.node, 'SIGKILL');
    }
  }));
}

/// GET /v1/cluster of a member (throws unless 200).
export async function clusterView(member) {
  const r = await request(member, 'GET', '/v1/cluster');
  if (r.status !== 200 || !r.json) throw new Error(`${member.name} /v1/cluster: ${r.status} ${r.text}`);
  return r.json;
}

/// name → state as `view` (a /v1/cluster body) lists them.
export const memberStates = (view) => Object.fromEntries(view.members.map((m) => [m.name, m.state]));

/**
 * Waits until every member of `observers` lists exactly `upNames` up (and every other member
 * it knows not up); optionally with ring_version > `minRingVersion`. Returns the views by name.
 */
export async function waitMembership(observers, upNames, timeoutMs = 20000, minRingVersion = -1) {
  const want = [...upNames].sort().join();
  let views = {};
  await waitFor(`every one of ${observers.map((m) => m.name)} to list ${want} up` +
                (minRingVersion >= 0 ? ` with ring_version > ${minRingVersion}` : ''), async () => {
    views = {};
    for (const m of observers) {
      const v = await clusterView(m);
      views[m.name] = v;
      const up = v.members.filter((x) => x.state === 'up').map((x) => x.name).sort().join();
      if (up !== want) throw new Error(`${m.name} lists up: ${up} (${JSON.stringify(memberStates(v))})`);
      if (v.ring_version <= minRingVersion) throw new Error(`${m.name} ring_version ${v.ring_version}`);
    }
    return true;
  }, timeoutMs, 100);
  return views;
}

/// Every member of the cluster lists every member up.
export const waitAllUp = (members, timeoutMs = 30000, minRingVersion = -1) =>
  waitMembership(members, members.map((m) => m.name), timeoutMs, minRingVersion);

/// Waits until no forwarder of any member has a backlog (everything every node logged is acked
/// by the owners it goes to). Members that are down are skipped as observers.
export async function waitForwardersDrained(members, timeoutMs = 30000) {
  await waitFor('every forwarder drained (backlog_events 0)', async () => {
    for (const m of members) {
      const v = await clusterView(m);
      const busy = (v.forwarders || []).filter((f) => f.state === 'up' && f.backlog_events > 0);
      if (busy.length) throw new Error(`${m.name}: ${JSON.stringify(busy)}`);
    }
    return true;
  }, timeoutMs, 100);
}

/// GET /metrics of a member as text.
export async function metricsText(member) {
  const r = await request(member, 'GET', '/metrics');
  if (r.status !== 200) throw new Error(`${member.name} /metrics: ${r.status}`);
  return r.text;
}

/// The sum of every sample of `name` whose labels include `labels` (0 if none).
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const kv of (m[3] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[kv[1]] = kv[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/// The events of a member's NDJSON file sink (`relPath` below its data dir); [] if none yet.
export function sinkEvents(member, relPath = 'sinks/events.ndjson') {
  try {
    return readNdjson(path.join(member.dataDir, relPath));
  } catch (e) {
    fail(`${member.name}'s sink ${relPath} is not NDJSON: ${e.message}`);
  }
}

/// Runs `fn` over `items` with at most `limit` calls in flight; resolves to the results in order.
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
