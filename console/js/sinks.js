// Sinks: health, circuit, queue depth, retries, delivered and dropped per sink, from the live feed.

import { live } from './live.js';
import { compact, empty, grouped, h, mount, pill } from './ui.js';

export function render(root) {
  const grid = h('div.grid.cards', { dataset: { testid: 'sinks' } });
  const waiting = empty('Waiting for the live feed…');
  mount(root,
    h('div.page-head', h('h1', 'Sinks'), h('span.sub', 'live; every undelivered event goes to the dead letters')),
    waiting, grid);

  const unsubscribe = live.subscribe((snap) => {
    waiting.hidden = true;
    if (!snap.sinks.length) {
      mount(grid, empty('No sinks configured', 'Add a [sinks.<name>] section to the config file.'));
      return;
    }
    const backlog = Object.fromEntries(snap.consumers.map((c) => [c.name, c]));
    mount(grid, snap.sinks.map((s) => {
      const lag = backlog[`sink.${s.name}`] || backlog[s.name]; // the log names sink consumers sink.<name>
      const metric = (k, v, cls) => h('div.metric', h('div.k', k), h(`div.v${cls ? `.${cls}` : ''}.num`, v));
      return h('section.card.sink-card', { dataset: { sink: s.name } },
        h('header', h('h2', s.name), h('span.right',
          pill(s.healthy ? 'healthy' : 'failing', s.healthy ? 'ok' : 'bad'), ' ',
          pill(s.circuit_open ? 'circuit open' : 'circuit closed', s.circuit_open ? 'open' : 'closed'))),
        h('div.metrics',
          metric('Delivered', grouped(s.delivered)),
          metric('Rate', `${compact(s.delivered_per_s)} /s`),
          metric('Queue', grouped(s.queued), s.queued > 0 ? 'warn' : null),
          metric('Backlog', lag ? compact(lag.lag_events) : '—', lag && lag.lagging ? 'bad' : null),
          metric('Retries', grouped(s.retries), s.retries_per_s > 0 ? 'warn' : null),
          metric('Dropped', grouped(s.dropped), s.dropped > 0 ? 'bad' : null),
          metric('Errors', grouped(s.errors), s.errors > 0 ? 'bad' : null),
          metric('Circuit trips', grouped(s.circuit_opened)),
          metric('Routed in', grouped(s.received))));
    }));
  });
  return unsubscribe;
}
