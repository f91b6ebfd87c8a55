// Keeps the reoffer list ("buy it now") live: each row follows its item's topic and shows
// how many are left as purchases happen; at 0 its button gives way to "Sold out". Without
// this script the list is as the server rendered it, and buying works the same (a
// confirmation page, then the purchase).

import { LiveSocket } from './live.js';

/** Units left from a frame about the item: `capacity` frames, and the `snapshot` that
 * answers each subscribe (it carries `quantityRemaining` too). Null when the frame says
 * nothing about units. */
export function unitsLeft(msg) {
  if (!msg || (msg.type !== 'capacity' && msg.type !== 'snapshot')) return null;
  const left = Number(msg.quantityRemaining);
  return Number.isInteger(left) && left >= 0 ? left : null;
}

/** Shows `left` on one row: the count, the quantity choices no longer possible removed, and
 * at 0 "Sold out" in place of the buy button. */
export function showLeft(row, left) {
  const count = row.querySelector('[data-left]');
  if (count) count.textContent = String(left);
  const select = row.querySelector('[data-quantity]');
  if (select) {
    for (const option of [...select.options]) {
      if (Number(option.value) > left && Number(option.value) > 1) option.remove();
    }
  }
  if (left === 0 && !row.querySelector('[data-sold-out]')) {
    const cell = row.querySelector('[data-buy-cell]');
    if (cell) {
      cell.textContent = '';
      const sold = cell.ownerDocument.createElement('strong');
      sold.setAttribute('data-sold-out', '');
      sold.textContent = 'Sold out';
      cell.append(sold);
    }
  }
}

function start(list) {
  const rows = new Map();
  for (const row of list.querySelectorAll('[data-reoffer-item]')) rows.set(row.dataset.itemId, row);
  const connection = document.querySelector('[data-connection]');
  const live = new LiveSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
    onStatus: (s) => {
      if (connection) connection.textContent = s === 'open' ? 'Live: the number left updates by itself.' : 'Reconnecting…';
    },
    onMessage: (msg) => {
      const row = rows.get(msg.itemId);
      const left = unitsLeft(msg);
      if (row && left !== null) showLeft(row, left);
    },
  });
  for (const id of rows.keys()) live.subscribe(`item:${id}`);
}

if (typeof document !== 'undefined') {
  const list = document.querySelector('[data-reoffer-list]');
  if (list) start(list);
}
