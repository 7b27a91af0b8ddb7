// Overview: the numbers an operator reads at a glance and live charts of throughput, ack latency,
// rejections and consumer backlog, all from the live feed.

import { LiveChart } from './chart.js';
import { summary as clusterSummary } from './cluster.js';
import { live } from './live.js';
import { compact, duration, empty, grouped, h, latency, mount, stat } from './ui.js';

const fmtRate = (v) => compact(v);
const fmtMs = (v) => latency(v).join(' ');

export function render(root) {
  const sIn = stat('Events in', 'stat-in');
  const sOut = stat('Events out', 'stat-out');
  const sAccepted = stat('Accepted total', 'stat-accepted');
  const sBacklog = stat('Backlog', 'stat-backlog');
  const sP99 = stat('Ack latency p99', 'stat-p99');
  const sUptime = stat('Uptime', 'stat-uptime');

  const chartBox = (title, unit, testid) => {
    const body = h('div.chart', { dataset: { testid } });
    return { card: h('section.card', h('header', h('h2', title), h('span.unit', unit)), body), body };
  };
  const cThroughput = chartBox('Throughput', 'events/s', 'chart-throughput');
  const cLatency = chartBox('Ack latency', 'p50 · p99', 'chart-latency');
  const cRejections = chartBox('Rejections', 'events/s', 'chart-rejections');
  const cBacklog = chartBox('Backlog per consumer', 'events', 'chart-backlog');
  const reasons = h('div');
  // "cluster: 3/3 up", only when the node is part of a cluster; links to the cluster page.
  const clusterBadge = h('a.pill', { href: '#/cluster', dataset: { testid: 'cluster-badge' }, title: 'members up / members' });
  clusterBadge.hidden = true;
  const waiting = h('div.empty', h('strong', 'Waiting for the live feed…'), h('span', 'The node pushes a snapshot every second over /v1/admin/live.'));

  mount(root,
    h('div.page-head', h('h1', 'Overview'), h('span.sub', 'live, pushed by the node every second'), clusterBadge),
    waiting,
    h('div.grid.stats', sIn.el, sOut.el, sAccepted.el, sBacklog.el, sP99.el, sUptime.el),
    h('div.grid.charts', cThroughput.card, cLatency.card, cRejections.card, cBacklog.card),
    h('section.card', h('header', h('h2', 'Rejections by reason'), h('span.unit', 'since start')), reasons));

  const throughput = new LiveChart(cThroughput.body, {
    format: fmtRate,
    series: [
      { label: 'in', value: (s) => s.ingest.in_per_s },
      { label: 'out (delivered)', value: (s) => s.out.per_s },
    ],
  });
  const lat = new LiveChart(cLatency.body, {
    format: fmtMs,
    series: [
      { label: 'p50', value: (s) => s.ack_latency_ms.p50 },
      { label: 'p99', value: (s) => s.ack_latency_ms.p99 },
    ],
  });
  const rej = new LiveChart(cRejections.body, {
    format: fmtRate,
    series: [
      { label: 'rejected', value: (s) => s.ingest.rejected_per_s },
      { label: 'dead-lettered', value: (s) => s.dead_letters.per_s },
    ],
  });
  // The backlog chart has one series per consumer: rebuilt when the set of consumers changes.
  let backlog = null;
  let consumerKey = '';
  const buildBacklog = (names) => {
    if (backlog) backlog.destroy();
    mount(cBacklog.body);
    if (!names.length) {
      backlog = null;
      mount(cBacklog.body, h('div.chart-empty', 'No consumers yet'));
      return;
    }
    backlog = new LiveChart(cBacklog.body, {
      format: compact,
      series: names.map((n) => ({ label: n, value: (s) => (s.consumers.find((c) => c.name === n) || {}).lag_events ?? null })),
    });
  };

  const unsubscribe = live.subscribe((snap, history) => {
    waiting.hidden = true;
    root.dataset.samples = history.length; // how much the charts hold (the browser test waits on it)
    const cs = clusterSummary(snap);
    clusterBadge.hidden = !cs.enabled;
    if (cs.enabled) {
      clusterBadge.textContent = `cluster: ${cs.up}/${cs.total} up`;
      clusterBadge.dataset.state = cs.up === cs.total ? 'ok' : cs.up * 2 > cs.total ? 'warn' : 'bad';
    }
    sIn.set(...fmtPair(snap.ingest.in_per_s, 'events/s'), `${compact(snap.ingest.bytes_per_s)} B/s · ${snap.ingest.connections} connections`);
    sOut.set(...fmtPair(snap.out.per_s, 'events/s'), `${grouped(snap.out.delivered)} delivered · ${grouped(snap.out.dropped)} dropped`);
    sAccepted.set(grouped(snap.ingest.accepted), '', `${grouped(snap.ingest.rejected)} rejected · ${grouped(snap.ingest.received)} received`);
    const worst = snap.consumers.reduce((a, c) => (!a || c.lag_events > a.lag_events ? c : a), null);
    sBacklog.set(compact(worst ? worst.lag_events : 0), 'events',
      worst && worst.lag_events > 0 ? `most behind: ${worst.name}` : 'every consumer caught up');
    const [p99v, p99u] = latency(snap.ack_latency_ms.p99);
    sP99.set(p99v, p99u, `p50 ${fmtMs(snap.ack_latency_ms.p50)} · ${grouped(snap.ack_latency_ms.window_count)} acks in the last interval`);
    sUptime.set(duration(snap.node.uptime_s), '', `since ${new Date(snap.node.started_ms).toLocaleString()}`);

    throughput.update(history);
    lat.update(history);
    rej.update(history);
    const key = snap.consumers.map((c) => c.name).join('\u0000');
    if (key !== consumerKey || (!backlog && snap.consumers.length)) {
      consumerKey = key;
      buildBacklog(snap.consumers.map((c) => c.name));
    }
    if (backlog) backlog.update(history);

    if (!snap.rejections.length) {
      mount(reasons, empty('No rejections', 'Events refused at the gateway (bad envelope, schema, overload) show here by reason.'));
    } else {
      mount(reasons, h('table.data',
        h('thead', h('tr', h('th', 'Reason'), h('th.r', 'Total'), h('th.r', 'Now'))),
        h('tbody', snap.rejections.map((r) => h('tr', { dataset: { reason: r.reason } },
          h('td', r.reason.replace(/_/g, ' ')),
          h('td.r', grouped(r.total)),
          h('td.r', `${compact(r.per_s)} /s`))))));
    }
  });

  return () => {
    delete root.dataset.samples;
    unsubscribe();
    throughput.destroy();
    lat.destroy();
    rej.destroy();
    if (backlog) backlog.destroy();
  };
}

function fmtPair(v, unit) {
  return [compact(v ?? 0), unit];
}
