// The console's shell: session check, login, hash routing between pages, the top bar fed by the
// live WebSocket.

import { login, logout, restoreSession, session, setUnauthorizedHandler } from './api.js';
import { live } from './live.js';
import { h, mount, toast } from './ui.js';
import * as overview from './overview.js';
import * as routes from './routes.js';
import * as sinks from './sinks.js';
import * as deadLetters from './dead_letters.js';
import * as actors from './actors.js';
import * as trending from './trending.js';
import * as cluster from './cluster.js';
import * as access from './access.js';

/// Pages by hash route. Each exports render(container) → optional cleanup function.
const PAGES = {
  overview,
  routes,
  sinks,
  'dead-letters': deadLetters,
  actors,
  trending,
  cluster,
  access,
};

const appEl = document.getElementById('app');
const loginEl = document.getElementById('login');
const pageEl = document.getElementById('page');
let cleanup = null;
let started = false;

function currentPage() {
  const name = (location.hash.replace(/^#\/?/, '').split(/[/?]/)[0]) || 'overview';
  return PAGES[name] ? name : 'overview';
}

function route() {
  if (!started) return;
  const name = currentPage();
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  for (const a of document.querySelectorAll('.sidenav a')) a.classList.toggle('active', a.dataset.page === name);
  mount(pageEl);
  pageEl.dataset.page = name;
  cleanup = PAGES[name].render(pageEl) || null;
  document.title = `${document.querySelector(`.sidenav a[data-page="${name}"]`).textContent} · sluice`;
}

function showLogin(message) {
  started = false;
  live.stop();
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  appEl.hidden = true;
  loginEl.hidden = false;
  const token = h('input#token', { type: 'password', name: 'token', autocomplete: 'current-password', placeholder: 'sluice token', required: true });
  const error = h('div.error', { role: 'alert' }, message || '');
  const submit = h('button.btn.primary', { type: 'submit' }, 'Log in');
  const form = h('form.card.login-card', { dataset: { testid: 'login-form' } },
    h('div.brand', h('span.brand-mark'), 'sluice console'),
    h('p', 'Log in with an access token that holds the admin scope. The node keeps the session in an HttpOnly cookie; the token is not stored in the browser.'),
    h('label.field', 'Token', token),
    error,
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      await login(token.value.trim());
      token.value = '';
      start();
    } catch (e) {
      error.textContent = e.status === 401 || e.status === 403
        ? 'That token was not accepted.'
        : e.message;
    } finally {
      submit.disabled = false;
    }
  });
  mount(loginEl, form);
  token.focus();
}

function start() {
  loginEl.hidden = true;
  appEl.hidden = false;
  started = true;
  document.getElementById('principal').textContent = session.open
    ? 'anonymous access (no login needed)'
    : `${session.principal} · ${session.scopes.join(', ')}`;
  document.getElementById('logout').hidden = session.open;
  live.start();
  route();
}

// Top bar: node id, health and the feed's state.
live.subscribe((snap) => {
  document.getElementById('node-id').textContent = `${snap.node.id} · ${snap.node.address || ''}`;
  const health = document.getElementById('node-health');
  health.textContent = snap.node.health;
  health.dataset.state = snap.node.health;
});
live.onState((state, feed) => {
  const el = document.getElementById('live-status');
  el.dataset.state = state;
  const label = el.querySelector('.label');
  if (state === 'reconnecting') {
    label.textContent = `reconnecting in ${Math.max(0, Math.round((feed.retryAt - Date.now()) / 1000))}s`;
  } else {
    label.textContent = state === 'live' ? 'live' : state;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await logout();
  } catch (e) {
    toast('Logout failed', e.message, 'error');
  }
  showLogin('You are logged out.');
});

setUnauthorizedHandler(() => {
  if (started) showLogin('Your session ended: log in again.');
});

window.addEventListener('hashchange', route);

// Boot: an existing session cookie, the login form, or (a node without an access policy) open.
(async () => {
  try {
    const state = await restoreSession();
    if (state === 'login') showLogin();
    else start();
  } catch (e) {
    showLogin(`The node did not answer: ${e.message}`);
  }
})();

