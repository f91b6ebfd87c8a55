// Auction night from the staff's side: a manager watches the live close dashboard and the
// hall's projector while a bid comes in over the API; both pages change by themselves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchBrowser, newPage, addUser, postJson, stepper, uniqueEmail, eventually, sqlOn } from './helpers.js';

let server;
let browser;
let step;
let itemId;

const admin = { name: 'Ada Admin', email: uniqueEmail('ada'), password: 'the bells ring twice' };
const mona = { name: 'Mona Manager', email: uniqueEmail('mona'), password: 'the hall opens at six' };
const ann = { name: 'Ann Bidder', email: uniqueEmail('ann'), password: 'quilts and casseroles' };
const bob = { name: 'Bob Bidder', email: uniqueEmail('bob'), password: 'hymns at half past ten' };

const sql = (statement) => sqlOn(server, statement);

before(async () => {
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
  await step('create an admin, a manager and two bidders', null, async () => {
    for (const [who, roles] of [[admin, ['admin', 'donor']], [mona, ['manager']], [ann, ['bidder']], [bob, ['bidder']]]) {
      await addUser(server, { ...who, roles });
    }
  });
  await step('create an auction whose bidding closes in 5 minutes, and an item in it', null, async () => {
    const login = await postJson(server, '/api/auth/login', { email: admin.email, password: admin.password });
    assert.equal(login.status, 200);
    const now = Date.now();
    const iso = (ms) => new Date(now + ms).toISOString();
    const res = await fetch(`${server.baseUrl}/api/auctions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${login.body.token}` },
      body: JSON.stringify({
        year: 2026, name: 'Console test auction',
        registrationOpenAt: iso(-86_400_000), catalogPublishAt: iso(-86_400_000), biddingOpenAt: iso(-3_600_000),
        biddingCloseAt: iso(300_000), reofferOpenAt: iso(7_200_000), reofferCloseAt: iso(10_800_000),
        settlementOpenAt: iso(14_400_000),
      }),
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    const auctionId = JSON.parse(text).id.replace('a_', '');
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

/** `who` bids `amount` dollars over the API. */
async function bids(who, amount) {
  const login = await postJson(server, '/api/auth/login', { email: who.email, password: who.password });
  assert.equal(login.status, 200);
  const res = await fetch(`${server.baseUrl}/api/items/it_${itemId}/bids`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${login.body.token}` },
    body: JSON.stringify({ amount }),
  });
  assert.equal(res.status, 201, await res.text());
}

const text = async (page, selector) => (await page.locator(selector).first().textContent()).trim();

test('the live close dashboard and the projector change by themselves when a bid comes in', async () => {
  const { page: desk } = await newPage(browser);
  const { page: screen } = await newPage(browser);

  await step('the manager opens the live close dashboard; the hall opens the projector', desk, async () => {
    await logIn(desk, mona);
    await desk.goto(`${server.baseUrl}/manage/live`);
    assert.match(await desk.title(), /Live close/);
    await eventually(async () => (await text(desk, '[data-connection]')).includes('Live'), { timeout: 10_000, message: 'dashboard socket is live' });
    await screen.goto(`${server.baseUrl}/display`);
    await eventually(async () => (await text(screen, '[data-connection]')).includes('Live'), { timeout: 10_000, message: 'projector socket is live' });
  });

  let navigations = 0;
  desk.on('framenavigated', (frame) => { if (frame === desk.mainFrame()) navigations += 1; });
  screen.on('framenavigated', (frame) => { if (frame === screen.mainFrame()) navigations += 1; });

  await step('Ann bids $75 over the API', null, async () => {
    await bids(ann, 75);
  });

  await step("the dashboard's numbers change without a reload", desk, async () => {
    await eventually(async () => (await text(desk, '[data-field="committedTotal"]')) === '$75.00', { timeout: 5000, message: 'committed total $75.00' });
    assert.equal(await text(desk, '[data-field="bidsTotal"]'), '1');
    await eventually(async () => (await text(desk, 'tbody[data-list="closingSoon"]')).includes('Lakeside Dinner for Six'), { timeout: 5000, message: 'closing soon lists the item' });
    assert.match(await text(desk, 'tbody[data-list="topByPrice"]'), /\$75\.00/);
  });

  await step("the projector's live price and total change without a reload", screen, async () => {
    await eventually(async () => (await text(screen, '[data-field="totalRaised"]')) === '$75.00', { timeout: 5000, message: 'total raised $75.00' });
    const row = screen.locator('[data-list="closingSoon"] li', { hasText: 'Lakeside Dinner for Six' });
    await eventually(async () => (await row.locator('.projector-price').textContent()).trim() === '$75.00', { timeout: 5000, message: 'live price $75.00' });
    await eventually(async () => /left$/.test((await row.locator('.countdown').textContent()).trim()), { timeout: 5000, message: 'countdown runs' });
    assert.doesNotMatch(await screen.locator('body').innerText(), /Ann Bidder|Bob Bidder|@example/, 'no names or emails on the screen');
  });

  await step("Bob's bid shows too", screen, async () => {
    await bids(bob, 90);
    await eventually(async () => (await text(screen, '[data-field="totalRaised"]')) === '$90.00', { timeout: 5000, message: 'projector $90.00' });
    await eventually(async () => (await text(desk, '[data-field="bidsTotal"]')) === '2', { timeout: 5000, message: 'dashboard 2 bids' });
    assert.equal(navigations, 0, 'neither page reloaded');
  });
});
