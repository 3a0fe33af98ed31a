// The nurse's screens on a desktop and a phone: dashboard, patient page, plan editor validation, practice
// pump page; all axe-clean.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, PHONE, DESKTOP, launch, demoLogins, newPage, signIn, submitAndLoad, checkAxe, shot, fold } from './helpers.mjs';

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
    if (label === 'phone') await fold(page, 'nurse-dashboard');
    const href = await page.locator('ul.patients > li h3 a').first().getAttribute('href');
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

test('the dashboard: attention first, then every patient by name, searchable and paged with plain links', async () => {
  const page = await newPage(browser, DESKTOP);
  await signIn(page, logins.nurse[0]);
  // Headings in order, and the count of patients who need attention is a live region.
  const headings = await page.locator('main h1, main h2').allInnerTexts();
  assert.deepEqual(headings.slice(0, 3), ['Patients', 'Needs attention', 'All patients']);
  assert.match(await page.locator('#attention-count').innerText(), /attention/);
  assert.equal(await page.locator('#attention-count').getAttribute('aria-live'), 'polite');
  assert.match(await page.locator('#page-label').innerText(), /^Page 1 of \d+$/);

  // Search through the form (a plain GET): a patient's name, typed in lower case, finds that patient.
  const name = (await page.locator('#patient-list > li h3 a').last().innerText()).trim();
  await page.fill('#q', name.toLowerCase());
  await submitAndLoad(page, 'form[role=search] button[type=submit]');
  assert.match(page.url(), /\/nurse\?q=/);
  assert.equal(await page.locator('#q').inputValue(), name.toLowerCase(), 'the search stays in the box');
  assert.ok(await page.locator('#patient-list > li h3 a', { hasText: name }).count() >= 1, `the search finds ${name}`);
  assert.match(await page.locator('#matching').innerText(), /match/);
  await checkAxe(page, 'dashboard search');

  // Nothing found says so and links back to everyone; the attention section stays.
  await page.fill('#q', 'nobody-has-this-name');
  await submitAndLoad(page, 'form[role=search] button[type=submit]');
  assert.match(await page.locator('#no-match').innerText(), /No patient/);
  assert.equal(await page.locator('#attention-h').count(), 1);
  await Promise.all([page.waitForLoadState('load'), page.locator('#no-match a').click()]);
  assert.match(page.url(), /\/nurse$/);

  // A page past the end shows the last page, with a link back and none onwards.
  await page.goto(`${BASE}/nurse?page=999`);
  const [, shown, pages] = /Page (\d+) of (\d+)/.exec(await page.locator('#page-label').innerText());
  assert.equal(shown, pages, 'the last page');
  assert.equal(await page.locator('.pager a[rel=next]').count(), 0);
  assert.equal(await page.locator('.pager a[rel=prev]').count(), Number(pages) > 1 ? 1 : 0);
  await page.context().close();
});

test('the plan editor refuses a bad plan, naming the field, and keeps the text', async () => {
  const page = await newPage(browser, DESKTOP);
  await signIn(page, logins.nurse[0]);
  const href = await page.locator('ul.patients > li h3 a').first().getAttribute('href');
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
  await submitAndLoad(page, 'form[action$="/plan"] button[type=submit]');
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
