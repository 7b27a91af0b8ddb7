// Access: the audit log of admin actions and token failures (who, what, when) and every endpoint
// of the node with the scope it needs.

import { api } from './api.js';
import { ago, datetime, empty, h, mount, pill } from './ui.js';

const AUDIT_LIMIT = 200;

export function render(root) {
  let alive = true;
  const audit = h('div', { dataset: { testid: 'audit' } });
  const endpoints = h('div', { dataset: { testid: 'endpoints' } });
  const refresh = h('button.btn.ghost', { type: 'button' }, 'Refresh');
  const filter = h('input', { type: 'search', placeholder: 'Filter (principal, action, path)', 'aria-label': 'audit filter' });
  let records = [];

  mount(root,
    h('div.page-head', h('h1', 'Access'), h('span.sub', 'who did what, and what each endpoint needs'), h('div.actions', refresh)),
    h('section.card', h('header', h('h2', 'Audit log'), h('span.unit', `newest ${AUDIT_LIMIT}`), h('span.right', filter)), audit),
    h('section.card', { class: 'card spaced' }, h('header', h('h2', 'Endpoints'), h('span.unit', 'one table: no endpoint skips its scope check')), endpoints));

  const statusState = (s) => (s < 300 ? 'ok' : s < 500 ? 'warn' : 'bad');
  function renderAudit() {
    const q = filter.value.trim().toLowerCase();
    const rows = records.filter((r) => !q || `${r.principal} ${r.action} ${r.path} ${r.summary}`.toLowerCase().includes(q));
    mount(audit, rows.length
      ? h('table.data',
        h('thead', h('tr', h('th', 'When'), h('th', 'Who'), h('th', 'Action'), h('th', 'Request'), h('th', 'Status'), h('th', 'Summary'), h('th', 'Peer'))),
        h('tbody', rows.map((r) => {
          const ms = Date.parse(r.time);
          return h('tr',
            h('td', { title: datetime(ms) }, ago(ms)),
            h('td', h('strong', r.principal)),
            h('td', h('span.tag', r.action)),
            h('td.mono', `${r.method} ${r.path}`),
            h('td', pill(String(r.status), statusState(r.status))),
            h('td', h('div.truncate', { title: r.summary }, r.summary)),
            h('td.mono.dim', r.peer));
        })))
      : empty(q ? 'No record matches' : 'No audit records yet', 'Route changes, replays, logins and refused tokens are recorded here.'));
  }

  async function load() {
    const [a, e] = await Promise.allSettled([
      api('GET', `/v1/admin/audit?limit=${AUDIT_LIMIT}`, { quiet: true }),
      api('GET', '/v1/admin/endpoints', { quiet: true }),
    ]);
    if (!alive) return;
    if (a.status === 'fulfilled') {
      records = a.value.records || [];
      renderAudit();
    } else {
      mount(audit, empty('The audit log is unavailable', a.reason.status === 404 ? 'This node runs without an access policy.' : a.reason.message));
    }
    if (e.status === 'fulfilled') {
      mount(endpoints, h('table.data',
        h('thead', h('tr', h('th', 'Method'), h('th', 'Path'), h('th', 'Scope'), h('th', 'Description'))),
        h('tbody', e.value.endpoints.map((ep) => h('tr',
          h('td.mono', ep.method),
          h('td.mono', ep.pattern),
          h('td', pill(ep.scope, ep.scope === 'admin' ? 'bad' : ep.scope === 'open' ? 'ok' : 'info')),
          h('td.dim', ep.description))))));
    } else {
      mount(endpoints, empty('The endpoint table is unavailable', e.reason.status === 404 ? 'This node runs without an access policy.' : e.reason.message));
    }
  }
  filter.addEventListener('input', renderAudit);
  refresh.addEventListener('click', load);
  load();
  return () => { alive = false; };
}
