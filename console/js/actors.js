// Actors and state: device and profile actors in memory and at rest (live), and a look-up of one
// profile (continue watching, watch time) or one device.

import { api } from './api.js';
import { live } from './live.js';
import { ago, datetime, duration, empty, grouped, h, mount } from './ui.js';

export function render(root) {
  let alive = true;
  const kinds = h('div.grid.two', { dataset: { testid: 'actor-kinds' } });
  const profileId = h('input', { type: 'text', placeholder: 'profile id, e.g. p-1', 'aria-label': 'profile id', dataset: { testid: 'profile-id' } });
  const deviceId = h('input', { type: 'text', placeholder: 'device id, e.g. tv-1', 'aria-label': 'device id', dataset: { testid: 'device-id' } });
  const profileOut = h('div');
  const deviceOut = h('div');
  const profileForm = h('form.form-row', h('label.field', 'Profile', profileId), h('button.btn.primary', { type: 'submit' }, 'Look up'));
  const deviceForm = h('form.form-row', h('label.field', 'Device', deviceId), h('button.btn.primary', { type: 'submit' }, 'Look up'));

  mount(root,
    h('div.page-head', h('h1', 'Actors & state'), h('span.sub', 'virtual actors: spawned on a key\'s first event, passivated to LMDB when idle')),
    kinds,
    h('div.grid.two', { class: 'grid two' },
      h('section.card', h('header', h('h2', 'Profile state')), profileForm, profileOut),
      h('section.card', h('header', h('h2', 'Device state')), deviceForm, deviceOut)));
  kinds.style.marginBottom = '16px';

  const unsubscribe = live.subscribe((snap) => {
    if (!snap.actors.length) {
      mount(kinds, empty('No entity actors yet', 'Device and profile shards report here once the node runs.'));
      return;
    }
    mount(kinds, snap.actors.map((a) => h('section.card', { dataset: { kind: a.kind } },
      h('header', h('h2', `${a.kind[0].toUpperCase()}${a.kind.slice(1)}s`), h('span.unit', `${a.shards} shard${a.shards === 1 ? '' : 's'}`)),
      h('div.grid.stats', { style: null },
        kv('Active', grouped(a.active), 'in memory now'),
        kv('Passivated', grouped(a.resting), 'at rest in LMDB, since start'),
        kv('Spawned', grouped(a.spawned), 'new keys since start'),
        kv('Restored', grouped(a.restored), `${grouped(a.passivated)} passivations · ${grouped(a.failures)} failures`)))));
  });

  profileForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = profileId.value.trim();
    if (!id) return;
    mount(profileOut, h('p.dim', 'Loading…'));
    const enc = encodeURIComponent(id);
    const [cw, wt] = await Promise.allSettled([
      api('GET', `/v1/profiles/${enc}/continue-watching`, { quiet: true }),
      api('GET', `/v1/profiles/${enc}/watch-time`, { quiet: true }),
    ]);
    if (!alive) return;
    if (cw.status === 'rejected' && cw.reason.status === 404) {
      mount(profileOut, empty(`Unknown profile ${id}`, 'It never sent an event.'));
      return;
    }
    mount(profileOut,
      h('h3', 'Continue watching'),
      cw.status === 'fulfilled' && cw.value.items.length
        ? h('table.data', { dataset: { testid: 'continue-watching' } },
          h('thead', h('tr', h('th', 'Title'), h('th', 'Progress'), h('th.r', 'Position'), h('th', 'Last event'), h('th', 'Updated'))),
          h('tbody', cw.value.items.map((t) => h('tr',
            h('td', t.name ? h('span', h('strong', t.name), h('span.faint', ` ${t.title_id}`)) : t.title_id),
            h('td', t.duration_ms ? h('div.bar', h('span', { dataset: {} }, '')) : '—'),
            h('td.r', `${duration(t.position_ms / 1000)}${t.duration_ms ? ` / ${duration(t.duration_ms / 1000)}` : ''}`),
            h('td', t.last_event),
            h('td', { title: datetime(t.updated_ts) }, ago(t.updated_ts))))))
        : empty(cw.status === 'fulfilled' ? 'Nothing to continue' : 'Continue watching unavailable', cw.status === 'rejected' ? cw.reason.message : null),
      h('h3', { style: null }, 'Watch time'),
      wt.status === 'fulfilled'
        ? h('div',
          h('p.dim', `${wt.value.from} → ${wt.value.to}: `, h('strong', duration(wt.value.total_ms / 1000))),
          wt.value.titles.length
            ? h('table.data', h('thead', h('tr', h('th', 'Title'), h('th.r', 'Watched'))),
              h('tbody', wt.value.titles.map((t) => h('tr', h('td', t.name || t.title_id), h('td.r', duration(t.watch_ms / 1000))))))
            : empty('No watch time in this range'))
        : empty('Watch time unavailable', wt.reason.message));
    // Progress bars: width from position / duration.
    const bars = profileOut.querySelectorAll('.bar > span');
    if (cw.status === 'fulfilled') {
      let i = 0;
      for (const t of cw.value.items) {
        if (!t.duration_ms) continue;
        bars[i++].style.width = `${Math.min(100, (100 * t.position_ms) / t.duration_ms).toFixed(1)}%`;
      }
    }
  });

  deviceForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = deviceId.value.trim();
    if (!id) return;
    try {
      const state = await api('GET', `/v1/devices/${encodeURIComponent(id)}`, { quiet: true });
      if (!alive) return;
      mount(deviceOut, h('pre.json', { dataset: { testid: 'device-json' } }, JSON.stringify(state, null, 2)));
    } catch (e) {
      mount(deviceOut, e.status === 404 ? empty(`Unknown device ${id}`, 'It never sent an event.') : empty('Device state unavailable', e.message));
    }
  });

  return () => {
    alive = false;
    unsubscribe();
  };
}

function kv(label, value, foot) {
  return h('div.stat', h('div.label', label), h('div.value', value), h('div.foot', foot));
}
