// Routes: the set in effect with its version, an editor whose validation errors show at their
// line, apply (PUT /v1/admin/routes), the version history, and rollback.

import { api } from './api.js';
import { ago, datetime, empty, grouped, h, mount, toast } from './ui.js';

export function render(root) {
  let current = null;       // GET /v1/admin/routes
  let viewing = null;       // a version opened from the history
  let error = null;         // { line, column, message } of the last refused apply
  let alive = true;

  const title = h('h1', 'Routes');
  const versionPill = h('span.pill', { dataset: { state: 'info', testid: 'routes-version' } }, 'version —');
  const sub = h('span.sub');
  const applyBtn = h('button.btn.primary', { type: 'button', dataset: { testid: 'routes-apply' } }, 'Apply');
  const revertBtn = h('button.btn', { type: 'button' }, 'Discard edits');
  const comment = h('input', { type: 'text', placeholder: 'Comment for this version (optional)', maxlength: 200, 'aria-label': 'comment' });
  const status = h('span.editor-status');

  // The editor: a gutter of line numbers beside a plain textarea; the error mark and its message
  // are positioned over the textarea at the error's line.
  const gutter = h('div.gutter', { 'aria-hidden': 'true' });
  const textarea = h('textarea', { spellcheck: 'false', autocomplete: 'off', wrap: 'off', 'aria-label': 'routes text', dataset: { testid: 'routes-editor' } });
  const lineMark = h('div.line-mark', { hidden: true });
  const inlineError = h('div.inline-error', { hidden: true, role: 'alert', dataset: { testid: 'routes-inline-error' } });
  const editor = h('div.editor', gutter, h('div.code', textarea, lineMark, inlineError));

  const routeList = h('div.route-list');
  const versionsList = h('ul.versions', { dataset: { testid: 'routes-versions' } });
  const viewer = h('div');

  mount(root,
    h('div.page-head', title, versionPill, sub,
      h('div.actions', revertBtn)),
    h('div.editor-layout',
      h('div',
        h('section.card',
          h('header', h('h2', 'Edit'), h('span.unit', 'INI: [routes.<name>] sections with when, sinks and actions'), h('span.right', status)),
          editor,
          h('div.editor-bar', comment, applyBtn)),
        h('section.card', { style: null },
          h('header', h('h2', 'Routes in effect')),
          routeList)),
      h('div',
        h('section.card',
          h('header', h('h2', 'History'), h('span.unit', 'newest first')),
          versionsList),
        viewer)));

  const lineHeight = () => parseFloat(getComputedStyle(textarea).lineHeight) || 20;
  const padTop = () => parseFloat(getComputedStyle(textarea).paddingTop) || 12;

  function renderGutter() {
    const lines = textarea.value.split('\n').length;
    if (gutter.childElementCount !== lines) {
      mount(gutter, Array.from({ length: lines }, (_, i) => h('div', { dataset: { line: i + 1 } }, i + 1)));
    }
    for (const d of gutter.children) d.classList.toggle('error', !!error && Number(d.dataset.line) === error.line);
    placeError();
  }

  function placeError() {
    gutter.scrollTop = textarea.scrollTop;
    gutter.style.transform = '';
    if (!error || !error.line) {
      lineMark.hidden = true;
      inlineError.hidden = !error;
      if (error) {
        inlineError.style.top = `${padTop()}px`;
        inlineError.textContent = error.message;
      }
      return;
    }
    const top = padTop() + (error.line - 1) * lineHeight() - textarea.scrollTop;
    lineMark.hidden = false;
    lineMark.style.top = `${top}px`;
    inlineError.hidden = false;
    inlineError.dataset.line = error.line;
    inlineError.dataset.column = error.column ?? '';
    inlineError.style.top = `${top + lineHeight() + 2}px`;
    inlineError.textContent = `Line ${error.line}${error.column ? `, column ${error.column}` : ''}: ${error.message}`;
  }

  function setError(e) {
    error = e;
    renderGutter();
  }

  function dirty() {
    return current && textarea.value !== current.text;
  }

  function updateStatus() {
    if (!current) return;
    status.className = `editor-status${dirty() ? ' dirty' : ''}`;
    status.textContent = dirty() ? 'edited, not applied' : `matches version ${current.version}`;
    applyBtn.disabled = !dirty();
    revertBtn.disabled = !dirty();
  }

  textarea.addEventListener('input', () => {
    // An edit on the error's line clears the mark; elsewhere it stays until the next apply.
    renderGutter();
    updateStatus();
  });
  textarea.addEventListener('scroll', () => {
    gutter.scrollTop = textarea.scrollTop;
    placeError();
  });
  textarea.addEventListener('keydown', (ev) => {
    if (ev.key === 'Tab') {
      ev.preventDefault();
      textarea.setRangeText('  ', textarea.selectionStart, textarea.selectionEnd, 'end');
      textarea.dispatchEvent(new Event('input'));
    } else if ((ev.ctrlKey || ev.metaKey) && ev.key === 'Enter' && !applyBtn.disabled) {
      apply();
    }
  });

  revertBtn.addEventListener('click', () => {
    if (!current) return;
    textarea.value = current.text;
    setError(null);
    updateStatus();
  });

  async function apply() {
    applyBtn.disabled = true;
    try {
      const res = await api('PUT', '/v1/admin/routes', {
        body: { text: textarea.value, comment: comment.value.trim() || 'console' },
        quiet: true,
      });
      setError(null);
      comment.value = '';
      toast(`Routes version ${res.version} applied`, `routes events from log offset ${grouped(res.effective_from)} on`, 'ok');
      await load(true);
    } catch (e) {
      if (e.status === 400) {
        setError({ line: e.body.line, column: e.body.column, message: stripPosition(e.body.error || e.message) });
        // Bring the error into view.
        if (e.body.line) {
          const target = (e.body.line - 3) * lineHeight();
          if (target < textarea.scrollTop || target > textarea.scrollTop + textarea.clientHeight - 3 * lineHeight()) {
            textarea.scrollTop = Math.max(0, target);
          }
          placeError();
        }
      } else if (e.status !== 401) {
        toast(`Apply failed (${e.status || 'no answer'})`, e.message, 'error');
      }
      updateStatus();
    }
  }
  applyBtn.addEventListener('click', apply);

  async function load(replaceText) {
    let doc, versions;
    try {
      [doc, versions] = await Promise.all([
        api('GET', '/v1/admin/routes'),
        api('GET', '/v1/admin/routes/versions'),
      ]);
    } catch (e) {
      if (!current) mount(routeList, empty('Routes unavailable', e.message));
      return;
    }
    if (!alive) return;
    const keep = current && dirty() && !replaceText;
    current = doc;
    versionPill.textContent = `version ${doc.version}`;
    versionPill.dataset.version = doc.version;
    sub.textContent = `routes events from log offset ${grouped(doc.effective_from)} · ${doc.comment || 'no comment'} · ${ago(doc.created_ms)}`;
    if (!keep) textarea.value = doc.text;
    renderGutter();
    updateStatus();
    renderRoutes(doc);
    renderVersions(versions);
  }

  function renderRoutes(doc) {
    const items = doc.routes.map((r) => routeRow(r.name, r.when, r.sinks, r.actions));
    if (doc.unmatched_sinks.length) items.push(routeRow('_unmatched', 'no other route matched', doc.unmatched_sinks, doc.unmatched_actions));
    mount(routeList, items.length ? items : empty('No routes', 'Every event goes nowhere until a route names a sink.'));
  }

  function routeRow(name, when, sinks, actions) {
    const acts = Object.entries(actions || {}).map(([k, v]) => h('span.tag', `${k}=${Array.isArray(v) ? v.join(',') : v}`));
    return h('div.route-item',
      h('div', h('strong', name)),
      h('div', h('code', when), acts.length ? h('div', acts) : null),
      h('div', sinks.map((s) => h('span.tag', `→ ${s}`))));
  }

  function renderVersions(v) {
    const rows = [...v.versions].reverse().map((ver) => {
      const li = h('li', { dataset: { version: ver.version }, class: viewing && viewing.version === ver.version ? 'viewing' : null },
        h('span.v', `v${ver.version}`),
        h('span.meta', { title: datetime(ver.created_ms) }, `${ver.comment || '—'} · ${ago(ver.created_ms)}`),
        ver.version === v.current ? h('span.pill', { dataset: { state: 'ok' } }, 'current') : h('span'));
      li.addEventListener('click', () => openVersion(ver.version));
      return li;
    });
    mount(versionsList, rows.length ? rows : h('li.faint', 'No stored versions'));
  }

  async function openVersion(n) {
    let ver;
    try {
      ver = await api('GET', `/v1/admin/routes/versions/${n}`);
    } catch {
      return;
    }
    if (!alive) return;
    viewing = ver;
    for (const li of versionsList.children) li.classList.toggle('viewing', Number(li.dataset.version) === n);
    const isCurrent = current && current.version === n;
    const rollback = h('button.btn', { type: 'button', disabled: isCurrent, dataset: { testid: 'routes-rollback' } }, `Roll back to v${n}`);
    const toEditor = h('button.btn.ghost', { type: 'button' }, 'Open in editor');
    rollback.addEventListener('click', async () => {
      rollback.disabled = true;
      try {
        const res = await api('POST', '/v1/admin/routes/rollback', { body: { version: n } });
        toast(`Rolled back: version ${res.version} has the text of v${n}`, '', 'ok');
        viewing = null;
        mount(viewer);
        await load(true);
      } catch {
        rollback.disabled = false;
      }
    });
    toEditor.addEventListener('click', () => {
      textarea.value = ver.text;
      setError(null);
      updateStatus();
      textarea.focus();
    });
    mount(viewer, h('section.card', { dataset: { testid: 'routes-viewer' } },
      h('header', h('h2', `Version ${n}`), h('span.unit', `${datetime(ver.created_ms)} · from offset ${grouped(ver.effective_from)}`)),
      h('pre.viewer', ver.text),
      h('div.editor-bar', rollback, toEditor)));
  }

  load(true);
  return () => {
    alive = false;
  };
}

/// "line 3, column 17: message" or "3:17: message" → "message" (the position is shown apart).
function stripPosition(msg) {
  return msg.replace(/^line \d+, column \d+:\s*/, '').replace(/^(?:[^:\s]+:)?\d+:\d+:\s*/, '');
}
