// The nurse's screens on a desktop and a phone: dashboard, patient page, plan editor validation, practice
// pump page; all axe-clean.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, PHONE, DESKTOP, launch, demoLogins, newPage, signIn, checkAxe, shot } from './helpers.mjs';

let browser;
const logins = demoLogins();
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('nurse screens: dashboard, patient page and practice page', async () => {
  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const page = await newPage(browser, viewport);
    await signIn(page, logins.nurse[0]);
    assert.match(page.url(), /\/nurse$/);
    assert.ok(await page.locator('ul.patients > li').count() >= 2, 'the demo clinic has at least two patients');
    await checkAxe(page, `dashboard (${label})`);
    await shot(page, `nurse-dashboard-${label}`);
    const href = await page.locator('ul.patients > li h2 a').first().getAttribute('href');
    await page.goto(`${BASE}${href}`);
    assert.ok(await page.locator('svg.chart').count() >= 2, 'the patient page draws both charts');
    assert.ok(await page.locator('textarea[name=plan_toml]').count() === 1, 'the plan editor is there');
    await checkAxe(page, `patient page (${label})`);
    await shot(page, `nurse-patient-${label}`);
    await page.goto(`${BASE}${href}/practice`);
    await checkAxe(page, `practice page (${label})`);
    await shot(page, `nurse-practice-${label}`);
    await page.context().close();
  }
});

test('the plan editor refuses a bad plan, naming the field, and keeps the text', async () => {
  const page = await newPage(browser, DESKTOP);
  await signIn(page, logins.nurse[0]);
  const href = await page.locator('ul.patients > li h2 a').first().getAttribute('href');
  await page.goto(`${BASE}${href}`);
  const original = await page.locator('textarea[name=plan_toml]').inputValue();
  assert.match(original, /rate_ml_per_h\s*=/);
  const broken = original.replace(/rate_ml_per_h\s*=\s*[0-9.]+/, 'rate_ml_per_h = -5');
  await page.fill('textarea[name=plan_toml]', broken);
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('form[action$="/plan"] button[type=submit]')]);
  assert.equal(response.status(), 422);
  assert.match(await page.locator('#plan-errors').innerText(), /rate_ml_per_h/);
  // The failed save is summarised at the top of the page, above the fold, with a link to the field.
  const top = page.locator('#plan-errors-top');
  assert.match(await top.innerText(), /rate_ml_per_h/);
  const box = await top.boundingBox();
  assert.ok(box && box.y < (page.viewportSize()?.height ?? 800), `the error summary starts at ${box?.y} px`);
  assert.equal(await top.locator('a[href="#plan-plan_toml"]').count() >= 1, true, 'the summary links to the field');
  assert.equal(await page.locator('textarea[name=plan_toml]').inputValue(), broken);
  await checkAxe(page, 'plan editor with an error');
  await shot(page, 'nurse-plan-error-desktop');
  // Saving the original again works and records the change.
  await page.fill('textarea[name=plan_toml]', original);
  await Promise.all([page.waitForLoadState('load'), page.click('form[action$="/plan"] button[type=submit]')]);
  assert.equal(await page.locator('#plan-errors').count(), 0);
  assert.match(await page.locator('main').innerText(), /Therapy plan changed/);
  await page.context().close();
});

test('an outsider is sent to sign in, and a patient cannot open the nurse pages', async () => {
  const page = await newPage(browser, PHONE);
  await page.goto(`${BASE}/nurse`);
  assert.match(page.url(), /\/login/);
  await signIn(page, logins.patient[0]);
  const r = await page.goto(`${BASE}/nurse`);
  assert.equal(r.status(), 403);
  assert.ok(await page.locator('a[href="/"]').count() >= 1, 'the error page offers a way back');
  await page.context().close();
});
