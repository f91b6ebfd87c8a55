import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, ClockSync, applyItemMessage, formatMoney, LiveSocket, newKey } from '../live.js';

test('backoff doubles from half a second to thirty, with jitter between 50 and 100 %', () => {
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(0, () => 0), 250);
  assert.equal(backoffDelay(3, () => 1), 4000);
  assert.equal(backoffDelay(20, () => 1), 30_000);
  assert.equal(backoffDelay(20, () => 0), 15_000);
});

test('clock sync keeps the sample with the shortest round trip', () => {
  const c = new ClockSync();
  assert.equal(c.offset(), 0);
  c.add(1000, 6000, 1400); // rtt 400 → offset 6000 - 1200 = 4800
  c.add(2000, 7050, 2100); // rtt 100 → offset 7050 - 2050 = 5000
  c.add(3000, 9000, 3900); // rtt 900, ignored
  assert.equal(c.offset(), 5000);
  assert.equal(c.serverNow(10_000), 15_000);
});

test('older prices never overwrite newer ones; snapshots always resync', () => {
  let s = applyItemMessage(null, { type: 'snapshot', itemId: 'it_1', seq: 3, currentBid: 30 });
  s = applyItemMessage(s, { type: 'price', itemId: 'it_1', seq: 5, currentBid: 50 });
  assert.equal(s.currentBid, 50);
  s = applyItemMessage(s, { type: 'price', itemId: 'it_1', seq: 4, currentBid: 40 });
  assert.equal(s.currentBid, 50, 'late frame ignored');
  s = applyItemMessage(s, { type: 'closing', itemId: 'it_1', closesAt: 'T', closed: true });
  assert.equal(s.closed, true);
  assert.equal(s.closesAt, 'T');
  s = applyItemMessage(s, { type: 'snapshot', itemId: 'it_1', seq: 2, currentBid: 20 });
  assert.equal(s.seq, 2, 'a snapshot is the truth after a reconnect');
});

test('money is shown with dollars, thousands and two decimals', () => {
  assert.equal(formatMoney(125), '$125.00');
  assert.equal(formatMoney(1234.5), '$1,234.50');
  assert.equal(formatMoney(0.07), '$0.07');
  assert.equal(formatMoney(null), '—');
});

test('idempotency keys are random and prefixed', () => {
  const a = newKey();
  const b = newKey();
  assert.match(a, /^b-[0-9a-f]{24}$/);
  assert.notEqual(a, b);
});

/** A fake WebSocket the tests drive by hand. */
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; this.onclose?.(); }
  serverOpens() { this.readyState = 1; this.onopen?.(); }
  serverSends(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
  serverDrops() { this.readyState = 3; this.onclose?.(); }
}

function harness() {
  FakeSocket.all = [];
  const timers = [];
  const statuses = [];
  const messages = [];
  let now = 1_000;
  const live = new LiveSocket('ws://x/ws', {
    WebSocketImpl: FakeSocket,
    onStatus: (s) => statuses.push(s),
    onMessage: (m) => messages.push(m),
    setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimeout: () => {},
    now: () => now,
    random: () => 1,
  });
  return { live, timers, statuses, messages, tick: (ms) => { now += ms; } };
}

test('reconnects with backoff, resubscribes and re-sends waiting bids', async () => {
  const { live, timers, statuses } = harness();
  const first = FakeSocket.all[0];
  first.serverOpens();
  live.subscribe('item:it_7');
  assert.deepEqual(first.sent.find((f) => f.type === 'subscribe'), { type: 'subscribe', topics: ['item:it_7'] });
  const answer = live.bid({ itemId: 'it_7', amount: 125 });
  const sentBid = first.sent.find((f) => f.type === 'bid');
  assert.equal(sentBid.amount, 125);
  assert.ok(sentBid.idempotencyKey);

  first.serverDrops();
  assert.equal(statuses.at(-1), 'reconnecting');
  const retry = timers.at(-1);
  assert.equal(retry.ms, 500);
  retry.fn();
  const second = FakeSocket.all[1];
  second.serverOpens();
  assert.deepEqual(second.sent.find((f) => f.type === 'subscribe').topics, ['item:it_7']);
  const resent = second.sent.find((f) => f.type === 'bid');
  assert.equal(resent.idempotencyKey, sentBid.idempotencyKey, 'same key: one effect');
  second.serverSends({ type: 'bid_result', ref: resent.ref, status: 201, body: { leading: true } });
  const result = await answer;
  assert.equal(result.status, 201);
  assert.equal(result.body.leading, true);
});

test('pong updates the clock offset', () => {
  const { live, tick } = harness();
  const s = FakeSocket.all[0];
  s.serverOpens();
  const ping = s.sent.find((f) => f.type === 'ping');
  tick(100);
  s.serverSends({ type: 'pong', clientTime: ping.clientTime, serverTime: ping.clientTime + 5_050 });
  assert.equal(live.clock.offset(), 5_000);
});

import { statusText, parseAmount } from '../bid-panel.js';

test('the status line says whether I lead', () => {
  const s = { closed: false, leadingBidderId: 'p_101' };
  assert.equal(statusText(s, 'p_101', true), 'You are the highest bidder.');
  assert.equal(statusText(s, 'p_102', true), 'You have been outbid.');
  assert.equal(statusText(s, 'p_102', false), '');
  assert.equal(statusText({ ...s, closed: true }, 'p_101', true), 'Bidding closed.');
  assert.equal(statusText(null, 'p_1', true), '');
});

test('typed amounts are read leniently but never guessed', () => {
  assert.equal(parseAmount('125'), 125);
  assert.equal(parseAmount(' $1,250.50 '), 1250.5);
  assert.equal(parseAmount('12.5.5'), null);
  assert.equal(parseAmount('ten'), null);
  assert.equal(parseAmount('-5'), null);
  assert.equal(parseAmount(''), null);
});
