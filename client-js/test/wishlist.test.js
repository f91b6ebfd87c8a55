import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseList, toggle, cardModel, buttonText, MAX_SAVED } from '../wishlist.js';

test('stored text is read defensively: bad JSON, wrong shapes and bad ids are dropped', () => {
  assert.deepEqual(parseList(null), []);
  assert.deepEqual(parseList('not json'), []);
  assert.deepEqual(parseList('{"a":1}'), []);
  assert.deepEqual(parseList('["it_3", "it_3", 7, "u_1", "it_0", "it_x", "it_12"]'), ['it_3', 'it_12']);
  assert.deepEqual(parseList('["it_1\\"><script>"]'), [], 'no markup can ride in an id');
});

test('the list is capped so a tampered value cannot make the page fetch thousands', () => {
  const many = JSON.stringify(Array.from({ length: 500 }, (_, i) => `it_${i + 1}`));
  assert.equal(parseList(many).length, MAX_SAVED);
});

test('toggle adds then removes, and never mutates its input', () => {
  const a = ['it_1'];
  const b = toggle(a, 'it_2');
  assert.deepEqual(a, ['it_1']);
  assert.deepEqual(b, ['it_1', 'it_2']);
  assert.deepEqual(toggle(b, 'it_1'), ['it_2']);
  assert.deepEqual(toggle(b, 'nonsense'), b);
});

test('card model: current bid for competitive items with bids, opening bid before, price otherwise', () => {
  const base = { id: 'it_5', title: 'Quilt', openingBid: 150, images: [{ thumbUrl: '/media/items/t.jpg', alt: 'A blue quilt' }] };
  assert.equal(cardModel({ ...base, type: 'competitive', currentBid: 175.5 }).priceText, 'Current bid: $175.50');
  assert.equal(cardModel({ ...base, type: 'competitive', currentBid: null }).priceText, 'Opening bid: $150.00');
  const fixed = cardModel({ ...base, type: 'fixed_price_event', currentBid: null, images: [] });
  assert.equal(fixed.priceText, 'Price: $150.00');
  assert.equal(fixed.thumbUrl, null);
  const m = cardModel({ ...base, type: 'service' });
  assert.equal(m.href, '/items/it_5');
  assert.equal(m.alt, 'A blue quilt');
});

test('button text says the state', () => {
  assert.equal(buttonText(false), 'Save to my list');
  assert.match(buttonText(true), /^Saved/);
});
