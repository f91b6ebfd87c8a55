import { test } from 'node:test';
import assert from 'node:assert/strict';

import { unitsLeft, showLeft } from '../reoffer.js';
import { closedSummary, formatLocalTime, paddleText } from '../bid-panel.js';

test('units left come from capacity frames and snapshots only', () => {
  assert.equal(unitsLeft({ type: 'capacity', itemId: 'it_1', quantityRemaining: 3, price: 25 }), 3);
  assert.equal(unitsLeft({ type: 'capacity', itemId: 'it_1', quantityRemaining: 0, price: 25 }), 0);
  assert.equal(unitsLeft({ type: 'snapshot', itemId: 'it_1', quantityRemaining: 2 }), 2);
  assert.equal(unitsLeft({ type: 'price', itemId: 'it_1', currentBid: 30 }), null);
  assert.equal(unitsLeft({ type: 'capacity', itemId: 'it_1' }), null);
  assert.equal(unitsLeft(null), null);
});

// Just enough of the DOM for one row: a count, a quantity select, a buy cell.
function fakeRow(options) {
  const el = (extra = {}) => ({ textContent: '', children: [], append(c) { this.children.push(c); }, ...extra });
  const count = el();
  const select = { options: options.map((v) => ({ value: String(v), remove() { select.options = select.options.filter((o) => o !== this); } })) };
  const doc = { createElement: () => el({ attrs: {}, setAttribute(k, v) { this.attrs[k] = v; } }) };
  const cell = el({ ownerDocument: doc, textContent: 'Buy now' });
  const found = { '[data-left]': count, '[data-quantity]': select, '[data-buy-cell]': cell };
  const row = {
    querySelector: (sel) => (sel === '[data-sold-out]' ? (cell.children[0] || null) : found[sel] || null),
  };
  return { row, count, select, cell };
}

test('a row shows the units left, drops quantities no longer possible, and says sold out at 0', () => {
  const { row, count, select, cell } = fakeRow([1, 2, 3]);
  showLeft(row, 2);
  assert.equal(count.textContent, '2');
  assert.deepEqual(select.options.map((o) => o.value), ['1', '2']);
  assert.equal(cell.children.length, 0);
  showLeft(row, 0);
  assert.equal(count.textContent, '0');
  assert.equal(cell.textContent, '');
  assert.equal(cell.children.length, 1);
  assert.equal(cell.children[0].textContent, 'Sold out');
  showLeft(row, 0);
  assert.equal(cell.children.length, 1, 'said once');
});

test('the close is summed up with paddle numbers, never names', () => {
  assert.equal(paddleText('p_101'), '#101');
  assert.equal(
    closedSummary({ type: 'closed', itemId: 'it_1', finalPrice: 275, winningBidderId: 'p_101', quantitySold: 1 }),
    'Final price: $275.00. Won by paddle #101.',
  );
  assert.match(
    closedSummary({ type: 'closed', itemId: 'it_1', finalPrice: 80, winningBidderId: 'p_7', quantitySold: 3 }),
    /^Final price: \$80\.00\. Won by paddle #7\. 3 were sold/,
  );
  assert.equal(closedSummary({ type: 'closed', finalPrice: null, winningBidderId: null, quantitySold: 0 }), 'It closed without a bid.');
});

test('times are written as the server writes them, in the auction zone', () => {
  assert.equal(formatLocalTime('2026-05-03T18:00:00Z', 'America/New_York'), 'Sunday, May 3, 2026, 2:00 PM EDT');
  assert.equal(formatLocalTime('2026-01-15T08:05:00Z', 'America/Chicago'), 'Thursday, January 15, 2026, 2:05 AM CST');
  assert.equal(formatLocalTime('not a time', 'America/New_York'), '');
});
