// Cluster: the nodes, their address, uptime and health. One node until the cluster exists (a later
// issue); the table lists whatever `snapshot.cluster.nodes` names, else this node.

import { live } from './live.js';
import { datetime, duration, empty, h, mount, pill } from './ui.js';

export function render(root) {
  const body = h('div');
  mount(root,
    h('div.page-head', h('h1', 'Cluster'), h('span.sub', 'nodes, key ownership and health')),
    body);
  const unsubscribe = live.subscribe((snap) => {
    const nodes = (snap.cluster && snap.cluster.nodes) || [{ ...snap.node, self: true, owns: 'every key (single node)' }];
    if (!nodes.length) {
      mount(body, empty('No nodes'));
      return;
    }
    mount(body, h('section.card',
      h('header', h('h2', `${nodes.length} node${nodes.length === 1 ? '' : 's'}`)),
      h('table.data', { dataset: { testid: 'cluster-nodes' } },
        h('thead', h('tr', h('th', 'Node'), h('th', 'Address'), h('th', 'Version'), h('th', 'Health'),
          h('th.r', 'Uptime'), h('th', 'Started'), h('th', 'Owns'))),
        h('tbody', nodes.map((n) => h('tr', { dataset: { node: n.id } },
          h('td', h('strong', n.id), n.self ? h('span.faint', ' (this node)') : null),
          h('td.mono', n.address || '—'),
          h('td', n.version || '—'),
          h('td', pill(n.health, n.health)),
          h('td.r', duration(n.uptime_s)),
          h('td', datetime(n.started_ms)),
          h('td', n.owns || '—')))))),
      h('p.faint', 'Nodes will find each other through cluster.seeds and share keys by consistent hashing once the cluster lands; this page then lists every member.'));
  });
  return unsubscribe;
}
