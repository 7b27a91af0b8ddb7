// Requests to the node: same-origin cookies (the HttpOnly `sluice_session`), the CSRF token on
// every state-changing request, JSON bodies, and one error shape for the pages.

import { toast } from './ui.js';

/// The session: who is logged in, their scopes, and the CSRF token of the session cookie.
/// `open` is true when the node runs without an access policy (no /v1/auth endpoints).
export const session = { principal: null, scopes: [], csrf: null, open: false };

/// Called when a request answers 401 (the session ended); app.js shows the login.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/// An HTTP error with the node's JSON body (`body.error`, `body.line`, ...).
export class ApiError extends Error {
  constructor(status, body, text) {
    super((body && body.error) || text || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/// Sends a request; resolves with the parsed JSON (or text), rejects with ApiError.
/// options: { body (object → JSON, string → as is), contentType, quiet (no toast), headers }.
export async function api(method, path, options = {}) {
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (options.body !== undefined) {
    if (typeof options.body === 'string') {
      init.body = options.body;
      headers['Content-Type'] = options.contentType || 'text/plain';
    } else {
      init.body = JSON.stringify(options.body);
      headers['Content-Type'] = 'application/json';
    }
  }
  if (method !== 'GET' && method !== 'HEAD' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    const err = new ApiError(0, { error: `the node did not answer (${e.message})` });
    if (!options.quiet) toast(`${method} ${path} failed`, err.message, 'error');
    throw err;
  }
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.ok) return body !== undefined ? body : text;
  const err = new ApiError(res.status, body, text);
  if (res.status === 401 && !options.noRedirect) {
    onUnauthorized(err);
  } else if (!options.quiet) {
    const retry = res.headers.get('Retry-After');
    toast(`${method} ${path.split('?')[0]} → ${res.status}`,
      err.message + (retry ? ` (retry after ${retry}s)` : ''), 'error');
  }
  throw err;
}

/// Whether the session holds `scope` (`admin` implies `read`).
export function can(scope) {
  if (session.open) return true;
  const s = session.scopes || [];
  return s.includes(scope) || (scope === 'read' && s.includes('admin'));
}

function adopt(body) {
  session.principal = body.principal;
  session.scopes = body.scopes || [];
  session.csrf = body.csrf || null;
  session.open = false;
}

/// Finds out whether a session exists: 'session' (cookie valid), 'login' (401), or 'open' (the
/// node has no access policy: every endpoint is allowed).
export async function restoreSession() {
  try {
    adopt(await api('GET', '/v1/auth/session', { quiet: true, noRedirect: true }));
    return 'session';
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      // No session; the node may still grant admin to anonymous callers (auth.anonymous, for
      // development): then the console works without a login.
      try {
        await api('GET', '/v1/admin/endpoints', { quiet: true, noRedirect: true });
      } catch {
        return 'login';
      }
    } else if (e.status !== 404) {
      throw e;
    }
    // 404: no access policy at all (every endpoint allowed).
    session.open = true;
    session.principal = 'anonymous';
    session.scopes = ['admin', 'read', 'ingest'];
    session.csrf = null;
    return 'open';
  }
}

/// Logs in with a token; the node sets the session cookie.
export async function login(token) {
  adopt(await api('POST', '/v1/auth/login', { body: { token }, quiet: true, noRedirect: true }));
}

/// Ends the session (the node clears the cookie).
export async function logout() {
  try {
    await api('POST', '/v1/auth/logout', { quiet: true, noRedirect: true });
  } finally {
    session.principal = null;
    session.scopes = [];
    session.csrf = null;
  }
}
