// Shared helpers for the browser tests: the browser, the demo's address and logins, sign-in, axe-core,
// screenshots and the transfer-size measurement for the page budget.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);

export const BASE = process.env.INFUSAFE_URL;
if (!BASE) {
  throw new Error('INFUSAFE_URL is not set: run these tests through scripts/browser-test, which starts `infusafe demo`');
}
export const ARTIFACTS = process.env.INFUSAFE_ARTIFACTS || path.resolve('../../artifacts');
export const SCREENSHOTS = path.join(ARTIFACTS, 'screenshots');
mkdirSync(SCREENSHOTS, { recursive: true });

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };
export const BUDGET_BYTES = 100 * 1024;

export async function launch() {
  if (!existsSync('/usr/bin/chromium')) {
    throw new Error('/usr/bin/chromium is missing: apt-get install chromium');
  }
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/// The demo's logins, read from what `infusafe demo` printed ("Sign in with one of these accounts
/// (password: P):" then one "  username  role  who" line per account), so the tests use exactly what a
/// person trying the demo sees.
export function demoLogins() {
  const log = process.env.INFUSAFE_DEMO_LOG;
  if (!log) throw new Error('INFUSAFE_DEMO_LOG is not set: run through scripts/browser-test');
  const text = readFileSync(log, 'utf8');
  const password = (text.match(/\(password:\s*([^)\s]+)\)/) || [])[1];
  if (!password) throw new Error(`the demo printed no password line; its output was:\n${text}`);
  const logins = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^\s+([a-z0-9._@-]+)\s+(nurse|patient|caregiver|admin)\s+(.*)$/);
    if (m) (logins[m[2]] ||= []).push({ username: m[1], password, who: m[3] });
  }
  for (const role of ['nurse', 'patient']) {
    if (!logins[role]) throw new Error(`the demo printed no ${role} login; its output was:\n${text}`);
  }
  return logins;
}

export async function newPage(browser, viewport) {
  // bypassCSP lets the test inject axe-core; the pages' own policy forbids inline script.
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, bypassCSP: true });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

/// Press a button that submits a form and wait for the document it leads to (the server answers a form with a
/// redirect or a page of its own; either way a new document loads). Waiting for the load state alone can return
/// at once, with the form's own page still showing.
export async function submitAndLoad(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

export async function signIn(page, login) {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', login.username);
  await page.fill('#password', login.password);
  await submitAndLoad(page, 'button[type=submit]');
  assert.ok(!page.url().includes('/login'), `sign-in as ${login.username} failed: still on ${page.url()}`);
}

/// Runs axe-core on the page and fails on any serious or critical violation, listing them.
export async function checkAxe(page, name) {
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.addScriptTag({ content: source });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    return await axe.run(document, { resultTypes: ['violations'] });
  });
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const detail = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n    ')}`).join('\n');
  assert.equal(bad.length, 0, `axe found serious/critical problems on ${name} (${page.url()}):\n${detail}`);
  return result.violations.length;
}

/// The first screen of a page as the person sees it (the viewport, not the whole page), for docs/screens.md:
/// written to artifacts/screens/; `scripts/browser-test` leaves them there and docs/screens/ keeps a copy.
export const SCREENS = path.join(ARTIFACTS, 'screens');
mkdirSync(SCREENS, { recursive: true });
export async function fold(page, name) {
  await page.screenshot({ path: path.join(SCREENS, `${name}.png`) });
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/// Loads `url` with a fresh cache and returns the bytes transferred over the network for the page and
/// everything it loaded (encoded sizes, including headers), as reported by the browser's network layer.
export async function measureTransfer(page, url) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  let bytes = 0;
  const perUrl = {};
  const urls = {};
  cdp.on('Network.requestWillBeSent', (e) => { urls[e.requestId] = e.request.url; });
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    const u = urls[e.requestId] || e.requestId;
    perUrl[u] = (perUrl[u] || 0) + e.encodedDataLength;
  });
  await page.goto(url, { waitUntil: 'load' });
  // Let the live script open its stream and any deferred request finish.
  await page.waitForTimeout(500);
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  await cdp.detach();
  return { bytes, perUrl };
}

const budgetFile = path.join(ARTIFACTS, 'budget.json');
export function recordBudget(name, measurement) {
  let all = {};
  if (existsSync(budgetFile)) all = JSON.parse(readFileSync(budgetFile, 'utf8'));
  all[name] = measurement;
  writeFileSync(budgetFile, JSON.stringify(all, null, 2));
}
