// The catalog in the browser: a donor offers an item with a photo through the pages, a
// manager approves and publishes it from the review queue, and a guest finds it by search,
// saves it to the device's list and sees it on /wishlist.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchBrowser, newPage, addUser, postJson, stepper, uniqueEmail, png } from './helpers.js';

let server;
let browser;
let step;

const admin = { name: 'Ada Admin', email: uniqueEmail('ada'), password: 'the bells ring twice' };
const donor = { name: 'Dora Donor', email: uniqueEmail('dora'), password: 'lighthouses at dusk' };
const manager = { name: 'Max Manager', email: uniqueEmail('max'), password: 'review with kindness' };
const TITLE = 'Lighthouse Watercolor';

before(async () => {
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
  await step('create the people and an auction', null, async () => {
    await addUser(server, { ...admin, roles: ['admin'] });
    await addUser(server, { ...donor, roles: ['donor'] });
    await addUser(server, { ...manager, roles: ['manager'] });
    const login = await postJson(server, '/api/auth/login', { email: admin.email, password: admin.password });
    assert.equal(login.status, 200);
    const now = Date.now();
    const iso = (ms) => new Date(now + ms).toISOString();
    const res = await fetch(`${server.baseUrl}/api/auctions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${login.body.token}` },
      body: JSON.stringify({
        year: 2026, name: 'Catalog test auction',
        registrationOpenAt: iso(-86_400_000), catalogPublishAt: iso(-3_600_000), biddingOpenAt: iso(86_400_000),
        biddingCloseAt: iso(2 * 86_400_000), reofferOpenAt: iso(3 * 86_400_000), reofferCloseAt: iso(4 * 86_400_000),
        settlementOpenAt: iso(5 * 86_400_000),
      }),
    });
    assert.equal(res.status, 201, await res.text());
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

test('a donor offers an item with a photo, a manager publishes it, a guest finds it', async () => {
  const { page: donorPage } = await newPage(browser);
  const { page: managerPage } = await newPage(browser);
  const { page: guestPage } = await newPage(browser);

  await step('the donor fills in the item form', donorPage, async () => {
    await logIn(donorPage, donor);
    await donorPage.getByRole('link', { name: 'My items' }).click();
    await donorPage.getByRole('link', { name: 'Offer an item or event' }).click();
    await donorPage.getByLabel('Kind of item').selectOption({ label: 'Silent auction' });
    await donorPage.getByLabel('Title').fill(TITLE);
    await donorPage.getByLabel('Description').fill('A watercolor of the harbor lighthouse at dusk, framed.');
    await donorPage.getByLabel('Category').selectOption({ label: 'Goods' });
    await donorPage.getByLabel('Tags (optional)').fill('art, painting');
    await donorPage.getByLabel('Opening bid or price in dollars').fill('40');
    await donorPage.getByLabel('Fair market value in dollars (optional)').fill('120');
    await donorPage.getByRole('button', { name: 'Save as a draft' }).click();
    await donorPage.waitForURL(/\/donor\/items\/it_\d+\/edit$/);
    assert.match(await donorPage.locator('.flash').textContent(), /Saved as a draft/);
  });

  await step('the donor adds a photo with alt text', donorPage, async () => {
    await donorPage.getByLabel('Photo', { exact: true }).setInputFiles({ name: 'lighthouse.png', mimeType: 'image/png', buffer: png(24, 16) });
    await donorPage.getByLabel('Describe the photo').fill('Watercolor of a white lighthouse at dusk');
    await donorPage.getByRole('button', { name: 'Add photo' }).click();
    await donorPage.waitForURL(/\/edit$/);
    assert.match(await donorPage.locator('.flash').textContent(), /Photo added/);
    assert.equal(await donorPage.getByAltText('Watercolor of a white lighthouse at dusk').count(), 1);
  });

  await step('the donor adds a wrong photo and removes it again', donorPage, async () => {
    await donorPage.getByLabel('Photo', { exact: true }).setInputFiles({ name: 'oops.png', mimeType: 'image/png', buffer: png(16, 16) });
    await donorPage.getByLabel('Describe the photo').fill('Blurry photo of a thumb');
    await donorPage.getByRole('button', { name: 'Add photo' }).click();
    await donorPage.waitForURL(/\/edit$/);
    assert.equal(await donorPage.getByAltText('Blurry photo of a thumb').count(), 1);
    await donorPage.getByRole('button', { name: 'Remove the photo “Blurry photo of a thumb”' }).click();
    await donorPage.waitForURL(/\/edit$/);
    assert.match(await donorPage.locator('.flash').textContent(), /Photo removed/);
    assert.equal(await donorPage.getByAltText('Blurry photo of a thumb').count(), 0);
    assert.equal(await donorPage.getByAltText('Watercolor of a white lighthouse at dusk').count(), 1, 'the other photo stays');
  });

  await step('the donor submits it for review', donorPage, async () => {
    await donorPage.getByRole('button', { name: 'Submit for review' }).click();
    await donorPage.waitForURL(/\/donor\/items$/);
    assert.match(await donorPage.locator('main').textContent(), /Waiting for review/);
  });

  await step('the manager approves and publishes it', managerPage, async () => {
    await logIn(managerPage, manager);
    await managerPage.getByRole('link', { name: 'Review' }).click();
    await managerPage.getByRole('button', { name: `Approve ${TITLE}` }).click();
    await managerPage.waitForURL(/\/manage\/review$/);
    assert.match(await managerPage.locator('.flash').textContent(), /approved/);
    await managerPage.getByRole('button', { name: `Publish ${TITLE}` }).click();
    assert.match(await managerPage.locator('.flash').textContent(), /published in the catalog/);
  });

  await step('a guest finds it by searching part of a word', guestPage, async () => {
    await guestPage.goto(`${server.baseUrl}/catalog`);
    await guestPage.getByRole('searchbox', { name: 'Search' }).fill('lighthou');
    await guestPage.getByRole('button', { name: 'Search', exact: true }).click();
    await guestPage.waitForURL(/q=lighthou/);
    assert.match(await guestPage.locator('.result-count').textContent(), /^1 item/);
    const card = guestPage.locator('.item-card', { hasText: TITLE });
    assert.equal(await card.getByAltText('Watercolor of a white lighthouse at dusk').count(), 1);
    assert.match(await card.textContent(), /Opening bid:\s*\$40\.00/);
  });

  await step('the guest saves it to the list on this device and sees it on /wishlist', guestPage, async () => {
    const save = guestPage.locator('.item-card', { hasText: TITLE }).getByRole('button', { name: /Save to my list/ });
    await save.click();
    const saved = guestPage.locator('.item-card', { hasText: TITLE }).locator('[data-wishlist-toggle]');
    assert.equal(await saved.getAttribute('aria-pressed'), 'true');
    assert.match(await saved.textContent(), /^Saved to my list/);
    await guestPage.getByRole('link', { name: 'My list' }).click();
    await guestPage.waitForURL(/\/wishlist$/);
    const listed = guestPage.locator('[data-wishlist-items] .item-card');
    await listed.first().waitFor();
    assert.match(await listed.first().textContent(), new RegExp(TITLE));
    await guestPage.getByRole('link', { name: TITLE }).click();
    await guestPage.waitForURL(/\/items\/it_\d+$/);
    assert.equal(await guestPage.getByRole('heading', { level: 1 }).textContent(), TITLE);
    assert.match(await guestPage.locator('main').textContent(), /Fair market value: \$120\.00/);
  });
});
