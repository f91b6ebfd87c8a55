import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clockText, fieldText, fieldValue, paddleText } from '../dashboard.js';
import { remainingText } from '../projector.js';

const frame = {
  type: 'dashboard', auctionId: 'a_1', state: 'bidding', serverTime: '2026-05-03T18:05:00Z',
  bidsTotal: 12, committedTotal: 1234.5, reoffer: { unitsSold: 3 },
};

test('dashboard fields are read by dotted paths and written as the page writes them', () => {
  assert.equal(fieldValue(frame, 'reoffer.unitsSold'), 3);
  assert.equal(fieldValue(frame, 'errors.refused'), undefined);
  assert.equal(fieldText(frame, 'bidsTotal', 'America/New_York'), '12');
  assert.equal(fieldText(frame, 'committedTotal', 'America/New_York'), '$1,234.50');
  assert.equal(fieldText(frame, 'stateLabel', 'America/New_York'), 'Bidding is open');
  assert.equal(fieldText(frame, 'updated', 'America/New_York'), '2:05 PM EDT');
  assert.equal(fieldText({ totalRaised: 80 }, 'totalRaised', 'UTC'), '$80.00');
});

test("times are the auction's zone's clock, named", () => {
  assert.equal(clockText('2026-12-24T23:30:00Z', 'America/Chicago'), '5:30 PM CST');
  assert.equal(clockText('not a time', 'America/Chicago'), '');
});

test('paddles, never names: p_101 reads Paddle 101', () => {
  assert.equal(paddleText('p_101'), 'Paddle 101');
  assert.equal(paddleText(null), '—');
});

test('projector countdowns run to the absolute deadline on the server clock', () => {
  const deadline = '2026-05-03T18:10:00Z';
  assert.equal(remainingText(deadline, Date.parse('2026-05-03T18:05:30Z')), '4 minutes, 30 seconds left');
  assert.equal(remainingText(deadline, Date.parse('2026-05-03T18:10:00Z')), 'closing now');
});
