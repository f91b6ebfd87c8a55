// "Save to my list": a wishlist kept in this device's localStorage while people browse the
// catalog before bidding. Nothing is sent to the server: the list is private to the device,
// and it works without an account. Without JavaScript the buttons stay hidden (they could
// do nothing) and /wishlist says so.
//
// Pure functions (parse, toggle, card models) are exported for the unit tests in test/;
// the DOM wiring runs only in a browser.

import { formatMoney } from './live.js';

export const STORAGE_KEY = 'auuction.wishlist.v1';
/** More than anyone saves; bounds what a tampered value can make the page fetch. */
export const MAX_SAVED = 100;
const ID = /^it_[1-9][0-9]{0,17}$/;

/** The saved ids from stored text: valid ids only, no duplicates, order kept. */
export function parseList(text) {
  let raw;
  try {
    raw = JSON.parse(text ?? '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  const out = [];
  for (const id of raw) {
    if (typeof id === 'string' && ID.test(id) && !out.includes(id)) out.push(id);
    if (out.length >= MAX_SAVED) break;
  }
  return out;
}

/** The list with `id` added (at the end) or removed; a new array, the old one untouched. */
export function toggle(list, id) {
  if (!ID.test(id)) return [...list];
  return list.includes(id) ? list.filter((x) => x !== id) : [...list, id].slice(-MAX_SAVED);
}

/** What a saved item's card shows, from GET /api/items/{id}. */
export function cardModel(item) {
  const competitive = item.type === 'competitive';
  const bid = item.currentBid;
  const label = competitive ? (bid != null ? 'Current bid' : 'Opening bid') : 'Price';
  const amount = competitive && bid != null ? bid : item.openingBid;
  const image = Array.isArray(item.images) && item.images.length ? item.images[0] : null;
  return {
    id: item.id,
    href: `/items/${encodeURIComponent(item.id)}`,
    title: String(item.title ?? ''),
    priceText: `${label}: ${formatMoney(amount)}`,
    thumbUrl: image ? image.thumbUrl : null,
    alt: image ? String(image.alt ?? '') : '',
  };
}

/** The button's words for its state. */
export function buttonText(saved) {
  return saved ? 'Saved to my list ✓' : 'Save to my list';
}

function load(storage) {
  try {
    return parseList(storage.getItem(STORAGE_KEY));
  } catch {
    return []; // storage disabled (private mode): behave as an empty list
  }
}

function store(storage, list) {
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify(list));
    return true;
  } catch {
    return false;
  }
}

function announce(text) {
  const region = document.querySelector('[data-wishlist-status]') || document.querySelector('.flash-region[role="status"]');
  if (!region) return;
  let p = region.matches('[data-wishlist-status]') ? region : region.querySelector('.flash');
  if (!p) {
    p = document.createElement('p');
    p.className = 'flash';
    region.appendChild(p);
  }
  p.textContent = text;
}

function wireButtons(storage) {
  const refresh = () => {
    const list = load(storage);
    for (const b of document.querySelectorAll('[data-wishlist-toggle]')) {
      const saved = list.includes(b.dataset.itemId);
      b.setAttribute('aria-pressed', saved ? 'true' : 'false');
      b.firstChild.textContent = buttonText(saved);
    }
  };
  for (const b of document.querySelectorAll('[data-wishlist-toggle]')) {
    b.hidden = false;
    b.addEventListener('click', () => {
      const next = toggle(load(storage), b.dataset.itemId);
      if (!store(storage, next)) {
        announce('Sorry, this browser does not let us save your list.');
        return;
      }
      refresh();
      const title = b.dataset.itemTitle || 'The item';
      announce(next.includes(b.dataset.itemId) ? `${title} is saved to your list.` : `${title} is removed from your list.`);
    });
  }
  refresh();
}

function cardElement(model, onRemove) {
  const li = document.createElement('li');
  li.className = 'item-card';
  if (model.thumbUrl) {
    const img = document.createElement('img');
    img.src = model.thumbUrl;
    img.alt = model.alt;
    img.width = 400;
    img.height = 300;
    li.appendChild(img);
  }
  const body = document.createElement('div');
  body.className = 'item-card-body';
  const h = document.createElement('h3');
  const a = document.createElement('a');
  a.href = model.href;
  a.textContent = model.title;
  h.appendChild(a);
  const price = document.createElement('p');
  price.className = 'price';
  price.textContent = model.priceText;
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'button button-small button-secondary';
  remove.textContent = `Remove ${model.title} from my list`;
  remove.addEventListener('click', () => onRemove(li));
  const actions = document.createElement('p');
  actions.className = 'actions';
  actions.appendChild(remove);
  body.append(h, price, actions);
  li.appendChild(body);
  return li;
}

async function renderPage(root, storage) {
  root.querySelector('[data-wishlist-nojs]')?.remove();
  const empty = root.querySelector('[data-wishlist-empty]');
  const list = root.querySelector('[data-wishlist-items]');
  const ids = load(storage);
  if (!ids.length) {
    empty.hidden = false;
    return;
  }
  announce('Loading your saved items…');
  const results = await Promise.all(ids.map(async (id) => {
    try {
      const res = await fetch(`/api/items/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' } });
      if (res.status === 404) return { id, gone: true };
      if (!res.ok) return { id, failed: true };
      return { id, item: await res.json() };
    } catch {
      return { id, failed: true };
    }
  }));
  const gone = results.filter((r) => r.gone).map((r) => r.id);
  if (gone.length) store(storage, load(storage).filter((id) => !gone.includes(id)));
  for (const r of results) {
    if (!r.item) continue;
    const model = cardModel(r.item);
    list.appendChild(cardElement(model, (li) => {
      store(storage, toggle(load(storage), model.id).filter((x) => x !== model.id));
      li.remove();
      announce(`${model.title} is removed from your list.`);
      if (!list.children.length) empty.hidden = false;
    }));
  }
  const shown = list.children.length;
  let text = `${shown} saved item${shown === 1 ? '' : 's'}.`;
  if (gone.length) text += ` ${gone.length} saved item${gone.length === 1 ? ' is' : 's are'} no longer in the catalog.`;
  if (results.some((r) => r.failed)) text += ' Some items could not be loaded; please try again later.';
  announce(text);
  if (!shown) empty.hidden = false;
}

if (typeof document !== 'undefined') {
  const storage = window.localStorage;
  wireButtons(storage);
  const page = document.querySelector('[data-wishlist-page]');
  if (page) renderPage(page, storage);
}
