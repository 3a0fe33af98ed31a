// A patient on a phone: every patient page is axe-clean, within the transfer budget, and screenshotted;
// ticking a checklist item is saved to the record; a problem answer leads straight to what to do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, PHONE, DESKTOP, BUDGET_BYTES, launch, demoLogins, newPage, signIn, checkAxe, shot, measureTransfer, recordBudget } from './helpers.mjs';

let browser;
let patientBase;
const logins = demoLogins();

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const PAGES = ['today', 'pump', 'check', 'log', 'reminders', 'card'];

test('patient pages on a phone and a desktop: axe-clean, under budget, with a way home and tel: links', async () => {
  for (const [label, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const page = await newPage(browser, viewport);
    await signIn(page, logins.patient[0]);
    const m = page.url().match(/\/p\/([^/]+)\/today/);
    assert.ok(m, `a patient lands on their Today page, got ${page.url()}`);
    patientBase = `${BASE}/p/${m[1]}`;
    for (const name of PAGES) {
      const url = `${patientBase}/${name}`;
      const { bytes, perUrl } = await measureTransfer(page, url);
      if (label === 'phone') recordBudget(name, { bytes, perUrl });
      assert.ok(bytes < BUDGET_BYTES, `${name} transferred ${bytes} bytes, over the ${BUDGET_BYTES} budget: ${JSON.stringify(perUrl)}`);
      assert.equal(await page.locator('h1').count(), 1, `${name} has exactly one h1`);
      assert.ok(await page.locator('a.skip[href="#main"]').count() === 1, `${name} has a skip link`);
      assert.ok(await page.locator('main#main').count() === 1, `${name} has a main landmark`);
      assert.ok(await page.locator('a[href^="tel:"]').count() > 0, `${name} shows the care team's numbers as tel: links`);
      assert.ok(await page.locator('header a.brand').count() === 1, `${name} has a way home`);
      assert.match(await page.locator('main > .care-first').innerText(), /care team/i, `${name} says the care team's instructions come first`);
      const base = parseFloat(await page.evaluate(() => getComputedStyle(document.body).fontSize));
      assert.ok(base >= 18, `${name}: base text is ${base}px, at least 18px expected`);
      await checkAxe(page, `${name} (${label})`);
      await shot(page, `patient-${name}-${label}`);
    }
    await page.context().close();
  }
});

test('ticking a checklist item is saved and shown; a problem leads straight to what to do', async () => {
  const page = await newPage(browser, PHONE);
  await signIn(page, logins.patient[0]);
  await page.goto(`${patientBase}/today?phase=before`);
  const first = page.locator('ul.checklist > li').first();
  const itemId = await first.getAttribute('id');
  await Promise.all([page.waitForURL(/saved=1/), first.locator('button[value=ok]').click()]);
  await page.locator(`#${itemId} .done`).waitFor();
  assert.match(await page.locator('[role=status].notice').innerText(), /saved/i);
  // The record has it.
  await page.goto(`${patientBase}/log?kind=checklists&days=1`);
  assert.match(await page.locator('.timeline').innerText(), /Checklist: item done/);
  // A problem answer goes to what to do.
  await page.goto(`${patientBase}/today?phase=before`);
  const second = page.locator('ul.checklist > li').nth(1);
  await Promise.all([page.waitForURL(/what-to-do/), second.locator('button[value=problem]').click()]);
  assert.ok(await page.locator('ol.steps li').count() >= 1, 'the problem page lists steps');
  await checkAxe(page, 'what to do');
  await shot(page, 'patient-what-to-do-phone');
  await page.context().close();
});

test('the essentials work without JavaScript', async () => {
  const context = await browser.newContext({ viewport: PHONE, javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, logins.patient[0]);
  await page.goto(`${patientBase}/today?phase=during`);
  const item = page.locator('ul.checklist > li').first();
  const itemId = await item.getAttribute('id');
  await Promise.all([page.waitForURL(/saved=1/), item.locator('button[value=ok]').click()]);
  await page.locator(`#${itemId} .done`).waitFor();
  await page.goto(`${patientBase}/pump`);
  assert.equal(await page.locator('h1').count(), 1);
  await context.close();
});

test('a caregiver signs in to the person they care for, and sees whose record it is', async () => {
  assert.ok(logins.caregiver, 'the demo has a caregiver login');
  const page = await newPage(browser, PHONE);
  await signIn(page, logins.caregiver[0]);
  assert.match(page.url(), /\/p\/[^/]+\/today/);
  assert.match(await page.title(), /Today: /, 'the title names the person cared for');
  await page.goto(page.url().replace(/\/today.*$/, '/pump'));
  assert.equal(await page.locator('h1').count(), 1);
  await checkAxe(page, 'caregiver pump page');
  await shot(page, 'caregiver-pump-phone');
  await page.context().close();
});
