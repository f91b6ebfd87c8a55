// Makes the hall's projector (/display) live: it follows the public `display:a_<n>` topic
// and redraws the total raised, the items closing soon (live prices, countdowns to their
// absolute deadlines on the server's clock) and the latest winners by paddle number.
//
// Protocol: docs/protocol.md, "The projector".

import { LiveSocket, formatMoney } from './live.js';
import { formatRemaining } from './countdown.js';
import { clockText, fieldText, paddleText } from './dashboard.js';

/** The countdown's text for a deadline, given the server's time now (ms). */
export function remainingText(closesAt, serverNow) {
  const left = Date.parse(closesAt) - serverNow;
  return left > 0 ? `${formatRemaining(left)} left` : 'closing now';
}

function span(text, className) {
  const el = document.createElement('span');
  if (className) el.className = className;
  el.textContent = text;
  return el;
}

function emptyRow(text) {
  const li = document.createElement('li');
  li.className = 'projector-empty';
  li.textContent = text;
  return li;
}

function closingRows(lines, titles, timeZone, serverNow) {
  if (lines.length === 0) return [emptyRow('Nothing closes in the next 10 minutes.')];
  return lines.map((line) => {
    const li = document.createElement('li');
    li.dataset.itemId = line.itemId;
    const when = span('closes at ', 'projector-when');
    const time = span(clockText(line.closesAt, timeZone));
    const countdown = span(remainingText(line.closesAt, serverNow), 'countdown');
    countdown.dataset.closesAt = line.closesAt;
    when.append(time, ' ', countdown);
    if (line.extended) when.append(' ', span('extended', 'tag tag-warning'));
    li.append(
      span(titles[line.itemId] || line.itemId, 'projector-title'),
      span(line.currentBid === null || line.currentBid === undefined ? 'No bids yet' : formatMoney(line.currentBid), 'projector-price'),
      when,
    );
    return li;
  });
}

function winnerRows(winners, titles) {
  if (winners.length === 0) return [emptyRow('No item has closed yet.')];
  return winners.map((w) => {
    const li = document.createElement('li');
    li.dataset.itemId = w.itemId;
    li.append(
      span(paddleText(w.paddle), 'projector-paddle'),
      span(titles[w.itemId] || w.itemId, 'projector-title'),
      span(formatMoney(w.amount), 'projector-price'),
    );
    return li;
  });
}

function start(root) {
  const auctionId = root.dataset.auctionId;
  const timeZone = root.dataset.timeZone;
  let titles = {};
  try {
    titles = JSON.parse(root.dataset.titles || '{}');
  } catch { /* ids stand in for titles */ }
  const connection = root.querySelector('[data-connection]');
  const closing = root.querySelector('[data-list="closingSoon"]');
  const winners = root.querySelector('[data-list="latestWinners"]');
  let live = null;

  const tick = () => {
    const now = live ? live.clock.serverNow() : Date.now();
    for (const el of root.querySelectorAll('.countdown[data-closes-at]')) {
      const text = remainingText(el.dataset.closesAt, now);
      if (el.textContent !== text) el.textContent = text;
    }
  };

  live = new LiveSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
    onStatus: (s) => {
      if (connection) connection.textContent = s === 'open' ? 'Live.' : 'Reconnecting…';
    },
    onMessage: (msg) => {
      if (msg.type !== 'display' || msg.auctionId !== auctionId) return;
      for (const el of root.querySelectorAll('[data-field]')) {
        const text = fieldText(msg, el.dataset.field, timeZone);
        if (el.textContent !== text) el.textContent = text;
      }
      const now = live.clock.serverNow();
      if (closing) closing.replaceChildren(...closingRows(msg.closingSoon || [], titles, timeZone, now));
      if (winners) winners.replaceChildren(...winnerRows(msg.latestWinners || [], titles));
    },
  });
  live.subscribe(`display:${auctionId}`);
  setInterval(tick, 1000);
}

if (typeof document !== 'undefined') {
  const root = document.querySelector('[data-projector]');
  if (root) start(root);
}
