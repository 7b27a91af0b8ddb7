// The live feed: one WebSocket to /v1/admin/live for the whole console. The node pushes a JSON
// snapshot every interval (no polling here); the feed keeps a bounded history for the charts and
// reconnects with exponential backoff and jitter when the socket drops.

/// Samples kept for the charts (10 minutes at the default 1 s interval).
export const HISTORY = 600;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

class LiveFeed {
  constructor() {
    this.latest = null;
    this.history = [];
    this.state = 'idle'; // idle, connecting, live, reconnecting
    this.retryAt = 0;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.wanted = false;
  }

  /// Opens the socket (idempotent).
  start() {
    this.wanted = true;
    if (!this.ws && !this.timer) this.connect();
  }

  /// Closes the socket and stops reconnecting (logout).
  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'logout');
    }
    this.latest = null;
    this.history = [];
    this.setState('idle');
  }

  connect() {
    this.timer = null;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/v1/admin/live`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('message', (ev) => {
      let snap;
      try {
        snap = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.attempt = 0;
      if (this.state !== 'live') this.setState('live');
      this.push(snap);
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.wanted) this.scheduleReconnect();
    });
    ws.addEventListener('error', () => {
      // 'close' follows and reconnects.
    });
  }

  scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    ++this.attempt;
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting');
    this.timer = setTimeout(() => this.connect(), delay);
  }

  push(snap) {
    this.latest = snap;
    this.history.push(snap);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    for (const fn of this.listeners) {
      try {
        fn(snap, this.history);
      } catch (e) {
        console.error('live listener failed', e);
      }
    }
  }

  setState(s) {
    this.state = s;
    for (const fn of this.stateListeners) fn(s, this);
  }

  /// Calls fn(snapshot, history) on every snapshot (and at once with the latest); returns an
  /// unsubscribe function.
  subscribe(fn) {
    this.listeners.add(fn);
    if (this.latest) fn(this.latest, this.history);
    return () => this.listeners.delete(fn);
  }

  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.state, this);
    return () => this.stateListeners.delete(fn);
  }
}

export const live = new LiveFeed();
