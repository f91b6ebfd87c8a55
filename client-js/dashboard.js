// Makes the managers' live close dashboard (/manage/live) live: it follows
// `dashboard:a_<n>` over the page's socket (live.js) and writes every number and list of
// each frame (twice a second) into the server-rendered page. Without this script the page
// shows the numbers as they were when it loaded.
//
// Protocol: docs/protocol.md, "The managers' dashboard".

import { LiveSocket, formatMoney } from './live.js';

/** What the pages call each auction state (the server's `AuctionState::label`). */
export const STATE_LABELS = {
  draft: 'Being prepared',
  registration: 'Registration is open',
  catalog: 'Catalog preview',
  bidding: 'Bidding is open',
  paused: 'Bidding has closed',
  reoffer: 'Buy-it-now is open',
  closed: 'The auction has closed',
  settlement: 'Settlement',
};

/** `8:05 PM EDT`: an instant as the auction's zone's clock shows it. */
export function clockText(iso, timeZone) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '';
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(t);
  } catch {
    return new Intl.DateTimeFormat('en-US', { hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(t);
  }
}

/** `p_101` → `Paddle 101`; nothing for no leader. */
export function paddleText(label) {
  if (!label) return '—';
  return `Paddle ${String(label).replace(/^p_/, '')}`;
}

/** A frame's value at a dotted path (`reoffer.unitsSold`). */
export function fieldValue(frame, path) {
  return path.split('.').reduce((v, key) => (v === null || v === undefined ? v : v[key]), frame);
}

/** A frame's field as the page shows it. */
export function fieldText(frame, path, timeZone) {
  if (path === 'stateLabel') return STATE_LABELS[frame.state] || '';
  if (path === 'updated') return clockText(frame.serverTime, timeZone);
  const value = fieldValue(frame, path);
  if (value === undefined || value === null) return '';
  if (path === 'committedTotal' || path === 'totalRaised') return formatMoney(value);
  return String(value);
}

function cell(tag, text, className) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  el.textContent = text;
  return el;
}

function tag(text, kind) {
  return cell('span', text, `tag ${kind}`);
}

/** Replaces a table body's rows with `lines` (DOM calls only: titles are never HTML). */
function renderRows(tbody, lines, titles, timeZone) {
  const rows = lines.map((line) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    const a = cell('a', titles[line.itemId] || line.itemId);
    a.href = `/items/${line.itemId}`;
    th.append(a);
    const when = document.createElement('td');
    const time = cell('time', clockText(line.closesAt, timeZone));
    time.dateTime = line.closesAt;
    when.append(time);
    if (line.closed) when.append(' ', tag('closed', 'tag-done'));
    else if (line.extended) when.append(' ', tag('extended', 'tag-warning'));
    tr.append(
      th,
      cell('td', line.currentBid === null || line.currentBid === undefined ? 'No bids yet' : formatMoney(line.currentBid), 'num'),
      cell('td', String(line.bidCount), 'num'),
      cell('td', String(line.bidders), 'num'),
      cell('td', paddleText(line.leadingBidderId)),
      when,
    );
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('td', 'None right now.');
    td.colSpan = 6;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function start(root) {
  const auctionId = root.dataset.auctionId;
  const timeZone = root.dataset.timeZone;
  let titles = {};
  try {
    titles = JSON.parse(root.dataset.titles || '{}');
  } catch { /* ids stand in for titles */ }
  const connection = root.querySelector('[data-connection]');

  const apply = (frame) => {
    for (const el of root.querySelectorAll('[data-field]')) {
      const text = fieldText(frame, el.dataset.field, timeZone);
      if (el.textContent !== text) el.textContent = text;
    }
    for (const tbody of root.querySelectorAll('tbody[data-list]')) {
      renderRows(tbody, frame[tbody.dataset.list] || [], titles, timeZone);
    }
  };

  const live = new LiveSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
    onStatus: (s) => {
      if (connection) connection.textContent = s === 'open' ? 'Live: the numbers update by themselves.' : 'Reconnecting… the numbers may be a few seconds old.';
    },
    onMessage: (msg) => {
      if (msg.type === 'dashboard' && msg.auctionId === auctionId) apply(msg);
    },
  });
  live.subscribe(`dashboard:${auctionId}`);
}

if (typeof document !== 'undefined') {
  const root = document.querySelector('[data-live-dashboard]');
  if (root) start(root);
}
