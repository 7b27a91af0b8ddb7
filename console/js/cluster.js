// Cluster: the members (state, address, gateway, last heard, share of the keys), the forwarder to
// each peer (acked/sent/head, backlog, in flight, resent), replication and the ring version, and a
// chart of the forward backlog per peer. Everything comes from the live feed: the node embeds its
// `GET /v1/cluster` document in every snapshot as `cluster` (docs/cluster.md); the page never polls.
//
// `view(snapshot)` is pure (a snapshot in, elements out) so the browser test can render a clustered
// fixture without a cluster; `render(root)` wires it and the chart to the feed.

import { LiveChart } from './chart.js';
import { live } from './live.js';
import { compact, datetime, duration, empty, grouped, h, mount, pill } from './ui.js';

/// Member and forwarder states → the pill colours of ui.js.
const STATE_PILL = { up: 'ok', down: 'bad', joining: 'warn' };

/// { enabled, up, total } of a snapshot's cluster view (a single node without one).
export function summary(snap) {
  const c = snap && snap.cluster;
  if (!c || !c.enabled || !Array.isArray(c.members)) return { enabled: false, up: 1, total: 1 };
  return { enabled: true, up: c.members.filter((m) => m.state === 'up').length, total: c.members.length };
}

/// The members to list: the cluster view's, else this node alone (a node without a view yet).
function membersOf(snap) {
  const c = snap.cluster;
  if (c && Array.isArray(c.members) && c.members.length) return c.members;
  return [{ name: snap.node.id, address: '', http: '', state: 'up', self: true, last_heard_ms: 0, share: 1 }];
}

/// Only http(s) URLs become links (the document comes from peers; no `javascript:` hrefs).
function gatewayLink(url) {
  if (typeof url !== 'string' || !/^https?:\/\/[^\s/]+/i.test(url)) return url ? h('span.mono', url) : '—';
  const base = url.replace(/\/+$/, '');
  return h('a.mono', { href: `${base}/console/`, target: '_blank', rel: 'noopener noreferrer', title: `${base}/console/` },
    base.replace(/^https?:\/\//i, ''));
}

function lastHeard(m) {
  if (m.self) return h('span.faint', 'this node');
  const ms = m.last_heard_ms;
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms ago`;
  return `${duration(ms / 1000)} ago`;
}

function shareCell(share) {
  const pct = Math.max(0, Math.min(1, Number(share) || 0)) * 100;
  const fill = h('span');
  fill.style.width = `${pct.toFixed(1)}%`; // CSSOM, not a style attribute: the CSP allows it
  return h('div.share', h('div.bar', fill), h('span.num', `${pct.toFixed(1)}%`));
}

function statCard(label, value, foot, testid) {
  return h('div.card.stat', { dataset: { testid } }, h('div.label', label), h('div.value', h('span.v', value)),
    h('div.foot', foot || '\u00a0'));
}

/// The page's content for one snapshot (without the chart): summary, members, forwarders, or the
/// single-node view with the hint how to start a cluster.
export function view(snap) {
  const c = snap.cluster || null;
  const enabled = !!(c && c.enabled);
  const members = membersOf(snap);
  const out = [];
  if (snap.cluster_error) {
    out.push(h('div.card.notice', { dataset: { testid: 'cluster-error' } },
      pill('cluster view unavailable', 'bad'), ' ', snap.cluster_error));
  }

  if (enabled) {
    const s = summary(snap);
    const forwarders = Array.isArray(c.forwarders) ? c.forwarders : [];
    const backlog = forwarders.reduce((a, f) => a + (f.backlog_events || 0), 0);
    const rep = c.replication || {};
    out.push(h('div.grid.stats',
      statCard('Members up', `${s.up}/${s.total}`, s.up === s.total ? 'every member up' : `${s.total - s.up} not up`, 'cluster-up'),
      statCard('Ring version', grouped(c.ring_version), `${c.replicas ?? '—'} copies of each key`, 'cluster-ring'),
      statCard('Forward backlog', compact(backlog), `events to ${forwarders.length} peer${forwarders.length === 1 ? '' : 's'}`, 'cluster-backlog'),
      statCard('Replication', grouped(rep.pending_batches), `batches pending · last lag ${rep.last_lag_ms ?? '—'} ms`, 'cluster-replication')));
  }

  out.push(h('section.card',
    h('header', h('h2', `${members.length} member${members.length === 1 ? '' : 's'}`),
      h('span.unit', enabled ? `self: ${c.self}` : 'single node'),
      h('span.right.faint', { dataset: { testid: 'cluster-self' } }, `this node: ${snap.node.version || '—'} · ${snap.node.health} · up ${duration(snap.node.uptime_s)} · since ${datetime(snap.node.started_ms)}`)),
    h('table.data', { dataset: { testid: 'cluster-members' } },
      h('thead', h('tr', h('th', 'Member'), h('th', 'State'), h('th', 'Address'), h('th', 'Gateway'),
        h('th', 'Last heard'), h('th', 'Share of keys'))),
      h('tbody', members.map((m) => h('tr', { dataset: { node: m.name, state: m.state, self: m.self ? 'true' : 'false' } },
        h('td', h('strong', m.name), m.self ? h('span.self-mark', { title: 'the node serving this console' }, 'self') : null),
        h('td', pill(m.state, STATE_PILL[m.state] || 'info')),
        h('td.mono', m.address || '—'),
        h('td', gatewayLink(m.http || (m.self && !enabled && snap.node.address ? `${location.protocol}//${snap.node.address}` : ''))),
        h('td', lastHeard(m)),
        h('td', shareCell(m.share)))))),
    enabled ? null : h('p.hint', { dataset: { testid: 'cluster-hint' } },
      'Single node: it owns every key. Start a cluster with ', h('code', 'sluice cluster up --nodes 3'),
      ' (docs/cluster.md).')));

  if (enabled) {
    const forwarders = Array.isArray(c.forwarders) ? c.forwarders : [];
    out.push(h('section.card.spaced',
      h('header', h('h2', 'Forwarders'), h('span.unit', 'events this node sends to the owners of their keys')),
      forwarders.length ? h('table.data', { dataset: { testid: 'cluster-forwarders' } },
        h('thead', h('tr', h('th', 'Peer'), h('th', 'State'), h('th.r', 'Acked'), h('th.r', 'Sent'), h('th.r', 'Head'),
          h('th.r', 'Backlog'), h('th.r', 'In flight'), h('th.r', 'Resent'))),
        h('tbody', forwarders.map((f) => h('tr', { dataset: { peer: f.peer, state: f.state } },
          h('td', h('strong', f.peer)),
          h('td', pill(f.state, STATE_PILL[f.state] || 'info')),
          h('td.r', grouped(f.acked_upto)),
          h('td.r', grouped(f.sent_upto)),
          h('td.r', grouped(f.head)),
          h(`td.r${f.backlog_events > 0 ? '.warn' : ''}`, grouped(f.backlog_events)),
          h('td.r', grouped(f.in_flight_events)),
          h(`td.r${f.resent_events > 0 ? '.warn' : ''}`, grouped(f.resent_events))))))
        : empty('No peers', 'The forwarders appear once another member is known.')));
  }
  return out;
}

export function render(root) {
  const body = h('div', empty('Waiting for the live feed…'));
  const chartBody = h('div.chart', { dataset: { testid: 'chart-forward-backlog' } });
  const chartCard = h('section.card.spaced',
    h('header', h('h2', 'Forward backlog per peer'), h('span.unit', 'events')), chartBody);
  chartCard.hidden = true;
  mount(root,
    h('div.page-head', h('h1', 'Cluster'), h('span.sub', 'members, key ownership, forwarding and replication')),
    body, chartCard);

  // One series per peer: rebuilt when the set of peers changes.
  let chart = null;
  let peerKey = null;
  const rebuild = (peers) => {
    if (chart) chart.destroy();
    chart = null;
    mount(chartBody);
    if (!peers.length) {
      mount(chartBody, h('div.chart-empty', 'No peers yet'));
      return;
    }
    chart = new LiveChart(chartBody, {
      format: compact,
      height: 180,
      series: peers.map((p) => ({
        label: p,
        value: (s) => {
          const f = s.cluster && Array.isArray(s.cluster.forwarders) && s.cluster.forwarders.find((x) => x.peer === p);
          return f ? f.backlog_events : null;
        },
      })),
    });
  };

  const unsubscribe = live.subscribe((snap, history) => {
    mount(body, view(snap));
    const enabled = summary(snap).enabled;
    chartCard.hidden = !enabled;
    if (!enabled) return;
    const peers = (snap.cluster.forwarders || []).map((f) => f.peer);
    const key = peers.join('\u0000');
    if (key !== peerKey) {
      peerKey = key;
      rebuild(peers);
    }
    if (chart) chart.update(history);
  });
  return () => {
    unsubscribe();
    if (chart) chart.destroy();
  };
}
