// Live bidding in the browser: two people watch one item; one bids, the other's page
// updates by itself; the one who loses the lead is told at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchBrowser, newPage, addUser, postJson, stepper, uniqueEmail, eventually, sqlOn } from './helpers.js';

let server;
let browser;
let step;
let itemId;

const admin = { name: 'Ada Admin', email: uniqueEmail('ada'), password: 'the bells ring twice' };
const ann = { name: 'Ann Bidder', email: uniqueEmail('ann'), password: 'quilts and casseroles' };
const bob = { name: 'Bob Bidder', email: uniqueEmail('bob'), password: 'hymns at half past ten' };

const sql = (statement) => sqlOn(server, statement);

before(async () => {
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
  await step('create an admin and two bidders', null, async () => {
    for (const [who, roles] of [[admin, ['admin', 'donor']], [ann, ['bidder']], [bob, ['bidder']]]) {
      await addUser(server, { ...who, roles });
    }
  });
  await step('create an auction whose bidding is open, and an item in it', null, async () => {
    const login = await postJson(server, '/api/auth/login', { email: admin.email, password: admin.password });
    assert.equal(login.status, 200);
    const now = Date.now();
    const iso = (ms) => new Date(now + ms).toISOString();
    const res = await fetch(`${server.baseUrl}/api/auctions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${login.body.token}` },
      body: JSON.stringify({
        year: 2026, name: 'Live test auction',
        registrationOpenAt: iso(-86_400_000), catalogPublishAt: iso(-86_400_000), biddingOpenAt: iso(-3_600_000),
        biddingCloseAt: iso(3_600_000), reofferOpenAt: iso(7_200_000), reofferCloseAt: iso(10_800_000),
        settlementOpenAt: iso(14_400_000),
      }),
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    const auction = JSON.parse(text);
    const auctionId = auction.id.replace('a_', '');
    const donorId = await sql(`SELECT id FROM users WHERE email = '${admin.email}'`);
    itemId = await sql(`INSERT INTO items (auction_id, donor_id, type, title, description, category_id, opening_min_bid, status)
      VALUES (${auctionId}, ${donorId}, 'competitive', 'Lakeside Dinner for Six', 'A summer evening by the lake.', 1, 5000, 'published') RETURNING id`);
    assert.match(itemId, /^\d+$/);
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

test('two pages watch one item: one bids, the other updates live', async () => {
  const { page: annPage } = await newPage(browser);
  const { page: bobPage } = await newPage(browser);
  const itemUrl = `${server.baseUrl}/items/it_${itemId}`;

  await step('both log in and open the item', annPage, async () => {
    await logIn(annPage, ann);
    await logIn(bobPage, bob);
    await annPage.goto(itemUrl);
    await bobPage.goto(itemUrl);
    for (const page of [annPage, bobPage]) {
      await eventually(async () => (await page.locator('[data-connection]').textContent()).includes('Live'), { timeout: 10_000, message: 'socket is live' });
      assert.equal((await page.locator('[data-price]').textContent()).trim(), 'No bids yet');
    }
  });

  await step('Ann bids $60 over the socket', annPage, async () => {
    await annPage.getByLabel('Your bid in dollars').fill('60');
    await annPage.getByRole('button', { name: 'Place bid' }).click();
    await eventually(async () => (await annPage.locator('[data-alert]').textContent()).includes('You are the highest bidder at $60.00'), { timeout: 10_000, message: "Ann's confirmation" });
    assert.equal(await annPage.url(), itemUrl, 'no page reload');
  });

  await step("Bob's page shows Ann's bid without reloading", bobPage, async () => {
    await eventually(async () => (await bobPage.locator('[data-price]').textContent()).trim() === '$60.00', { timeout: 10_000, message: "Bob sees $60.00" });
    assert.equal((await bobPage.locator('[data-bid-count]').textContent()).trim(), '1');
  });

  await step('Bob outbids Ann; Ann is told at once', bobPage, async () => {
    await bobPage.getByLabel('Your bid in dollars').fill('80');
    await bobPage.getByRole('button', { name: 'Place bid' }).click();
    await eventually(async () => (await bobPage.locator('[data-status]').textContent()).includes('You are the highest bidder'), { timeout: 10_000, message: 'Bob leads' });
    await eventually(async () => (await annPage.locator('[data-alert]').textContent()).includes('You have been outbid'), { timeout: 10_000, message: 'Ann outbid alert' });
    assert.equal((await annPage.locator('[data-price]').textContent()).trim(), '$80.00');
    assert.equal(await annPage.locator('[data-alert]').getAttribute('role'), 'alert', 'announced to screen readers');
  });

  await step('a reload shows the same committed state (snapshot)', annPage, async () => {
    await annPage.reload();
    await eventually(async () => (await annPage.locator('[data-price]').textContent()).trim() === '$80.00', { timeout: 10_000, message: 'after reload' });
    assert.equal((await annPage.locator('[data-bid-count]').textContent()).trim(), '2');
  });
});
