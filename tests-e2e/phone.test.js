// Phone first on auction night: at 390×844 and 320×640 the header is one row with a Menu,
// an item page shows its price and Bid button in the first screen, a sticky bar keeps them
// in reach while scrolling, "Bid $next" asks first (a dialog; a page without JavaScript),
// the reoffer Buy button is in reach, and no page kind scrolls sideways, in normal and
// large-text (and high-contrast) modes. Screenshots go to tests-e2e/artifacts/phone/
// (git-ignored) to be looked at.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { REPO_ROOT, startServer, launchBrowser, newPage, addUser, postJson, stepper, uniqueEmail, eventually, png, sqlOn } from './helpers.js';

const SHOTS = path.join(REPO_ROOT, 'tests-e2e', 'artifacts', 'phone');
const PHONES = [{ width: 390, height: 844 }, { width: 320, height: 640 }];
const MODES = { normal: 'v1', large: 'v1.large', 'large-contrast': 'v1.large.contrast' };

let server;
let browser;
let step;
let itemId;
let donorItemId;
let adminId;

const admin = { name: 'Ada Admin', email: uniqueEmail('ada'), password: 'the bells ring twice' };
const ann = { name: 'Ann Bidder', email: uniqueEmail('ann'), password: 'quilts and casseroles' };
const bob = { name: 'Bob Bidder', email: uniqueEmail('bob'), password: 'hymns at half past ten' };

const sql = (statement) => sqlOn(server, statement);

/** An auction written straight to the database, its times in seconds from now. */
async function auction(year, name, state, s) {
  const at = (seconds) => `now() + interval '${seconds} seconds'`;
  return sql(`INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
      reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, hard_close_at, state)
    VALUES (${year}, '${name}', ${at(s.registrationOpen ?? -86_400)}, ${at(s.registrationOpen ?? -86_400)}, ${at(s.biddingOpen)}, ${at(s.biddingClose)},
      ${at(s.reofferOpen)}, ${at(s.reofferClose)}, ${at(s.reofferClose + 3600)}, 0, ${at(s.biddingClose + 300)}, '${state}') RETURNING id`);
}

async function item(auctionId, type, title, description, units = 1, status = 'published') {
  return sql(`INSERT INTO items (auction_id, donor_id, type, title, description, category_id, opening_min_bid, quantity_total, status)
    VALUES (${auctionId}, ${adminId}, '${type}', '${title}', '${description}', 1, 5000, ${units}, '${status}') RETURNING id`);
}

const LONG = 'A summer evening by the lake for six guests, with a three-course dinner cooked by the parish choir. '.repeat(12);

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
  await step('an admin (also manager and donor) and two bidders; an auction open for bids', null, async () => {
    for (const [who, roles] of [[admin, ['admin', 'manager', 'donor']], [ann, ['bidder']], [bob, ['bidder']]]) {
      await addUser(server, { ...who, roles });
    }
    adminId = await sql(`SELECT id FROM users WHERE email = '${admin.email}'`);
    const id = await auction(2026, 'Phone test auction', 'bidding', { biddingOpen: -3600, biddingClose: 3600, reofferOpen: 7200, reofferClose: 10_800 });
    itemId = await item(id, 'competitive', 'Lakeside Dinner for Six with the Parish Choir', LONG);
    donorItemId = await item(id, 'competitive', 'Hand-knitted Christmas Stockings', 'Draft.', 1, 'draft');
  });
  const { page, context } = await newPage(browser);
  await step('a photo for the item: uploaded on the draft, then moved to the item', page, async () => {
    await logIn(page, admin);
    await page.goto(`${server.baseUrl}/donor/items/it_${donorItemId}/edit`);
    await page.getByLabel('Photo', { exact: true }).setInputFiles({ name: 'lake.png', mimeType: 'image/png', buffer: png(400, 300) });
    await page.getByLabel('Describe the photo').fill('The lake at sunset');
    await page.getByRole('button', { name: 'Add photo' }).click();
    await page.waitForURL(/\/edit$/);
    await sql(`UPDATE item_images SET item_id = ${itemId}`);
  });
  await context.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A phone-sized page (touch, mobile viewport) with the display cookie of `mode`. */
async function phonePage(viewport, mode = 'normal', options = {}) {
  const made = await newPage(browser, { viewport, isMobile: true, hasTouch: true, deviceScaleFactor: 1, ...options });
  await made.context.addCookies([{ name: 'auuction_display', value: MODES[mode], url: server.baseUrl }]);
  return made;
}

async function logIn(page, who) {
  await page.goto(`${server.baseUrl}/login`);
  await page.getByLabel('Email address').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.waitForURL(/\/account/);
}

const shotName = (label, viewport, mode) => `${label.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}-${viewport.width}x${viewport.height}-${mode}.png`;

/** Where `locator` is relative to the first screen (no scrolling). */
async function inFirstScreen(page, locator) {
  const box = await locator.boundingBox();
  assert.ok(box, 'the element is shown');
  const { height, width } = page.viewportSize();
  return box.y >= 0 && box.y + box.height <= height && box.x >= 0 && box.x + box.width <= width;
}

/** No sideways scrolling: the page is no wider than the window. A phone browser widens its
 * layout viewport (innerWidth) to fit a page that overflows, so the window's width is also
 * checked against the phone's. */
async function noSidewaysScroll(page, what) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  }));
  const phoneWidth = page.viewportSize().width;
  assert.ok(scrollWidth <= innerWidth && innerWidth <= phoneWidth,
    `${what}: the page is ${scrollWidth}px wide, the window ${innerWidth}px, on a ${phoneWidth}px phone`);
}

/** The site's name in the header wraps between words, never inside one ("Churc h"). */
async function wholeWordsInHeader(page) {
  // The projector page has no site header.
  if (await page.locator('.site-name span').count() === 0) return;
  const broken = await page.locator('.site-name span').evaluate((el) => {
    const text = el.firstChild;
    return [...text.data.matchAll(/\S+/g)].filter((m) => {
      const range = document.createRange();
      range.setStart(text, m.index);
      range.setEnd(text, m.index + m[0].length);
      return range.getClientRects().length > 1;
    }).map((m) => m[0]);
  });
  assert.deepEqual(broken, [], 'words of the site name broken across lines');
}

/** Every touch target in `scope` that is shown is at least 44×44 CSS pixels. */
async function bigEnoughTargets(page, selector, what) {
  const small = await page.locator(selector).evaluateAll((els) => els
    .filter((el) => el.getClientRects().length > 0)
    .map((el) => ({ el, r: el.getBoundingClientRect() }))
    .filter(({ r }) => r.width < 44 || r.height < 44)
    .map(({ el, r }) => `${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${Math.round(r.width)}×${Math.round(r.height)}`));
  assert.deepEqual(small, [], `${what}: touch targets under 44×44`);
}

test('the header is one row with a Menu that opens the links and the display buttons', async () => {
  for (const viewport of PHONES) {
    const { page, context } = await phonePage(viewport);
    await step(`header at ${viewport.width}px`, page, async () => {
      await logIn(page, ann);
      const header = page.locator('header.site-header');
      const headerBox = await header.boundingBox();
      assert.ok(headerBox.height <= 80, `the header is one row: ${headerBox.height}px tall`);
      assert.match((await page.locator('.header-paddle').innerText()).replace(/\s+/g, ' '), /Paddle #\d+/, 'the paddle number stays visible');
      const nav = page.getByRole('navigation', { name: 'Main' });
      assert.equal(await nav.isVisible(), false, 'links are folded away');
      const menu = page.locator('summary.menu-button');
      await bigEnoughTargets(page, 'header summary, header .site-name', 'closed header');
      // Keyboard: the Menu is a focusable disclosure; Enter opens it.
      await menu.focus();
      await page.keyboard.press('Enter');
      await nav.getByRole('link', { name: 'Catalog' }).waitFor();
      assert.equal(await page.getByRole('form', { name: 'Display settings' }).getByRole('button', { name: 'Larger text' }).isVisible(), true);
      await bigEnoughTargets(page, 'header a, header button, header summary', 'open menu');
      await page.screenshot({ path: path.join(SHOTS, shotName('menu-open', viewport, 'normal')) });
      await noSidewaysScroll(page, 'open menu');
      // Escape closes it and gives the focus back to the Menu button.
      await page.keyboard.press('Escape');
      await eventually(async () => !(await nav.isVisible()), { message: 'Escape closes the menu' });
      assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('menu-button')), true);
    });
    await context.close();
  }
});

test('with large text and high contrast at 320 px the open menu fits and reads', async () => {
  const { page, context } = await phonePage(PHONES[1], 'large-contrast');
  await step('open menu, large text, high contrast', page, async () => {
    await logIn(page, admin);
    await wholeWordsInHeader(page);
    await page.locator('summary.menu-button').click();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Audit log' }).waitFor();
    await bigEnoughTargets(page, 'header a, header button, header summary', 'open menu');
    await noSidewaysScroll(page, 'open menu');
    await page.screenshot({ path: path.join(SHOTS, shotName('menu-open', PHONES[1], 'large-contrast')) });
    // A tap outside it (the page's left margin, below the menu) closes it.
    await page.mouse.click(2, PHONES[1].height - 2);
    await eventually(async () => !(await nav.isVisible()), { message: 'a tap outside closes the menu' });
  });
  await context.close();
});

test("the home page's bidding countdown starts in the top half of the first screen", async () => {
  for (const viewport of PHONES) {
    const { page, context } = await phonePage(viewport);
    await step(`home at ${viewport.width}px`, page, async () => {
      await logIn(page, ann);
      await page.goto(server.baseUrl);
      // It used to start below the middle of the first screen, under a tall header.
      const box = await page.locator('.countdown-box').first().boundingBox();
      assert.ok(box.y < viewport.height / 2, `the "Bidding closes" box starts in the top half: y=${box.y}`);
    });
    await context.close();
  }
});

test('wide screens keep the full header without a Menu button', async () => {
  const { page, context } = await newPage(browser, { viewport: { width: 1200, height: 800 } });
  await step('wide header', page, async () => {
    await logIn(page, ann);
    assert.equal(await page.locator('summary.menu-button').isVisible(), false);
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Catalog' }).isVisible(), true);
    assert.equal(await page.locator('.signed-in').isVisible(), true);
    await page.screenshot({ path: path.join(SHOTS, 'header-wide-1200x800.png') });
    // Wide: the photo beside the bid panel, the panel still in the first screen.
    await page.goto(`${server.baseUrl}/items/it_${itemId}`);
    assert.ok(await inFirstScreen(page, page.locator('[data-quick-submit]')), 'Bid button in the first screen');
    const photo = await page.getByAltText('The lake at sunset').boundingBox();
    const panel = await page.locator('[data-bid-panel]').boundingBox();
    assert.ok(photo.x + photo.width <= panel.x, 'the photo is left of the panel');
    await page.screenshot({ path: path.join(SHOTS, 'item-wide-1200x800.png') });
  });
  await context.close();
});

test('an item page on a phone: price and Bid first, a sticky bar, one tap to a confirmed bid', async () => {
  const itemUrl = `${server.baseUrl}/items/it_${itemId}`;
  for (const viewport of PHONES) {
    const { page, context } = await phonePage(viewport);
    await step(`price, countdown and Bid button in the first screen at ${viewport.width}×${viewport.height}`, page, async () => {
      await logIn(page, ann);
      await page.goto(itemUrl);
      await eventually(async () => (await page.locator('[data-countdown]').innerText()).includes('left'), { message: 'countdown ticks' });
      assert.ok(await inFirstScreen(page, page.locator('[data-price]')), 'price in the first screen');
      assert.ok(await inFirstScreen(page, page.locator('[data-countdown]')), 'countdown in the first screen');
      const bid = page.locator('[data-quick-submit]');
      assert.ok(await inFirstScreen(page, bid), 'Bid button in the first screen');
      assert.match((await bid.innerText()).trim(), /^Bid \$\d+\.\d\d$/);
      assert.equal(await page.locator('[data-bid-sticky]').isVisible(), false, 'no sticky bar while the panel shows');
      const photo = await page.getByAltText('The lake at sunset').boundingBox();
      const bidBox = await bid.boundingBox();
      assert.ok(photo.y > bidBox.y + bidBox.height, 'the photo comes after the Bid button');
      assert.equal(await page.locator('[data-bid-amount]').getAttribute('inputmode'), 'decimal', 'numeric keypad');
      await bigEnoughTargets(page, '.bid-panel button, .bid-panel a.button, .bid-panel input', 'bid panel');
      await page.screenshot({ path: path.join(SHOTS, shotName('item-first-screen', viewport, 'normal')) });
    });
    await context.close();
  }

  const { page, context } = await phonePage(PHONES[0]);
  await step('scrolled down, the sticky bar keeps the price, the countdown and Bid', page, async () => {
    await logIn(page, ann);
    await page.goto(itemUrl);
    await eventually(async () => (await page.locator('[data-connection]').innerText()).includes('Live'), { timeout: 10_000, message: 'socket is live' });
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    const sticky = page.locator('[data-bid-sticky]');
    await sticky.waitFor({ state: 'visible' });
    assert.ok(await inFirstScreen(page, sticky), 'the bar is on screen');
    assert.equal((await page.locator('[data-sticky-price]').innerText()).trim(), 'No bids yet');
    await eventually(async () => (await page.locator('[data-sticky-countdown]').innerText()).includes('left'), { message: 'bar countdown' });
    await bigEnoughTargets(page, '[data-bid-sticky] button', 'sticky bar');
    await page.screenshot({ path: path.join(SHOTS, shotName('item-sticky-bar', PHONES[0], 'normal')) });
  });

  await step('the bar\'s Bid asks in a dialog that says the amount; Yes places it', page, async () => {
    await page.locator('[data-sticky-bid]').click();
    const dialog = page.getByRole('dialog', { name: 'Confirm your bid' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /Bid \$50\.00 on Lakeside Dinner/);
    await page.screenshot({ path: path.join(SHOTS, shotName('item-confirm-dialog', PHONES[0], 'normal')) });
    await dialog.getByRole('button', { name: 'Yes, bid $50.00' }).click();
    await eventually(async () => (await page.locator('[data-alert]').textContent()).includes('You are the highest bidder at $50.00'), { timeout: 10_000, message: 'bid confirmed' });
    await eventually(async () => (await page.locator('[data-sticky-price]').innerText()).trim() === '$50.00', { message: 'bar price live' });
    assert.match(await page.locator('[data-sticky-note]').innerText(), /highest bidder at \$50\.00/, 'the bar repeats the answer');
  });

  await step('outbid: one tap on the bar, the dialog says the next minimum', page, async () => {
    const login = await postJson(server, '/api/auth/login', { email: bob.email, password: bob.password });
    assert.equal(login.status, 200);
    const res = await fetch(`${server.baseUrl}/api/items/it_${itemId}/bids`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${login.body.token}` },
      body: JSON.stringify({ amount: 60, idempotencyKey: `bob-${Date.now()}` }),
    });
    assert.equal(res.status, 201, await res.text());
    await eventually(async () => (await page.locator('[data-sticky-note]').innerText()).includes('You have been outbid'), { timeout: 10_000, message: 'outbid in the bar' });
    const next = (await page.locator('[data-sticky-bid]').innerText()).replace(/^Bid /, '');
    assert.match(next, /^\$\d+\.\d\d$/);
    assert.notEqual(next, '$50.00', 'the button follows the next minimum');
    await page.screenshot({ path: path.join(SHOTS, shotName('item-outbid-bar', PHONES[0], 'normal')) });
    await page.locator('[data-sticky-bid]').click();
    const dialog = page.getByRole('dialog', { name: 'Confirm your bid' });
    assert.match(await dialog.innerText(), new RegExp(`Bid \\${next} on`));
    await dialog.getByRole('button', { name: `Yes, bid ${next}` }).click();
    await eventually(async () => (await page.locator('[data-alert]').textContent()).includes(`highest bidder at ${next}`), { timeout: 10_000, message: 'back in the lead' });
  });
  await context.close();

  const noJs = await phonePage(PHONES[1], 'normal', { javaScriptEnabled: false });
  await step('without JavaScript: Bid $next opens a confirmation page, Yes places the bid', noJs.page, async () => {
    await logIn(noJs.page, bob);
    await noJs.page.goto(itemUrl);
    // The Menu is a native disclosure: it opens without JavaScript too.
    await noJs.page.locator('summary.menu-button').click();
    await noJs.page.getByRole('form', { name: 'Display settings' }).getByRole('button', { name: 'Larger text' }).waitFor();
    await noJs.page.locator('summary.menu-button').click();
    const bid = noJs.page.locator('[data-quick-submit]');
    assert.ok(await inFirstScreen(noJs.page, bid), 'Bid button in the first screen without JavaScript');
    const label = (await bid.innerText()).trim();
    const amount = label.replace(/^Bid /, '');
    await bid.click();
    await noJs.page.waitForURL(/\/items\/it_\d+\/bid\?amount=/);
    assert.match(await noJs.page.locator('main').innerText(), new RegExp(`Bid \\${amount} on Lakeside Dinner`));
    await noJs.page.screenshot({ path: path.join(SHOTS, shotName('bid-confirm-page-nojs', PHONES[1], 'normal')) });
    await noJsSideways(noJs.page);
    await noJs.page.getByRole('button', { name: `Yes, bid ${amount}` }).click();
    await noJs.page.waitForURL(itemUrl);
    assert.match(await noJs.page.locator('.flash').innerText(), new RegExp(`highest bidder at \\${amount}`));
  });
  await noJs.context.close();
});

async function noJsSideways(page) {
  await noSidewaysScroll(page, page.url());
}

/** Visits every page kind and checks it does not scroll sideways; keeps a screenshot. */
async function checkPages(pages, who, viewport, mode) {
  const { page, context } = await phonePage(viewport, mode);
  if (who) await logIn(page, who);
  for (const [label, urlPath] of pages) {
    await step(`${label} (${urlPath}) at ${viewport.width}px, ${mode}, ${who ? who.name : 'logged out'}`, page, async () => {
      const res = await page.goto(`${server.baseUrl}${urlPath}`);
      assert.equal(res.status(), label === 'not-found' ? 404 : 200);
      await noSidewaysScroll(page, label);
      await wholeWordsInHeader(page);
      await page.screenshot({ path: path.join(SHOTS, shotName(`${who ? 'in' : 'out'}-${label}`, viewport, mode)), fullPage: true });
    });
  }
  await context.close();
}

test('no page kind scrolls sideways on a phone, in normal and large text', async () => {
  const item = `/items/it_${itemId}`;
  const loggedOut = [
    ['home', '/'], ['catalog', '/catalog'], ['item', item], ['login', '/login'], ['register', '/register'],
    ['password-reset', '/password-reset'], ['reoffer', '/reoffer'], ['wishlist', '/wishlist'],
    ['projector', '/display'],
  ];
  const loggedIn = [
    ['home', '/'], ['catalog', '/catalog'], ['item', item], ['bid-confirm', `${item}/bid?amount=1000.00`],
    ['account', '/account'], ['wishlist', '/wishlist'], ['reoffer', '/reoffer'],
    ['donor-items', '/donor/items'], ['donor-new', '/donor/items/new'], ['donor-edit', `/donor/items/it_${donorItemId}/edit`],
    ['manage-review', '/manage/review'], ['manage-auctions', '/manage/auctions'], ['manage-auction-new', '/manage/auctions/new'],
    ['manage-live', '/manage/live'], ['manage-notifications', '/manage/notifications'], ['manage-contacts', '/manage/contacts'], ['admin-users', '/admin/users'], ['admin-audit', '/admin/audit'], ['not-found', '/items/it_999999'],
  ];
  for (const viewport of PHONES) {
    for (const mode of ['normal', 'large']) {
      await checkPages(loggedOut, null, viewport, mode);
      await checkPages(loggedIn, admin, viewport, mode);
    }
  }
  // High contrast with large text, at the narrowest: the bidder's pages.
  await checkPages([['item', item], ['account', '/account'], ['catalog', '/catalog']], ann, PHONES[1], 'large-contrast');
});

test('the reoffer Buy button is in reach on a phone', async () => {
  await step('an auction in its reoffer phase (registered last, so it is the current one)', null, async () => {
    const id = await auction(2027, 'Buy it now', 'reoffer', { registrationOpen: -7200, biddingOpen: -7200, biddingClose: -3600, reofferOpen: -60, reofferClose: 86_400 });
    await item(id, 'fixed_price_item', 'Homemade Plum Jam from the Rectory Garden', 'Made with care.', 3);
    await item(id, 'fixed_price_item', 'Pie', 'Apple.', 1);
  });
  for (const viewport of PHONES) {
    for (const mode of ['normal', 'large']) {
      const { page, context } = await phonePage(viewport, mode);
      await step(`reoffer at ${viewport.width}px, ${mode}`, page, async () => {
        await logIn(page, ann);
        await page.goto(`${server.baseUrl}/reoffer`);
        await page.screenshot({ path: path.join(SHOTS, shotName('reoffer-open', viewport, mode)), fullPage: true });
        await noSidewaysScroll(page, 'reoffer');
        const buy = page.getByRole('button', { name: 'Buy now' }).first();
        await bigEnoughTargets(page, '[data-buy-cell] button, [data-buy-cell] select', 'reoffer buttons');
        if (mode === 'normal') assert.ok(await inFirstScreen(page, buy), 'the first Buy button in the first screen');
        await buy.click();
        await page.waitForURL(/\/reoffer\/items\/it_\d+\/buy/);
        assert.ok(await inFirstScreen(page, page.getByRole('button', { name: 'Confirm purchase' })) || mode !== 'normal', 'Confirm in the first screen');
        await noSidewaysScroll(page, 'reoffer confirmation');
      });
      await context.close();
    }
  }
});
