// The live connection to the server's /ws endpoint: one socket per page, kept open.
//
// - reconnects with jittered exponential backoff, resubscribes, and resyncs from the
//   snapshots the server sends on every subscribe;
// - estimates the server clock offset from ping/pong, keeping the sample with the
//   shortest round trip (the least distorted by network delay);
// - sends bids with a `ref` and resolves each with its `bid_result`.
//
// Plain ES module, no dependencies; the WebSocket class is injectable for tests.
// Protocol: docs/protocol.md.

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s doubling to 30 s, with
 * jitter (50-100 %) so a restarted server is not hit by every browser at once. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + random() / 2));
}

/** Server clock offset from ping/pong samples: serverTime − (clientSent + rtt / 2). */
export class ClockSync {
  constructor(keep = 8) {
    this.keep = keep;
    this.samples = [];
  }

  /** Records one ping/pong: when it was sent, the server's time, when the pong came. */
  add(clientSent, serverTime, clientReceived) {
    const rtt = Math.max(0, clientReceived - clientSent);
    this.samples.push({ rtt, offset: serverTime - (clientSent + rtt / 2) });
    if (this.samples.length > this.keep) this.samples.shift();
  }

  /** Best estimate in ms (server − client); 0 before any sample. */
  offset() {
    if (this.samples.length === 0) return 0;
    return this.samples.reduce((best, s) => (s.rtt < best.rtt ? s : best)).offset;
  }

  /** The server's current time in ms, by the client's clock plus the offset. */
  serverNow(clientNow = Date.now()) {
    return clientNow + this.offset();
  }
}

/** Applies a `snapshot` or `price` message to an item's shown state. Older `seq` values
 * (a late or conflated frame) never overwrite newer ones; a snapshot always resyncs. */
export function applyItemMessage(state, msg) {
  if (msg.type === 'snapshot') return { ...msg };
  if (msg.type === 'price') {
    if (state && typeof state.seq === 'number' && msg.seq < state.seq) return state;
    return { ...(state || {}), ...msg, type: 'snapshot' };
  }
  if (msg.type === 'closing' && state) {
    return { ...state, closesAt: msg.closesAt, closed: !!msg.closed };
  }
  return state;
}

/** `1234.5` → `$1,234.50`. Amounts arrive as JSON numbers with two decimals. */
export function formatMoney(amount) {
  if (amount === null || amount === undefined) return '—';
  const cents = Math.round(Number(amount) * 100);
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const dollars = Math.floor(abs / 100).toLocaleString('en-US');
  return `${sign}$${dollars}.${String(abs % 100).padStart(2, '0')}`;
}

/** A random idempotency key: a retried bid (double click, reconnect) makes one effect. */
export function newKey(prefix = 'b') {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class LiveSocket {
  /**
   * @param {string} url ws:// or wss:// URL of /ws
   * @param {object} options { WebSocketImpl, onMessage(msg), onStatus(status), pingEvery,
   *                           setTimeout, clearTimeout, now, random }
   */
  constructor(url, options = {}) {
    this.url = url;
    this.WebSocketImpl = options.WebSocketImpl || globalThis.WebSocket;
    this.onMessage = options.onMessage || (() => {});
    this.onStatus = options.onStatus || (() => {});
    this.pingEvery = options.pingEvery ?? 15_000;
    this.setTimeout = options.setTimeout || globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = options.clearTimeout || globalThis.clearTimeout.bind(globalThis);
    this.now = options.now || (() => Date.now());
    this.random = options.random || Math.random;
    this.clock = new ClockSync();
    this.topics = new Set();
    this.pending = new Map(); // ref → { resolve, frame }
    this.nextRef = 1;
    this.attempt = 0;
    this.socket = null;
    this.closed = false;
    this.pingTimer = null;
    this.open();
  }

  open() {
    if (this.closed) return;
    this.onStatus('connecting');
    const ws = new this.WebSocketImpl(this.url);
    this.socket = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onStatus('open');
      if (this.topics.size) this.send({ type: 'subscribe', topics: [...this.topics] });
      // Bids sent while offline are re-sent: their idempotency keys make that safe.
      for (const { frame } of this.pending.values()) this.send(frame);
      this.ping();
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = () => this.lost();
    ws.onerror = () => {};
  }

  lost() {
    this.clearTimeout(this.pingTimer);
    if (this.closed) return;
    this.onStatus('reconnecting');
    const delay = backoffDelay(this.attempt++, this.random);
    this.setTimeout(() => this.open(), delay);
  }

  ping() {
    this.clearTimeout(this.pingTimer);
    this.send({ type: 'ping', clientTime: this.now() });
    this.pingTimer = this.setTimeout(() => this.ping(), this.pingEvery);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === 1) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'pong' && typeof msg.clientTime === 'number') {
      this.clock.add(msg.clientTime, msg.serverTime, this.now());
    } else if (msg.type === 'bid_result') {
      const waiting = this.pending.get(msg.ref);
      if (waiting) {
        this.pending.delete(msg.ref);
        waiting.resolve(msg);
      }
    }
    this.onMessage(msg);
  }

  subscribe(topic) {
    this.topics.add(topic);
    this.send({ type: 'subscribe', topics: [topic] });
  }

  unsubscribe(topic) {
    this.topics.delete(topic);
    this.send({ type: 'unsubscribe', topics: [topic] });
  }

  /** Sends a bid; resolves with the `bid_result` ({status, body}). Waits across reconnects. */
  bid({ itemId, amount, maxProxyAmount, idempotencyKey }) {
    const ref = `r${this.nextRef++}`;
    const frame = { type: 'bid', ref, itemId, amount, idempotencyKey: idempotencyKey || newKey() };
    if (maxProxyAmount !== undefined && maxProxyAmount !== null) frame.maxProxyAmount = maxProxyAmount;
    return new Promise((resolve) => {
      this.pending.set(ref, { resolve, frame });
      this.send(frame);
    });
  }

  close() {
    this.closed = true;
    this.clearTimeout(this.pingTimer);
    if (this.socket) this.socket.close();
  }
}
