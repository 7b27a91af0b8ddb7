// Trending titles (distinct profiles over a sliding event-time window) and popular genres (per UTC
// day). Loaded when the page opens and on demand: these are aggregates, not a live stream.

import { api } from './api.js';
import { datetime, empty, grouped, h, mount } from './ui.js';

export function render(root) {
  let alive = true;
  const windowSel = h('select', { 'aria-label': 'window' },
    ['5m', '15m', '30m', '1h'].map((w) => h('option', { value: w }, w)));
  windowSel.value = '1h';
  const k = h('select', { 'aria-label': 'how many' }, [10, 25, 50].map((n) => h('option', { value: n }, `top ${n}`)));
  const date = h('input', { type: 'date', 'aria-label': 'day', value: new Date().toISOString().slice(0, 10) });
  const refresh = h('button.btn', { type: 'button' }, 'Refresh');
  const titles = h('div', { dataset: { testid: 'trending' } });
  const genres = h('div', { dataset: { testid: 'genres' } });
  const titlesMeta = h('span.unit');

  mount(root,
    h('div.page-head', h('h1', 'Trending'), h('span.sub', 'distinct profiles, by event time'), h('div.actions', refresh)),
    h('div.grid.two',
      h('section.card',
        h('header', h('h2', 'Titles'), titlesMeta, h('span.right', windowSel, ' ', k)),
        titles),
      h('section.card',
        h('header', h('h2', 'Genres'), h('span.unit', 'UTC day'), h('span.right', date)),
        genres)));

  const bars = (items, label, value) => {
    const max = Math.max(1, ...items.map(value));
    const table = h('table.data',
      h('thead', h('tr', h('th', '#'), h('th', label), h('th', ''), h('th.r', 'Profiles'))),
      h('tbody', items.map((it, i) => h('tr', h('td.faint', i + 1), h('td', labelOf(it)), h('td', { style: null }, h('div.bar', h('span'))), h('td.r', grouped(value(it)))))));
    const spans = table.querySelectorAll('.bar > span');
    items.forEach((it, i) => { spans[i].style.width = `${((100 * value(it)) / max).toFixed(1)}%`; });
    return table;
  };
  const labelOf = (it) => it.genre ?? (it.name ? h('span', h('strong', it.name), h('span.faint', ` ${it.title_id}`)) : it.title_id);

  async function loadTitles() {
    try {
      const res = await api('GET', `/v1/trending?window=${windowSel.value}&k=${k.value}`);
      if (!alive) return;
      titlesMeta.textContent = res.as_of ? `as of ${datetime(res.as_of)}` : '';
      mount(titles, res.items.length ? bars(res.items, 'Title', (it) => it.profiles)
        : empty('Nothing trending yet', 'Playback events with a title_id and a profile_id count here.'));
    } catch (e) {
      mount(titles, empty('Trending unavailable', e.message));
    }
  }
  async function loadGenres() {
    try {
      const res = await api('GET', `/v1/genres/popular?date=${date.value}&k=${k.value}`);
      if (!alive) return;
      mount(genres, res.items.length ? bars(res.items, 'Genre', (it) => it.profiles)
        : empty(`No genres for ${res.date}`, 'Genres come from the title catalog (conf/titles.csv).'));
    } catch (e) {
      mount(genres, empty('Popular genres unavailable', e.message));
    }
  }
  const all = () => { loadTitles(); loadGenres(); };
  windowSel.addEventListener('change', loadTitles);
  k.addEventListener('change', all);
  date.addEventListener('change', loadGenres);
  refresh.addEventListener('click', all);
  all();
  return () => { alive = false; };
}
