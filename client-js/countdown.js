// Countdown to an absolute deadline, corrected for the difference between
// the visitor's clock and the server's clock.
//
// Markup (rendered by the server; the page works without this script):
//   <p class="countdown" data-deadline="2025-03-14T19:00:00Z"
//      data-server-time="2025-03-01T12:00:00Z" aria-live="off"></p>
//
// Optional attributes:
//   data-suffix  text after the remaining time (default " to go")
//   data-done    text shown once the deadline has passed

const UNITS = [
  { name: 'day', ms: 86_400_000 },
  { name: 'hour', ms: 3_600_000 },
  { name: 'minute', ms: 60_000 },
  { name: 'second', ms: 1_000 },
];

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Human text for a remaining duration, e.g. "2 days, 3 hours",
 * "5 minutes, 2 seconds", "45 seconds", or "now" when the time is up.
 * Shows the largest non-zero unit and the next smaller unit (omitted when 0).
 * Partial seconds round up, so the text never says "now" before the deadline.
 * @param {number} ms milliseconds remaining
 * @returns {string}
 */
export function formatRemaining(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return 'now';
  let rest = Math.ceil(ms / 1000) * 1000;
  const parts = UNITS.map(({ name, ms: size }) => {
    const n = Math.floor(rest / size);
    rest -= n * size;
    return { name, n };
  });
  const first = parts.findIndex((p) => p.n > 0);
  const out = [plural(parts[first].n, parts[first].name)];
  const next = parts[first + 1];
  if (next && next.n > 0) out.push(plural(next.n, next.name));
  return out.join(', ');
}

/**
 * Milliseconds to add to the client clock to get the server clock.
 * Returns 0 when the server time cannot be parsed.
 * @param {string} serverTimeIso RFC 3339 timestamp from the server
 * @param {number} clientNowMs client time (ms since epoch) when that timestamp was produced
 * @returns {number}
 */
export function clockOffset(serverTimeIso, clientNowMs) {
  if (typeof serverTimeIso !== 'string' || serverTimeIso === '') return 0;
  const server = Date.parse(serverTimeIso);
  if (!Number.isFinite(server) || !Number.isFinite(clientNowMs)) return 0;
  return server - clientNowMs;
}

/** Best estimate of the client time at which the server rendered this page. */
function pageResponseClientTime() {
  try {
    const nav = performance.getEntriesByType('navigation')[0];
    if (nav && nav.responseStart > 0 && performance.timeOrigin) {
      return performance.timeOrigin + nav.responseStart;
    }
  } catch (_) {
    /* older browsers: fall through */
  }
  return Date.now();
}

/**
 * Find every `.countdown[data-deadline]` element and keep its text updated
 * every second. Returns a function that stops the updates.
 * @param {ParentNode} [root=document]
 */
export function start(root = document) {
  const clientRef = pageResponseClientTime();
  const items = [];
  for (const el of root.querySelectorAll('.countdown[data-deadline]')) {
    const deadline = Date.parse(el.dataset.deadline);
    if (!Number.isFinite(deadline)) continue;
    items.push({
      el,
      deadline,
      offset: clockOffset(el.dataset.serverTime, clientRef),
      suffix: el.dataset.suffix ?? ' to go',
      done: el.dataset.done ?? 'It’s time! Refresh the page to see the latest.',
      finished: false,
    });
  }
  if (items.length === 0) return () => {};

  let timer = null;
  const tick = () => {
    const now = Date.now();
    let active = 0;
    for (const item of items) {
      if (item.finished) continue;
      const remaining = item.deadline - (now + item.offset);
      let text;
      if (remaining <= 0) {
        item.finished = true;
        text = item.done;
      } else {
        active += 1;
        text = formatRemaining(remaining) + item.suffix;
      }
      if (item.el.textContent !== text) item.el.textContent = text;
    }
    if (active === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
  tick();
  if (items.some((i) => !i.finished)) timer = setInterval(tick, 1000);
  // Timers are throttled in background tabs: refresh immediately on return.
  const onVisible = () => { if (document.visibilityState === 'visible') tick(); };
  document.addEventListener('visibilitychange', onVisible);
  return () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    document.removeEventListener('visibilitychange', onVisible);
  };
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', () => start(), { once: true });
  } else {
    start();
  }
}
