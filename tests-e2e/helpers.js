// Shared helpers for the browser tests: one auuction server (with its own database and
// mail directory) and one headless Chromium per test file.
//
// Environment:
//   AUUCTION_BIN   path of the server binary (default: <repo>/target/debug/auuction)
//   E2E_PG_URL     PostgreSQL server to create throwaway databases on
//                  (default: postgres://postgres@127.0.0.1:5432)
//   CHROME_PATH    Chromium binary (default: /usr/bin/chromium)
//   E2E_KEEP=1     keep the database and temp directory after the run (for debugging)

import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';

import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PG_URL = (process.env.E2E_PG_URL || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROME_PATH || '/usr/bin/chromium';
const KEEP = process.env.E2E_KEEP === '1';

function serverBinary() {
  const bin = process.env.AUUCTION_BIN || 'target/debug/auuction';
  return path.isAbsolute(bin) ? bin : path.join(REPO_ROOT, bin);
}

/** A free TCP port on 127.0.0.1: listen on port 0, note the port, close. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every server started by this process, so a crash still kills them. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

async function psql(sql) {
  return execFileP('psql', [`${PG_URL}/postgres`, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { timeout: 30_000 });
}

/**
 * Starts `auuction serve` on a free port with a fresh database `auuction_e2e_<random>` and a
 * temporary MAIL_DIR / MEDIA_DIR. Waits (at most 30 s) for /healthz to answer 200.
 * Returns { baseUrl, port, dbName, databaseUrl, mailDir, env, logTail(n), run(args, stdin), stop() }.
 */
export async function startServer() {
  const bin = serverBinary();
  try {
    await stat(bin);
  } catch {
    throw new Error(`auuction binary not found at ${bin}: run \`cargo build -p auuction\` first or set AUUCTION_BIN`);
  }
  const dbName = `auuction_e2e_${randomBytes(6).toString('hex')}`;
  const databaseUrl = `${PG_URL}/${dbName}`;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'auuction-e2e-'));
  const mailDir = path.join(tmp, 'mail');
  const mediaDir = path.join(tmp, 'media');
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    BIND: `127.0.0.1:${port}`,
    BASE_URL: baseUrl,
    MAIL_DIR: mailDir,
    MEDIA_DIR: mediaDir,
    SECRET_KEY: randomBytes(32).toString('hex'),
    // Empty means unset for the server, and keeps a stray .env from setting them: mail must
    // go to MAIL_DIR, and rate limits must stay in this process.
    SMTP_URL: '',
    REDIS_URL: '',
    TRUST_PROXY: 'false',
    LOG_FORMAT: 'text',
    RUST_LOG: process.env.RUST_LOG || 'info',
    // Panic messages without pages of frames; E2E_RUST_BACKTRACE=1 to get them back.
    RUST_BACKTRACE: process.env.E2E_RUST_BACKTRACE || '0',
    NO_COLOR: '1',
  };

  const log = [];
  const logFile = path.join(tmp, 'server.log');
  const remember = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim()) log.push(line);
    }
    if (log.length > 2000) log.splice(0, log.length - 2000);
  };
  const child = spawn(bin, ['serve'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.stdout.on('data', remember);
  child.stderr.on('data', remember);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    running.delete(child);
  });
  child.on('error', (err) => {
    exited = { error: err };
    log.push(`spawn error: ${err.message}`);
  });

  // The last n lines, preceded by any earlier panic or ERROR lines (they explain most failures).
  const logTail = (n = 40) => {
    const tail = log.slice(-n);
    const earlier = log.slice(0, -n).filter((l) => /panicked|\bERROR\b/.test(l)).slice(-10).map((l) => l.slice(0, 400));
    return [...(earlier.length ? [...earlier, '  ...'] : []), ...tail].join('\n');
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 5000);
      await gone;
      clearTimeout(timer);
    }
    if (KEEP) {
      await writeFile(logFile, log.join('\n') + '\n').catch(() => {});
      console.error(`E2E_KEEP: kept database ${dbName} and ${tmp} (server log: ${logFile})`);
      return;
    }
    try {
      await psql(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    } catch (err) {
      console.error(`could not drop database ${dbName}: ${err.stderr || err.message}`);
    }
    await rm(tmp, { recursive: true, force: true });
  };

  // Wait for /healthz: at most 30 s, and give up at once if the server exits.
  const deadline = Date.now() + 30_000;
  let lastError = 'no answer yet';
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`auuction exited before it was healthy (${JSON.stringify(exited)}). Log:\n${logTail()}`);
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) break;
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = err.cause?.code || err.message;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`auuction did not answer /healthz with 200 within 30 s (last: ${lastError}). Log:\n${logTail()}`);
    }
    await sleep(100);
  }

  /** Runs the binary with the server's environment, e.g. run(['user', 'add', ...], 'password'). */
  const run = (args, stdin) =>
    new Promise((resolve, reject) => {
      const proc = spawn(bin, args, { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stdout.on('data', (d) => { out += d; });
      proc.stderr.on('data', (d) => { err += d; });
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      proc.on('error', reject);
      proc.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve({ stdout: out, stderr: err });
        else reject(new Error(`auuction ${args.join(' ')} exited with ${code}\nstdout: ${out}\nstderr: ${err}`));
      });
      proc.stdin.end(stdin ?? '');
    });

  return { baseUrl, port, dbName, databaseUrl, mailDir, env, logTail, run, stop };
}

/** Creates a verified account with the CLI (`auuction user add ... --password-stdin`). */
export async function addUser(server, { email, name, password, roles = ['bidder'] }) {
  return server.run(['user', 'add', '--email', email, '--name', name, '--role', roles.join(','), '--password-stdin'], `${password}\n`);
}

/** POST JSON to the server's API, without cookies. Returns { status, body }. */
export async function postJson(server, urlPath, data) {
  const res = await fetch(`${server.baseUrl}${urlPath}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(data),
  });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body };
}

function decodeQuotedPrintable(text) {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * The newest .eml in `mailDir` addressed to `address` (waits up to `timeout` ms for one to
 * appear, and for one newer than `after` if given). Returns { file, headers, body, raw }.
 */
export async function latestEmail(mailDir, address, { timeout = 10_000, after = 0 } = {}) {
  const deadline = Date.now() + timeout;
  const wanted = address.toLowerCase();
  for (;;) {
    let names = [];
    try {
      names = (await readdir(mailDir)).filter((n) => n.endsWith('.eml'));
    } catch { /* not created yet */ }
    const found = [];
    for (const name of names) {
      const file = path.join(mailDir, name);
      const [raw, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      const split = raw.search(/\r?\n\r?\n/);
      const headers = split >= 0 ? raw.slice(0, split) : raw;
      const to = /^To:(.*(?:\r?\n[ \t].*)*)/im.exec(headers)?.[1] ?? '';
      if (to.toLowerCase().includes(wanted) && info.mtimeMs > after) {
        let body = split >= 0 ? raw.slice(split).replace(/^\r?\n\r?\n/, '') : '';
        if (/^Content-Transfer-Encoding:\s*quoted-printable/im.test(raw)) body = decodeQuotedPrintable(body);
        found.push({ file, headers, body, raw, mtime: info.mtimeMs });
      }
    }
    if (found.length) {
      found.sort((a, b) => b.mtime - a.mtime);
      return found[0];
    }
    if (Date.now() > deadline) {
      throw new Error(`no email to ${address} in ${mailDir} within ${timeout} ms (files: ${names.join(', ') || 'none'})`);
    }
    await sleep(100);
  }
}

/** The first link in `text` that starts with `prefix` (e.g. `${baseUrl}/verify?token=`). */
export function extractLink(text, prefix) {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}[^\\s<>"']*`).exec(text);
  if (!match) throw new Error(`no link starting with ${prefix} in:\n${text}`);
  return match[0];
}

/** Headless system Chromium; never a downloaded browser. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A fresh context (own cookies) and page with short timeouts so failures come quickly. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ locale: 'en-US', ...options });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  return { context, page };
}

/**
 * Polls `check` (which throws or returns false while not yet true) until it passes.
 * Used instead of @playwright/test's `expect`, which playwright-core does not include.
 */
export async function eventually(check, { timeout = 5000, interval = 100, message } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result;
      lastError = new Error('check returned false');
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const err = new Error(`${message || 'condition not met'} within ${timeout} ms: ${lastError?.message}`);
      err.cause = lastError;
      throw err;
    }
    await sleep(interval);
  }
}

/**
 * Runs one named step; on failure rethrows with the context needed to understand it: the
 * page's URL, title and visible text, and the tail of the server log.
 * Usage: const step = stepper(server); await step('log in', page, async () => { ... });
 */
export function stepper(server) {
  return async function step(name, page, fn) {
    try {
      return await fn();
    } catch (err) {
      let where = '';
      if (page && !page.isClosed()) {
        const url = page.url();
        const title = await page.title().catch(() => '?');
        const text = await page.locator('body').innerText({ timeout: 1000 }).catch(() => '(could not read the page)');
        where = `\n  page: ${url}\n  title: ${title}\n  text: ${text.replace(/\s+/g, ' ').slice(0, 800)}`;
      }
      const wrapped = new Error(`step "${name}" failed: ${err.message}${where}\n  server log (last lines):\n${server ? server.logTail(30) : '(no server)'}`);
      wrapped.stack = `${wrapped.message}\n${err.stack}`;
      throw wrapped;
    }
  };
}

/** A unique, valid email address for this run. */
export function uniqueEmail(label) {
  return `${label}.${randomBytes(4).toString('hex')}@example.org`;
}

// A real PNG made here (no binary fixtures): `width`×`height` pixels of a blue gradient,
// for photo uploads.
function crc32(buf) {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
export function png(width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    rows.push(0); // filter: none
    for (let x = 0; x < width; x++) rows.push(40 + x * 8, 90 + y * 8, 200);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** One SQL statement on the server's own database (psql, unaligned, tuples only): its
 *  output, trimmed. For a test's setup (a calendar moved, an item published) and checks. */
export async function sqlOn(server, statement) {
  const { stdout } = await execFileP('psql', [server.databaseUrl, '-qtAc', statement], { timeout: 30_000 });
  return stdout.trim();
}
