// A symptom check that ends in an emergency: the emergency number comes first and largest, as a tel: link.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PHONE, DESKTOP, launch, demoLogins, newPage, signIn, submitAndLoad, checkAxe, shot, fold } from './helpers.mjs';

let browser;
const logins = demoLogins();
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

for (const [label, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
  test(`symptom check ending in an emergency (${label})`, async () => {
    const page = await newPage(browser, viewport);
    await signIn(page, logins.patient[0]);
    const base = page.url().replace(/\/today.*$/, '');
    await page.goto(`${base}/check`);
    await page.check('input[value=difficulty_breathing]');
    await submitAndLoad(page, 'form[action$="/check"] button[type=submit].primary');
    const call = page.locator('main a.call-big');
    await call.waitFor();
    assert.match(await call.getAttribute('href'), /^tel:\+?\d+/);
    // First on the page's main content, before everything else.
    const first = await page.evaluate(() => document.querySelector('main').firstElementChild.className);
    assert.match(first, /call-big/);
    // Largest text on the page.
    const sizes = await page.evaluate(() => {
      const big = parseFloat(getComputedStyle(document.querySelector('.call-big')).fontSize);
      let max = 0;
      for (const el of document.querySelectorAll('main *:not(.call-big)')) {
        if (el.closest('.call-big')) continue;
        if (el.childNodes.length && [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) {
          max = Math.max(max, parseFloat(getComputedStyle(el).fontSize));
        }
      }
      return { big, max };
    });
    assert.ok(sizes.big > sizes.max, `the emergency number (${sizes.big}px) is larger than any other text (${sizes.max}px)`);
    assert.match(await page.locator('main h1').innerText(), /emergency/i);
    assert.ok(await page.locator('main ol.steps li').count() >= 1);
    await checkAxe(page, `emergency result (${label})`);
    await shot(page, `patient-emergency-${label}`);
    if (label === 'phone') await fold(page, 'emergency-result');
    // The check is in the record.
    await page.goto(`${base}/log?kind=symptoms&days=1`);
    assert.match(await page.locator('.timeline').innerText(), /Symptom check: emergency/);
    await page.context().close();
  });
}
