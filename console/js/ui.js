// DOM helpers, number formatting and toasts shared by every page. Text goes in as text nodes only
// (never innerHTML), so data from the node cannot inject markup.

/// Creates an element: h('div.card#x', {onclick, dataset: {...}, ...attrs}, ...children).
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/// Replaces the children of `el`.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/// An empty state: a title and a hint.
export function empty(title, hint) {
  return h('div.empty', h('strong', title), hint ? h('span', hint) : null);
}

/// A big number card: label, value with unit, foot line. Returns { el, set(value, unit, foot) }.
export function stat(label, testid) {
  const value = h('span.v', '—');
  const unit = h('span.unit');
  const foot = h('div.foot', '\u00a0');
  const el = h('div.card.stat', { dataset: { testid } }, h('div.label', label), h('div.value', value, unit), foot);
  return {
    el,
    set(v, u = '', f) {
      value.textContent = v;
      unit.textContent = u;
      if (f !== undefined) foot.textContent = f || '\u00a0';
    },
  };
}

/// A status pill; `state` picks its color (ready/ok/closed, warn/overloaded, bad/open, info).
export function pill(text, state) {
  return h('span.pill', { dataset: { state } }, text);
}

// ---- formatting ---------------------------------------------------------------------------------

const SI = [
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
];

/// 1234567 → "1.23M"; small numbers keep up to `digits` decimals.
export function compact(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const a = Math.abs(n);
  for (const [v, s] of SI) {
    if (a >= v) return `${(n / v).toFixed(a / v >= 100 ? 0 : a / v >= 10 ? 1 : 2)}${s}`;
  }
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(a >= 100 ? 0 : digits);
}

/// 1234567 → "1,234,567".
export function grouped(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

/// A rate split into value and unit: [ "1.2k", "events/s" ].
export function rate(n, what = 'events') {
  return [compact(n ?? 0), `${what}/s`];
}

/// Milliseconds split into value and unit: 0.42 → ["420", "µs"], 12.3 → ["12.3", "ms"].
export function latency(ms) {
  if (ms === null || ms === undefined) return ['—', ''];
  if (ms === 0) return ['0', 'ms'];
  if (ms < 1) return [(ms * 1000).toFixed(ms < 0.01 ? 1 : 0), 'µs'];
  if (ms < 1000) return [ms.toFixed(ms < 10 ? 2 : ms < 100 ? 1 : 0), 'ms'];
  return [(ms / 1000).toFixed(2), 's'];
}

/// Bytes: 1536 → "1.5 KiB".
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    ++i;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

/// Seconds as "3d 4h", "2h 05m", "4m 09s", "12s".
export function duration(s) {
  if (s === null || s === undefined) return '—';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const p = (x) => String(x).padStart(2, '0');
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${p(mm)}m`;
  if (mm) return `${mm}m ${p(ss)}s`;
  return `${ss}s`;
}

/// Epoch ms as local "2024-11-22 10:04:05".
export function datetime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/// "3 minutes ago" style.
export function ago(ms) {
  if (!ms) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

// ---- toasts -------------------------------------------------------------------------------------

const TOAST_MS = 7000;

/// Shows a toast; kind is 'error', 'ok' or 'info'. Errors stay until dismissed or replaced.
export function toast(title, message = '', kind = 'info') {
  const box = document.getElementById('toasts');
  const close = h('button', { type: 'button', 'aria-label': 'Dismiss' }, '×');
  const el = h(`div.toast.${kind}`, { dataset: { testid: `toast-${kind}` } },
    h('div.msg', h('div.title', title), message ? h('div', message) : null), close);
  close.addEventListener('click', () => el.remove());
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? TOAST_MS * 2 : TOAST_MS);
  return el;
}
