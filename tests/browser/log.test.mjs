// The patient's own log (issue 13, item 7) in a real browser: the caregiver writes how the patient felt and a
// change at the site (with a photo), the nurse sees both on the patient's page, and both are in the record's
// FHIR export, validated with fhir.resources as the record's own export test does; axe-clean at 320, 390 and
// 1280 px. Also the Reminders page's secret calendar address, read without a session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BASE, PHONE, DESKTOP, launch, demoLogins, newPage, signIn, submitAndLoad, checkAxe, shot, fold } from './helpers.mjs';

const SMALL = { width: 320, height: 720 };
const SIZES = [['320', SMALL], ['390', PHONE], ['1280', DESKTOP]];
// The first bytes of a JPEG (the server checks the type by its bytes, not by the name).
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9]);
const FELT_WORDS = `Tired and shivery after the dose (${Date.now()})`;
const SITE_WORDS = `A pink ring around the PICC, about 2 cm (${Date.now()})`;

for (const name of ['INFUSAFE_BIN', 'INFUSAFE_DATA_DIR']) {
  if (!process.env[name]) {
    throw new Error(`${name} is not set: run through scripts/browser-test, which exports the demo's record with it`);
  }
}

let browser;
const logins = demoLogins();
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/// The patient a caregiver lands on, from the Today page's address.
async function patientBase(page) {
  const m = page.url().match(/(\/p\/[^/]+)\/today/);
  assert.ok(m, `the caregiver lands on a Today page: ${page.url()}`);
  return m[1];
}

test('the caregiver writes how the patient felt and a site change; the nurse sees them; FHIR carries them', async () => {
  assert.ok(logins.caregiver, 'the demo has a caregiver login');
  const page = await newPage(browser, PHONE);
  await signIn(page, logins.caregiver[0]);
  const base = await patientBase(page);
  const patientId = base.split('/').pop();

  // From the Log page, one action per screen.
  await page.goto(`${BASE}${base}/log`);
  const write = page.locator('nav.write-log a');
  assert.equal(await write.count(), 3, 'three forms, one action each');
  // The caregiver reads the patient's name, not "I".
  assert.match(await write.first().innerText(), /^How \S+ felt$/);
  assert.doesNotMatch(await write.first().innerText(), /How I felt/);
  await Promise.all([page.waitForLoadState('load'), write.first().click()]);
  assert.match(page.url(), /\/log\/felt$/);
  // Submitting without choosing says what is wrong and what to do (the browser's own check is bypassed, as a
  // browser without it would send the form).
  await page.locator('form[action$="/log/felt"]').evaluate((f) => f.setAttribute('novalidate', ''));
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('form[action$="/log/felt"] button[type=submit]'),
  ]);
  assert.equal(refused.status(), 422);
  assert.match(await page.locator('#form-errors').innerText(), /Choose how you feel compared with before/);
  await page.check('#c-worse');
  await page.check('#s-chills');
  await page.fill('#felt-text', FELT_WORDS);
  await submitAndLoad(page, 'form[action$="/log/felt"] button[type=submit]');
  assert.match(page.url(), /\/log\/entries\/\d+$/, 'POST, then redirect to the saved entry');
  assert.match(await page.locator('h1').innerText(), /How I felt: worse/);
  assert.match(await page.locator('main').innerText(), new RegExp(FELT_WORDS.replace(/[()]/g, '.')));

  // What I see at my site, with a photo. New redness is something triage sends to the care team: the saved
  // page offers the symptom check at once, pre-filled.
  await page.goto(`${BASE}${base}/log/site`);
  await page.check('#g-new_redness_at_site');
  await page.fill('#site-text', SITE_WORDS);
  await page.setInputFiles('#site-photo', { name: 'site.jpg', mimeType: 'image/jpeg', buffer: JPEG });
  await submitAndLoad(page, 'form[action$="/log/site"] button[type=submit]');
  assert.match(page.url(), /\/log\/entries\/\d+$/);
  const savedPath = new URL(page.url()).pathname;
  const check = page.locator('a:has-text("Check it now")');
  assert.equal(await check.count(), 1, 'the symptom check is offered');
  assert.match(await check.getAttribute('href'), /\/check\?observation=new_redness_at_site/);
  const photoHref = await page.locator('a:has-text("See the photo")').getAttribute('href');
  const photo = await page.request.get(`${BASE}${photoHref}`);
  assert.equal(photo.status(), 200);
  assert.equal(photo.headers()['content-type'], 'image/jpeg');
  await Promise.all([page.waitForLoadState('load'), check.click()]);
  assert.ok(await page.locator('#o-new_redness_at_site').isChecked(), 'the check is pre-filled');
  await page.context().close();

  // Every screen of the log is axe-clean at 320, 390 and 1280 px.
  for (const [label, viewport] of SIZES) {
    const p = await newPage(browser, viewport);
    await signIn(p, logins.caregiver[0]);
    for (const [name, url] of [
      ['log', `${base}/log`],
      ['felt', `${base}/log/felt?after=latest`],
      ['site', `${base}/log/site`],
      ['question', `${base}/log/question`],
      ['saved', savedPath],
      ['own-entries', `${base}/log?kind=own`],
      ['reminders', `${base}/reminders`],
    ]) {
      await p.goto(`${BASE}${url}`);
      await checkAxe(p, `${name} (${label} px)`);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${name} at ${label} px scrolls sideways by ${overflow} px`);
      await shot(p, `log-${name}-${label}`);
      if (label === '390') await fold(p, `log-${name}`);
    }
    await p.context().close();
  }

  // The nurse sees both on the patient's page, with the how-I-felt chart beside alarms and doses.
  for (const [label, viewport] of [['1280', DESKTOP], ['390', PHONE]]) {
    const nurse = await newPage(browser, viewport);
    await signIn(nurse, logins.nurse[0]);
    await nurse.goto(`${BASE}/nurse/patients/${patientId}`);
    const section = nurse.locator('section:has(#own-log)');
    const text = await section.innerText();
    assert.match(text, /How I felt: worse/);
    assert.ok(text.includes(FELT_WORDS), 'the caregiver\'s words reach the nurse');
    assert.match(text, /What I see at my site/);
    assert.ok(text.includes(SITE_WORDS));
    assert.match(text, /By .*/, 'who wrote it');
    assert.equal(await section.locator('svg.chart').count(), 1, 'the how-I-felt chart');
    assert.match(await section.locator('svg.chart desc').textContent(), /How I felt: .*worse/);
    await checkAxe(nurse, `nurse patient page with the patient's log (${label} px)`);
    await shot(nurse, `log-nurse-patient-${label}`);
    await nurse.context().close();
  }

  // The FHIR export of the record, validated with fhir.resources as the record's export test does.
  const dir = mkdtempSync(path.join(tmpdir(), 'infusafe-fhir-'));
  try {
    const out = path.join(dir, 'bundle.json');
    execFileSync(process.env.INFUSAFE_BIN, ['export', '--patient', patientId, '--format', 'fhir',
      '--data-dir', process.env.INFUSAFE_DATA_DIR, '--out', out]);
    const script = path.resolve('../../crates/record/tests/validate_fhir.py');
    const summary = JSON.parse(execFileSync('python3', [script, out], { encoding: 'utf8' }));
    assert.ok(summary.counts.Observation >= 2, JSON.stringify(summary));
    const bundle = JSON.parse(readFileSync(out, 'utf8'));
    const resources = bundle.entry.map((e) => e.resource);
    const felt = resources.find((r) => r.code?.text === 'How the patient felt compared with before'
      && (r.note || []).some((n) => n.text === FELT_WORDS));
    assert.ok(felt, 'how I felt is an Observation in the export');
    assert.equal(felt.valueCodeableConcept.coding[0].code, 'worse');
    assert.deepEqual(felt.component.map((c) => c.code.coding[0].code), ['chills']);
    assert.ok(felt.note.some((n) => n.text === 'Written by the caregiver.'));
    const site = resources.find((r) => r.code?.text === 'What the patient saw at the access site'
      && (r.note || []).some((n) => n.text === SITE_WORDS));
    assert.ok(site, 'the site change is an Observation in the export');
    assert.equal(site.valueString, 'new redness at site');
    assert.ok(site.note.some((n) => /A photo is kept with the record \(image\/jpeg/.test(n.text)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the secret calendar address follows the plan without a session, and a revoked one is a clear 404', async () => {
  const page = await newPage(browser, PHONE);
  await signIn(page, logins.caregiver[0]);
  const base = await patientBase(page);
  await page.goto(`${BASE}${base}/reminders`);
  await Promise.all([page.waitForURL(/\/reminders\?new=/), page.click('button:has-text("Make")')]);
  if (!(await page.locator('#cal-address').count())) {
    assert.fail(`no calendar address after making one; the page (${page.url()}) says:\n${(await page.locator('body').innerText()).slice(0, 1500)}`);
  }
  const address = await page.locator('#cal-address').inputValue();
  assert.match(address, /\/cal\/[0-9a-f]{64}\.ics$/);
  await checkAxe(page, 'reminders with a new calendar address');
  await shot(page, 'log-reminders-calendar-390');
  const anonymous = await browser.newContext();
  const calendar = await anonymous.request.get(address);
  assert.equal(calendar.status(), 200);
  assert.match(await calendar.text(), /^BEGIN:VCALENDAR/);
  await submitAndLoad(page, 'button:has-text("Stop the address")');
  const gone = await anonymous.request.get(address);
  assert.equal(gone.status(), 404);
  assert.match(await gone.text(), /replaced or revoked/);
  await anonymous.close();
  await page.context().close();
});
