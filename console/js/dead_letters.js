// Dead letters: browse page by page, filter by reason, inspect one event, replay the selected ones
// (or every match of the filter) through the pipeline.

import { api } from './api.js';
import { ago, datetime, empty, grouped, h, mount, pill, toast } from './ui.js';

const PAGE = 50;

export function render(root) {
  let alive = true;
  let reason = '';
  let cursors = [0]; // `after` of each page visited; the last one is the current page
  let page = null;   // { items, next, total }
  let inspected = null;
  const selected = new Set();

  const filter = h('input', { type: 'search', placeholder: 'Filter by reason (substring)', 'aria-label': 'reason filter', dataset: { testid: 'dl-filter' } });
  const reasonList = h('datalist#dl-reasons');
  filter.setAttribute('list', 'dl-reasons');
  const replaySel = h('button.btn.primary', { type: 'button', disabled: true, dataset: { testid: 'dl-replay-selected' } }, 'Replay selected');
  const replayAll = h('button.btn', { type: 'button', disabled: true }, 'Replay all matching');
  const refresh = h('button.btn.ghost', { type: 'button' }, 'Refresh');
  const count = h('span.sub');
  const table = h('div', { dataset: { testid: 'dl-table' } });
  const pager = h('div.pager');
  const inspector = h('div');

  mount(root,
    h('div.page-head', h('h1', 'Dead letters'), count, h('div.actions', refresh)),
    h('div.dl-layout',
      h('section.card',
        h('div.toolbar', filter, reasonList, replaySel, replayAll),
        table, pager),
      inspector));

  let debounce = null;
  filter.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      reason = filter.value.trim();
      cursors = [0];
      selected.clear();
      load();
    }, 250);
  });
  refresh.addEventListener('click', () => load());

  function updateButtons() {
    replaySel.disabled = selected.size === 0;
    replaySel.textContent = selected.size ? `Replay selected (${selected.size})` : 'Replay selected';
    replayAll.disabled = !page || page.total === 0;
    replayAll.textContent = reason ? `Replay all matching "${reason}"` : 'Replay all';
  }

  async function load() {
    const after = cursors[cursors.length - 1];
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (after) q.set('after', String(after));
    if (reason) q.set('reason', reason);
    let res;
    try {
      res = await api('GET', `/v1/admin/dead-letters?${q}`);
    } catch (e) {
      mount(table, empty('Dead letters unavailable', e.message));
      return;
    }
    if (!alive) return;
    page = res;
    renderTable();
  }

  function renderTable() {
    count.textContent = `${grouped(page.total)} ${reason ? 'matching' : 'stored'}`;
    // Reasons seen on this page feed the filter's suggestions.
    mount(reasonList, [...new Set(page.items.map((d) => d.reason))].slice(0, 20).map((r) => h('option', { value: r })));
    if (!page.items.length) {
      mount(table, empty(reason ? 'No dead letter matches this reason' : 'No dead letters',
        'Events that fail their schema, or that a sink gave up on, are kept here for inspection and replay.'));
      mount(pager);
      updateButtons();
      return;
    }
    const all = h('input', { type: 'checkbox', 'aria-label': 'select all on this page' });
    const selectable = page.items.filter((d) => !d.replayed);
    all.checked = selectable.length > 0 && selectable.every((d) => selected.has(d.id));
    all.addEventListener('change', () => {
      for (const d of selectable) all.checked ? selected.add(d.id) : selected.delete(d.id);
      renderTable();
    });
    const rows = page.items.map((d) => {
      const box = h('input', { type: 'checkbox', checked: selected.has(d.id), disabled: d.replayed, 'aria-label': `select dead letter ${d.id}` });
      box.addEventListener('click', (ev) => ev.stopPropagation());
      box.addEventListener('change', () => {
        box.checked ? selected.add(d.id) : selected.delete(d.id);
        updateButtons();
      });
      const ev = d.event || {};
      const tr = h('tr.clickable', { dataset: { id: d.id }, class: `clickable${inspected && inspected.id === d.id ? ' selected' : ''}` },
        h('td', box),
        h('td.num', d.id),
        h('td', { title: datetime(d.at) }, ago(d.at)),
        h('td', h('div.truncate', { title: `${d.reason} (origin: ${d.origin})` }, d.reason)),
        h('td', h('div.truncate.mono', `${ev.type || '?'} · ${ev.device_id || '?'}`)),
        h('td', d.replayed ? pill('replayed', 'ok') : pill('stored', 'warn')));
      tr.addEventListener('click', () => inspect(d));
      return tr;
    });
    mount(table, h('table.data',
      h('thead', h('tr', h('th', all), h('th', 'Id'), h('th', 'When'), h('th', 'Reason'), h('th', 'Event'), h('th', 'State'))),
      h('tbody', rows)));
    const prev = h('button.btn.small', { type: 'button', disabled: cursors.length <= 1 }, '← Newer');
    const next = h('button.btn.small', { type: 'button', disabled: page.next === null }, 'Older →');
    prev.addEventListener('click', () => {
      cursors.pop();
      load();
    });
    next.addEventListener('click', () => {
      cursors.push(page.next);
      load();
    });
    const first = page.items[0].id, last = page.items[page.items.length - 1].id;
    mount(pager, h('span', `ids ${first}–${last} of ${grouped(page.total)}`), prev, next);
    updateButtons();
  }

  function inspect(d) {
    inspected = d;
    for (const tr of table.querySelectorAll('tbody tr')) tr.classList.toggle('selected', Number(tr.dataset.id) === d.id);
    const replayOne = h('button.btn', { type: 'button', disabled: d.replayed }, d.replayed ? 'Already replayed' : 'Replay this one');
    replayOne.addEventListener('click', () => replay({ ids: [d.id] }));
    mount(inspector, h('section.card', { dataset: { testid: 'dl-inspector' } },
      h('header', h('h2', `Dead letter ${d.id}`), h('span.right', d.replayed ? pill('replayed', 'ok') : pill('stored', 'warn'))),
      h('dl.kv',
        h('dt', 'Reason'), h('dd', d.reason),
        h('dt', 'Origin'), h('dd', d.origin),
        h('dt', 'Recorded'), h('dd', `${datetime(d.at)} (${ago(d.at)})`)),
      h('h3', 'Event'),
      h('pre.json', { dataset: { testid: 'dl-event-json' } }, JSON.stringify(d.event, null, 2)),
      h('div.editor-bar', replayOne)));
  }

  async function replay(body) {
    replaySel.disabled = replayAll.disabled = true;
    try {
      const res = await api('POST', '/v1/admin/dead-letters/replay', { body });
      toast(`Replayed ${grouped(res.replayed)} dead letter${res.replayed === 1 ? '' : 's'}`,
        res.skipped ? `${grouped(res.skipped)} skipped (replayed before)` : 'committed to the ingest log', 'ok');
      selected.clear();
      inspected = null;
      mount(inspector);
      await load();
    } catch {
      updateButtons();
    }
  }
  replaySel.addEventListener('click', () => replay({ ids: [...selected].sort((a, b) => a - b) }));
  replayAll.addEventListener('click', () => {
    if (!confirm(reason ? `Replay every stored dead letter whose reason contains "${reason}"?` : 'Replay every stored dead letter?')) return;
    replay(reason ? { reason } : { all: true });
  });

  mount(inspector, h('section.card', empty('Nothing selected', 'Click a row to see its full event.')));
  load();
  return () => {
    alive = false;
    clearTimeout(debounce);
  };
}
