// A newcomer's first visit: register, confirm the email, log in, make the text larger.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  startServer, launchBrowser, newPage, latestEmail, extractLink, eventually, stepper, uniqueEmail,
} from './helpers.js';

let server;
let browser;
let step;

before(async () => {
  server = await startServer();
  step = stepper(server);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The class attribute of <html>, read from the DOM. */
const htmlClasses = async (page) => ((await page.locator('html').getAttribute('class')) || '').split(/\s+/).filter(Boolean);

/** Whether the HTML the server sent has `large-text` on <html> (no scripts involved). */
const servedLargeText = (html) => /<html[^>]*\bclass="[^"]*\blarge-text\b/.test(html);

test('a newcomer registers, verifies through the emailed link, logs in and switches to large text', { timeout: 60_000 }, async () => {
  const name = 'Ruth Newcomer';
  const email = uniqueEmail('ruth');
  const password = 'a quiet morning by the lake';
  const { context, page } = await newPage(browser);

  await step('open the home page and follow the Register link', page, async () => {
    const res = await page.goto(`${server.baseUrl}/`);
    assert.equal(res.status(), 200);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Register', exact: true }).click();
    await page.waitForURL(`${server.baseUrl}/register`);
    await page.getByRole('heading', { level: 1, name: 'Create your account' }).waitFor();
  });

  await step('fill in and submit the registration form', page, async () => {
    await page.getByLabel('Your full name').fill(name);
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Choose a password').fill(password);
    await page.getByRole('button', { name: 'Create my account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
    assert.ok((await page.locator('main').innerText()).includes(email), 'the page names the address the link went to');
  });

  let verifyLink;
  await step('read the verification email', page, async () => {
    const mail = await latestEmail(server.mailDir, email);
    verifyLink = extractLink(mail.body, `${server.baseUrl}/verify?token=`);
    assert.match(verifyLink, /\/verify\?token=[0-9a-f]{64}$/, `verify link in ${mail.file}`);
  });

  await step('open the emailed link', page, async () => {
    const res = await page.goto(verifyLink);
    assert.equal(res.status(), 200);
    await page.getByRole('heading', { level: 1, name: 'Your email is confirmed' }).waitFor();
    assert.match(await page.locator('main').innerText(), /your email address is confirmed/i);
  });

  await step('log in', page, async () => {
    await page.locator('main').getByRole('link', { name: 'Log in' }).click();
    await page.waitForURL(/\/login(\?|$)/);
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await page.waitForURL(`${server.baseUrl}/account`);
  });

  let paddle;
  await step('the account page shows the name and a paddle number', page, async () => {
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    assert.match(await page.locator('.flash-region').innerText(), new RegExp(`Welcome, ${name}`));
    assert.equal(await page.getByLabel('Full name').inputValue(), name);
    const signedIn = await page.locator('.signed-in').innerText();
    assert.ok(signedIn.includes(name), `header names the user: ${signedIn}`);
    paddle = /Paddle #(\d+)/.exec(signedIn)?.[1];
    assert.ok(paddle, `header shows a paddle number: ${signedIn}`);
    const card = (await page.locator('section.paddle-card').innerText()).replace(/\s+/g, ' ');
    assert.match(card, new RegExp(`Your paddle number ${paddle}\\b`), `the "Your paddle number" card should show ${paddle}; it reads: "${card}"`);
    assert.match(await page.locator('main').innerText(), /Yes, confirmed/);
    assert.ok(!(await htmlClasses(page)).includes('large-text'), 'large text is off to begin with');
  });

  const display = page.getByRole('form', { name: 'Display settings' });
  await step('turn on large text with the Display button', page, async () => {
    const button = display.getByRole('button', { name: 'Larger text' });
    assert.equal(await button.getAttribute('aria-pressed'), 'false');
    const saved = page.waitForResponse((r) => new URL(r.url()).pathname === '/display' && r.request().method() === 'POST');
    await button.click();
    const res = await saved;
    assert.ok(res.status() < 400, `POST /display answered ${res.status()}`);
    await eventually(async () => (await htmlClasses(page)).includes('large-text'), { message: '<html> gets class large-text' });
    await eventually(async () => (await button.getAttribute('aria-pressed')) === 'true', { message: 'button is pressed' });
    assert.equal(new URL(page.url()).pathname, '/account', 'still on the account page');
  });

  await step('large text is still on after a reload', page, async () => {
    const res = await page.reload();
    assert.equal(res.status(), 200);
    assert.ok(servedLargeText(await res.text()), 'the server renders <html class="large-text">');
    assert.ok((await htmlClasses(page)).includes('large-text'));
    assert.equal(await display.getByRole('button', { name: 'Larger text' }).getAttribute('aria-pressed'), 'true');
    const cookies = await context.cookies(server.baseUrl);
    const cookie = cookies.find((c) => c.name === 'auuction_display');
    assert.ok(cookie && /\blarge\b/.test(cookie.value), `display cookie saved: ${JSON.stringify(cookie)}`);
  });
  await context.close();

  // The no-JavaScript guarantee: the same buttons are a plain form post.
  const noJs = await newPage(browser, { javaScriptEnabled: false });
  await step('without JavaScript: log in', noJs.page, async () => {
    await noJs.page.goto(`${server.baseUrl}/login`);
    await noJs.page.getByLabel('Email address').fill(email);
    await noJs.page.getByLabel('Password').fill(password);
    await noJs.page.getByRole('button', { name: 'Log in', exact: true }).click();
    await noJs.page.waitForURL(`${server.baseUrl}/account`);
    assert.match(await noJs.page.locator('.signed-in').innerText(), new RegExp(`Paddle #${paddle}\\b`));
    assert.ok(!(await htmlClasses(noJs.page)).includes('large-text'), 'a new browser starts with normal text');
  });

  const noJsDisplay = noJs.page.getByRole('form', { name: 'Display settings' });
  await step('without JavaScript: the Larger text button posts the form and comes back', noJs.page, async () => {
    const [res] = await Promise.all([
      noJs.page.waitForNavigation(),
      noJsDisplay.getByRole('button', { name: 'Larger text' }).click(),
    ]);
    assert.equal(res.status(), 200);
    assert.equal(new URL(noJs.page.url()).pathname, '/account', 'redirected back to the same page');
    assert.ok(servedLargeText(await res.text()), 'the server renders <html class="large-text">');
    assert.ok((await htmlClasses(noJs.page)).includes('large-text'));
    assert.equal(await noJsDisplay.getByRole('button', { name: 'Larger text' }).getAttribute('aria-pressed'), 'true');
  });

  await step('without JavaScript: still large after a reload, and the button turns it off again', noJs.page, async () => {
    const again = await noJs.page.reload();
    assert.ok(servedLargeText(await again.text()));
    const [res] = await Promise.all([
      noJs.page.waitForNavigation(),
      noJsDisplay.getByRole('button', { name: 'Larger text' }).click(),
    ]);
    assert.equal(res.status(), 200);
    assert.ok(!servedLargeText(await res.text()), 'large text is off after the second press');
    assert.ok(!(await htmlClasses(noJs.page)).includes('large-text'));
    assert.equal(await noJsDisplay.getByRole('button', { name: 'Larger text' }).getAttribute('aria-pressed'), 'false');
  });
  await noJs.context.close();
});
