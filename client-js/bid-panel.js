// Makes the item page's bid panel live: price, bid count, countdown, the close time as a
// late bid moves it, "you lead" / "outbid", the close ("Bidding closed", the final price,
// "You won"), and bidding over the WebSocket. On a phone it also shows the sticky bar
// (price, countdown, Bid) once the panel scrolled away, and the one-tap "Bid $next" button
// asks in a dialog that says the amount. Without this script the panel is a plain form that
// posts to the server, and "Bid $next" opens the server's confirmation page.

import { LiveSocket, applyItemMessage, formatMoney, newKey } from './live.js';
import { formatRemaining } from './countdown.js';

/** What the status line says for a state and the viewer's paddle (`p_101`, or ''). */
export function statusText(state, myPaddle, hasBid) {
  if (!state) return '';
  if (state.closed) return 'Bidding closed.';
  if (myPaddle && state.leadingBidderId === myPaddle) return 'You are the highest bidder.';
  if (hasBid) return 'You have been outbid.';
  return '';
}

/** `p_101` → `#101`: how pages write a paddle number. */
export function paddleText(bidderId) {
  return `#${String(bidderId || '').replace(/^p_/, '')}`;
}

/** What the panel says once an item closed, from its `closed` frame. */
export function closedSummary(msg) {
  if (!msg || msg.finalPrice === null || msg.finalPrice === undefined || !msg.winningBidderId) {
    return 'It closed without a bid.';
  }
  const more = msg.quantitySold > 1 ? ` ${msg.quantitySold} were sold; this is the top price.` : '';
  return `Final price: ${formatMoney(msg.finalPrice)}. Won by paddle ${paddleText(msg.winningBidderId)}.${more}`;
}

/** An instant as the server writes it on pages, in the auction's zone:
 * `Sunday, May 3, 2026, 2:00 PM EDT`. */
export function formatLocalTime(iso, timeZone) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  let parts;
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone: timeZone || undefined, weekday: 'long', year: 'numeric', month: 'long', day: 'numeric',
      hour: 'numeric', minute: '2-digit', hour12: true, timeZoneName: 'short',
    }).formatToParts(date);
  } catch {
    return '';
  }
  const p = Object.fromEntries(parts.map(({ type, value }) => [type, value]));
  return `${p.weekday}, ${p.month} ${p.day}, ${p.year}, ${p.hour}:${p.minute} ${String(p.dayPeriod).toUpperCase()} ${p.timeZoneName}`;
}

/** The amount a person typed, as a JSON number for the server ("$1,250.5" → 1250.5), or
 * null when it is not a number (the server refuses a third decimal itself). */
export function parseAmount(text) {
  const cleaned = String(text || '').replace(/[$,\s]/g, '');
  if (!/^\d+(\.\d+)?$/.test(cleaned)) return null;
  return Number(cleaned);
}

function start(panel) {
  const itemId = panel.dataset.itemId;
  const myPaddle = panel.dataset.myPaddle || '';
  const timeZone = panel.dataset.timeZone || undefined;
  const q = (sel) => panel.querySelector(sel);
  const els = {
    price: q('[data-price]'), count: q('[data-bid-count]'), min: q('[data-next-minimum]'),
    closes: q('[data-closes-at]'), closesVerb: q('[data-closes-verb]'), countdown: q('[data-countdown]'), status: q('[data-status]'),
    alert: q('[data-alert]'), connection: q('[data-connection]'), form: q('[data-bid-form]'),
    amount: q('[data-bid-amount]'), max: q('[data-bid-max]'), key: q('[data-bid-key]'),
    submit: q('[data-bid-submit]'),
    closedBox: q('[data-closed-box]'), closedSummary: q('[data-closed-summary]'), won: q('[data-won]'),
    quickForm: q('[data-quick-bid]'), quickAmount: q('[data-quick-amount]'),
    quickLabels: panel.querySelectorAll('[data-quick-label]'),
    confirm: q('[data-bid-confirm]'), confirmAmounts: panel.querySelectorAll('[data-confirm-amount]'),
    confirmYes: q('[data-confirm-yes]'), confirmNo: q('[data-confirm-no]'),
    sticky: q('[data-bid-sticky]'), stickyPrice: q('[data-sticky-price]'),
    stickyCountdown: q('[data-sticky-countdown]'), stickyBid: q('[data-sticky-bid]'),
    stickyNote: q('[data-sticky-note]'),
  };
  let state = null;
  let hasBid = false;
  let lastStatus = '';
  // What the panel's alert says; the sticky bar repeats it for eyes that scrolled away (the
  // panel's role="alert" already speaks it, so the bar's copy is hidden from screen readers).
  const setAlert = (text) => {
    els.alert.textContent = text;
    if (els.stickyNote) els.stickyNote.textContent = text;
  };

  const render = () => {
    if (!state) return;
    const priceText = state.currentBid === null || state.currentBid === undefined ? 'No bids yet' : formatMoney(state.currentBid);
    els.price.textContent = priceText;
    if (els.stickyPrice) els.stickyPrice.textContent = priceText;
    if (els.count) els.count.textContent = String(state.bidCount);
    if (els.min && state.nextMinimum !== undefined) els.min.textContent = formatMoney(state.nextMinimum);
    // The one-tap button always offers the next minimum, as the price moves.
    if (state.nextMinimum !== undefined && state.nextMinimum !== null) {
      if (els.quickAmount) els.quickAmount.value = Number(state.nextMinimum).toFixed(2);
      els.quickLabels.forEach((el) => { el.textContent = formatMoney(state.nextMinimum); });
    }
    // A late bid moved the close (soft close): say the new time, in the auction's zone.
    if (els.closes && state.closesAt && Date.parse(els.closes.getAttribute('datetime')) !== Date.parse(state.closesAt)) {
      els.closes.setAttribute('datetime', state.closesAt);
      const text = formatLocalTime(state.closesAt, timeZone);
      if (text) els.closes.textContent = text;
    }
    const text = statusText(state, myPaddle, hasBid);
    if (text !== lastStatus) {
      els.status.textContent = text;
      els.status.classList.toggle('winning', text.startsWith('You are'));
      els.status.classList.toggle('outbid', text.startsWith('You have been'));
      lastStatus = text;
    }
    if (state.closed && els.form) {
      els.form.querySelectorAll('input, button').forEach((el) => { el.disabled = true; });
    }
    if (state.closed) {
      // "Bidding closes on …" becomes "Bidding closed on …", as the page says after a reload.
      if (els.closesVerb) els.closesVerb.textContent = 'closed';
      if (els.quickForm) els.quickForm.hidden = true;
      if (els.confirm && els.confirm.open) els.confirm.close();
      showSticky(false);
    }
  };

  // The sticky bar: shown on narrow screens (CSS keeps it off wide ones) while neither the
  // panel's price nor its Bid button is in view, so price, countdown and Bid stay in reach.
  const showSticky = (on) => {
    if (!els.sticky) return;
    const wanted = on && !(state && state.closed);
    els.sticky.hidden = !wanted;
    document.body.classList.toggle('has-bid-sticky', wanted);
  };
  if (els.sticky && 'IntersectionObserver' in globalThis) {
    const watched = [els.price, els.quickForm || panel.querySelector('a.button')].filter(Boolean);
    const visible = new Set();
    const observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (e.isIntersecting) visible.add(e.target); else visible.delete(e.target);
      }
      // Only once the panel is above the view: before it (a long title) the bar is not needed.
      const above = panel.getBoundingClientRect().top < 0;
      showSticky(visible.size === 0 && above);
    });
    watched.forEach((el) => observer.observe(el));
  }

  const live = new LiveSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
    onStatus: (s) => {
      els.connection.textContent = s === 'open' ? 'Live: prices update by themselves.' : 'Reconnecting…';
    },
    onMessage: (msg) => {
      if (msg.type === 'outbid' && msg.itemId === itemId) {
        hasBid = true;
        setAlert(`You have been outbid. The current bid is ${formatMoney(msg.currentBid)}.`);
      }
      if (msg.itemId !== itemId) return;
      if (msg.type === 'closed') {
        state = { ...(state || {}), closed: true };
        if (els.closedSummary) els.closedSummary.textContent = closedSummary(msg);
        if (els.closedBox) els.closedBox.hidden = false;
      } else if (msg.type === 'won') {
        if (els.won) {
          els.won.textContent = `You won this item for ${formatMoney(msg.amount)}.`;
          els.won.hidden = false;
        }
        if (els.closedBox) els.closedBox.hidden = false;
        return;
      } else {
        state = applyItemMessage(state, msg);
      }
      render();
    },
  });
  live.subscribe(`item:${itemId}`);

  setInterval(() => {
    if (!state || !state.closesAt || !els.countdown) return;
    const left = Date.parse(state.closesAt) - live.clock.serverNow();
    els.countdown.textContent = left > 0 ? `(${formatRemaining(left)} left)` : '';
    if (els.stickyCountdown) els.stickyCountdown.textContent = left > 0 ? `${formatRemaining(left)} left` : '';
  }, 1000);

  // One bid over the socket, and what the bidder is told about it.
  const placeBid = async (amount, max, key, button) => {
    if (button) button.disabled = true;
    setAlert('');
    const result = await live.bid({ itemId, amount, maxProxyAmount: max, idempotencyKey: key });
    if (button) button.disabled = false;
    const body = result.body || {};
    if (result.status === 201) {
      hasBid = true;
      setAlert(body.leading
        ? `Your bid is in. You are the highest bidder at ${formatMoney(body.currentBid)}.`
        : `Your bid is in, but another bidder's maximum is higher. The current bid is ${formatMoney(body.currentBid)}.`);
    } else {
      setAlert(body.message || 'Your bid did not go through. Please try again.');
    }
  };

  if (els.form) {
    els.form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const amount = parseAmount(els.amount.value);
      const max = els.max && els.max.value.trim() ? parseAmount(els.max.value) : undefined;
      if (amount === null || max === null) {
        setAlert('Please enter the amount as a number, like 125 or 125.50.');
        return;
      }
      const key = els.key.value;
      els.key.value = newKey();
      await placeBid(amount, max, key, els.submit);
    });
  }

  // "Bid $next": one tap, then a dialog that says the amount. The amount is fixed when the
  // dialog opens, so "Yes" bids exactly what it said (a moved price is refused, and said).
  const canDialog = els.confirm && typeof els.confirm.showModal === 'function';
  let confirming = null;
  const askToBid = () => {
    const amount = parseAmount(els.quickAmount && els.quickAmount.value);
    if (amount === null || !canDialog) {
      if (els.quickForm) els.quickForm.submit();
      return;
    }
    confirming = amount;
    els.confirmAmounts.forEach((el) => { el.textContent = formatMoney(amount); });
    els.confirm.showModal();
  };
  if (els.quickForm && canDialog) {
    els.quickForm.addEventListener('submit', (event) => {
      event.preventDefault();
      askToBid();
    });
    if (els.stickyBid) els.stickyBid.addEventListener('click', askToBid);
    els.confirmNo.addEventListener('click', () => els.confirm.close());
    els.confirmYes.addEventListener('click', async () => {
      const amount = confirming;
      els.confirm.close();
      if (amount !== null) await placeBid(amount, undefined, newKey(), els.confirmYes);
    });
  } else if (els.stickyBid) {
    els.stickyBid.addEventListener('click', askToBid);
  }
}

if (typeof document !== 'undefined') {
  const panel = document.querySelector('[data-bid-panel]');
  if (panel) start(panel);
}
