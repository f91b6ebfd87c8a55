// The administrator's user directory: change a role, see it in the audit log; and the
// pages stay closed to everybody else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchBrowser, newPage, addUser, postJson, stepper, uniqueEmail } from './helpers.js';

let server;
let browser;
let step;

const admin = { name: 'Grace Admin', email: uniqueEmail('grace'), password: 'the organ plays at noon' };
const bidder = { name: 'Tom Bidder', email: uniqueEmail('tom'), password: 'silent auction tables' };

before(async () => {
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
  await step('create the admin with the CLI', null, async () => {
    const { stdout } = await addUser(server, { ...admin, roles: ['admin'] });
    assert.match(stdout, /created .* with roles admin/);
  });
  await step('register a bidder through the API', null, async () => {
    const res = await postJson(server, '/api/auth/register', { name: bidder.name, email: bidder.email, password: bidder.password });
    assert.equal(res.status, 201, `POST /api/auth/register: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.email, bidder.email);
    bidder.id = res.body.id;
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
  await page.waitForURL(`${server.baseUrl}/account`);
  assert.ok((await page.locator('.signed-in').innerText()).includes(who.name), 'signed in as the right person');
}

test('an admin lists users, changes a role, and the change shows in the audit log', { timeout: 60_000 }, async () => {
  const { context, page } = await newPage(browser);
  const nav = page.getByRole('navigation', { name: 'Main' });

  await step('log in as the admin', page, () => logIn(page, admin));

  const bidderRow = () => page.getByRole('row').filter({ hasText: bidder.email });
  const donorBox = () => bidderRow().getByRole('checkbox', { name: /^Donor/ });

  await step('open Users from the menu and find the bidder', page, async () => {
    await nav.getByRole('link', { name: 'Users', exact: true }).click();
    await page.waitForURL(`${server.baseUrl}/admin/users`);
    await page.getByRole('heading', { level: 1, name: 'Users and roles' }).waitFor();
    assert.equal(await bidderRow().count(), 1, 'one row for the bidder');
    assert.ok((await bidderRow().innerText()).includes(bidder.name));
    assert.equal(await bidderRow().getByRole('checkbox', { name: 'Bidder', exact: true }).isChecked(), true, 'a new account is a bidder');
    assert.equal(await donorBox().isChecked(), false, 'and not yet a donor');
  });

  await step('tick Donor and save the roles', page, async () => {
    await donorBox().check();
    await Promise.all([
      page.waitForURL(/\/admin\/users\?query=/),
      bidderRow().getByRole('button', { name: /^Save roles/ }).click(),
    ]);
    const flash = await page.locator('.flash-region .flash').innerText();
    assert.match(flash, new RegExp(`Roles of ${bidder.name} saved: .*Bidder.*Donor`), `flash: ${flash}`);
    assert.equal(await donorBox().isChecked(), true, 'the saved page shows Donor ticked');
    assert.equal(await bidderRow().getByRole('checkbox', { name: 'Bidder', exact: true }).isChecked(), true, 'Bidder kept');
  });

  await step('the audit log shows user.roles_changed with donor in the after state', page, async () => {
    await nav.getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.waitForURL(`${server.baseUrl}/admin/audit`);
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'user.roles_changed', exact: true }) });
    assert.equal(await row.count(), 1, 'exactly one roles_changed entry');
    const cells = await row.getByRole('cell').allInnerTexts();
    assert.ok(cells.some((c) => c.includes(admin.name)), `the admin is named as who did it: ${cells}`);
    await row.getByText('Show changes').click();
    const before = JSON.parse(await row.locator('h3:has-text("Before") + pre').innerText());
    const afterState = JSON.parse(await row.locator('h3:has-text("After") + pre').innerText());
    assert.deepEqual(before.roles, ['bidder']);
    assert.ok(afterState.roles.includes('donor'), `after: ${JSON.stringify(afterState)}`);
    assert.ok(afterState.roles.includes('bidder'), `after: ${JSON.stringify(afterState)}`);
  });
  await context.close();
});

test('a signed-in bidder who opens /admin/users gets the 403 page', { timeout: 60_000 }, async () => {
  const { context, page } = await newPage(browser);

  await step('a visitor who is not signed in is sent to log in', page, async () => {
    await page.goto(`${server.baseUrl}/admin/users`);
    assert.equal(page.url(), `${server.baseUrl}/login?next=%2Fadmin%2Fusers`);
  });

  await step('log in as the bidder', page, async () => {
    await logIn(page, bidder);
    const menu = page.getByRole('navigation', { name: 'Main' });
    assert.equal(await menu.getByRole('link', { name: 'Users', exact: true }).count(), 0, 'no Users link for a bidder');
  });

  for (const path of ['/admin/users', '/admin/audit']) {
    await step(`${path} answers 403 with the friendly error page`, page, async () => {
      const res = await page.goto(`${server.baseUrl}${path}`);
      assert.equal(res.status(), 403);
      await page.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
      assert.match(await page.locator('main').innerText(), /Error 403/);
      assert.equal(await page.getByRole('row').filter({ hasText: admin.email }).count(), 0, 'no user data leaks');
    });
  }
  await context.close();
});
