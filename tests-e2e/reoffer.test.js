// The end of auction night in the browser: a late bid moves an item's close and the page
// says the new time; a bidder wins an item and is told so on its page as the close happens
// (the `won` frame) and after a reload; then two people watch
// the last unit of a reoffer item, one buys it through the confirmation page, and the
// other's list shows "Sold out" without a reload (the `capacity` frame).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { formatLocalTime } from '../client-js/bid-panel.js';
import { startServer, launchBrowser, newPage, addUser, stepper, uniqueEmail, eventually, sqlOn } from './helpers.js';

let server;
let browser;
let step;
let donorId;

const donor = { name: 'Dora Donor', email: uniqueEmail('dora'), password: 'the bells ring twice' };
const ann = { name: 'Ann Bidder', email: uniqueEmail('ann'), password: 'quilts and casseroles' };
const bob = { name: 'Bob Bidder', email: uniqueEmail('bob'), password: 'hymns at half past ten' };

const sql = (statement) => sqlOn(server, statement);

/** An auction written straight to the database, its times in seconds from now. The
 * server has no clock to move from outside, so the times are real and near. */
async function auction(year, name, state, s) {
  const at = (seconds) => `now() + interval '${seconds} seconds'`;
  return sql(`INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
      reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, hard_close_at, state)
    VALUES (${year}, '${name}', ${at(s.registrationOpen ?? -86_400)}, ${at(s.registrationOpen ?? -86_400)}, ${at(s.biddingOpen)}, ${at(s.biddingClose)},
      ${at(s.reofferOpen)}, ${at(s.reofferClose)}, ${at(s.reofferClose + 3600)}, ${s.softClose || 0}, ${at(s.biddingClose + 300)}, '${state}') RETURNING id`);
}

async function item(auctionId, type, title, units) {
  return sql(`INSERT INTO items (auction_id, donor_id, type, title, description, category_id, opening_min_bid, quantity_total, status)
    VALUES (${auctionId}, ${donorId}, '${type}', '${title}', 'Made with care.', 1, 5000, ${units}, 'published') RETURNING id`);
}

before(async () => {
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
  await step('create a donor and two bidders', null, async () => {
    for (const [who, roles] of [[donor, ['donor']], [ann, ['bidder']], [bob, ['bidder']]]) {
      await addUser(server, { ...who, roles });
    }
    donorId = await sql(`SELECT id FROM users WHERE email = '${donor.email}'`);
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function logIn(page, who) {
  await page.goto(`${server.baseUrl}/login`);
  await page.getByLabel('Email address').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.waitForURL(/\/account/);
}

const text = async (page, selector) => ((await page.locator(selector).first().textContent()) || '').replace(/\s+/g, ' ').trim();

test('a late bid moves the close: the page says the new time, in the auction zone', async () => {
  const { page } = await newPage(browser);
  let itemUrl;
  await step('an auction closing in 15 seconds; a late bid moves its close to two minutes after the bid', null, async () => {
    const id = await auction(2028, 'Soft close', 'bidding', { biddingOpen: -3600, biddingClose: 15, reofferOpen: 3600, reofferClose: 7200, softClose: 120 });
    itemUrl = `${server.baseUrl}/items/it_${await item(id, 'competitive', 'Quilted Table Runner', 1)}`;
  });
  await step('Bob bids late; the close time on his page moves by itself', page, async () => {
    await logIn(page, bob);
    await page.goto(itemUrl);
    await eventually(async () => (await text(page, '[data-connection]')).includes('Live'), { timeout: 10_000, message: 'socket is live' });
    const before = await page.locator('[data-closes-at]').getAttribute('datetime');
    const shownBefore = await text(page, '[data-closes-at]');
    await page.getByLabel('Your bid in dollars').fill('60');
    await page.getByRole('button', { name: 'Place bid' }).click();
    await eventually(async () => (await page.locator('[data-closes-at]').getAttribute('datetime')) !== before, { timeout: 10_000, message: 'the close moved' });
    const moved = await page.locator('[data-closes-at]').getAttribute('datetime');
    // Over a minute later, so the words change too (pages show minutes).
    assert.ok(Date.parse(moved) - Date.parse(before) > 60_000, `${moved} vs ${before}`);
    const shown = await text(page, '[data-closes-at]');
    assert.notEqual(shown, shownBefore);
    assert.equal(shown, formatLocalTime(moved, 'America/New_York'));
    assert.match(shown, /^\w+day, \w+ \d+, \d{4}, \d+:\d\d [AP]M E[SD]T$/);
  });
});

test('the winner is told "You won" as bidding closes, and again after a reload', async () => {
  const { page } = await newPage(browser);
  let itemUrl;
  await step('an auction whose bidding closes in 20 seconds, with an item', null, async () => {
    const id = await auction(2026, 'Closing soon', 'bidding', { biddingOpen: -3600, biddingClose: 20, reofferOpen: 3600, reofferClose: 7200 });
    const itemId = await item(id, 'competitive', 'Lakeside Dinner for Six', 1);
    itemUrl = `${server.baseUrl}/items/it_${itemId}`;
  });

  await step('Ann bids and leads', page, async () => {
    await logIn(page, ann);
    await page.goto(itemUrl);
    await eventually(async () => (await text(page, '[data-connection]')).includes('Live'), { timeout: 10_000, message: 'socket is live' });
    await page.getByLabel('Your bid in dollars').fill('75');
    await page.getByRole('button', { name: 'Place bid' }).click();
    await eventually(async () => (await text(page, '[data-alert]')).includes('You are the highest bidder at $75.00'), { timeout: 10_000, message: "Ann's bid" });
    assert.equal(await page.locator('[data-won]').isVisible(), false, 'not won yet');
  });

  await step('bidding closes: the page says so and that Ann won, without a reload', page, async () => {
    await eventually(async () => (await text(page, '[data-won]')) === 'You won this item for $75.00.', { timeout: 40_000, interval: 250, message: 'the won frame' });
    assert.equal(await page.locator('[data-won]').isVisible(), true);
    assert.equal(await text(page, '[data-status]'), 'Bidding closed.');
    assert.match(await text(page, '.bid-closes'), /^Bidding closed on /);
    const paddle = await sql(`SELECT paddle_number FROM users WHERE email = '${ann.email}'`);
    assert.equal(await text(page, '[data-closed-summary]'), `Final price: $75.00. Won by paddle #${paddle}.`);
    assert.equal(await page.locator('[data-bid-amount]').isDisabled(), true, 'no more bids');
  });

  await step('after a reload the page still says it (rendered by the server)', page, async () => {
    await page.reload();
    assert.equal(await text(page, '[data-won]'), 'You won this item for $75.00.');
    assert.equal(await page.locator('[data-bid-form]').count(), 0);
  });

  await step('the win is on her account', page, async () => {
    await page.goto(`${server.baseUrl}/account`);
    const wins = await text(page, '[data-commitments]');
    assert.match(wins, /Lakeside Dinner for Six Won at auction 1 \$75\.00 \$75\.00/);
    assert.match(wins, /Total\s*\$75\.00/);
  });
});

test('two people watch the last unit: one buys it, the other sees "Sold out" live', async () => {
  const { page: annPage } = await newPage(browser);
  const { page: bobPage } = await newPage(browser);
  const listUrl = `${server.baseUrl}/reoffer`;
  // Its registration opened last, so it is the current auction, the one /reoffer lists.
  await step('an auction in its reoffer phase with one jar of jam left', null, async () => {
    const id = await auction(2027, 'Buy it now', 'reoffer', { registrationOpen: -7200, biddingOpen: -7200, biddingClose: -3600, reofferOpen: -60, reofferClose: 86_400 });
    await item(id, 'fixed_price_item', 'Homemade Plum Jam', 1);
  });

  await step('both open the list and see 1 left', annPage, async () => {
    await logIn(annPage, ann);
    await logIn(bobPage, bob);
    for (const page of [annPage, bobPage]) {
      await page.goto(listUrl);
      await eventually(async () => (await text(page, '[data-connection]')).includes('Live'), { timeout: 10_000, message: 'socket is live' });
      assert.equal(await text(page, '[data-reoffer-item] [data-left]'), '1');
      assert.equal(await page.getByRole('button', { name: 'Buy now' }).count(), 1);
    }
  });

  await step('Ann buys it: Buy now, then Confirm purchase', annPage, async () => {
    await annPage.getByRole('button', { name: 'Buy now' }).click();
    await annPage.waitForURL(/\/reoffer\/items\/it_\d+\/buy/);
    assert.match(await text(annPage, 'main'), /Buy 1 × Homemade Plum Jam for \$50\.00\?/);
    await annPage.getByRole('button', { name: 'Confirm purchase' }).click();
    await annPage.waitForURL(listUrl);
    assert.equal(await text(annPage, '.flash'), 'You bought it: 1 × Homemade Plum Jam for $50.00. It is in your account.');
  });

  await step("Bob's list goes to 0 and says Sold out without a reload", bobPage, async () => {
    await eventually(async () => (await text(bobPage, '[data-reoffer-item] [data-left]')) === '0', { timeout: 10_000, message: 'count to 0' });
    await eventually(async () => (await text(bobPage, '[data-reoffer-item] [data-buy-cell]')) === 'Sold out', { timeout: 5_000, message: 'Sold out shown' });
    assert.equal(await bobPage.getByRole('button', { name: 'Buy now' }).count(), 0);
    assert.equal(await bobPage.url(), listUrl, 'no reload');
  });
});
