// The pump corner card prints on one A4 sheet and on one Letter sheet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, DESKTOP, launch, demoLogins, newPage, signIn } from './helpers.mjs';

let browser;
const logins = demoLogins();
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('the pump corner card fits one A4 and one Letter page', async () => {
  const page = await newPage(browser, DESKTOP);
  await signIn(page, logins.patient[0]);
  const base = page.url().replace(/\/today.*$/, '');
  await page.goto(`${base}/card`);
  await page.emulateMedia({ media: 'print' });
  for (const format of ['A4', 'Letter']) {
    const pdf = await page.pdf({ format, printBackground: true });
    const file = path.join(ARTIFACTS, `pump-corner-card-${format}.pdf`);
    writeFileSync(file, pdf);
    const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
    const pages = Number((info.match(/^Pages:\s+(\d+)/m) || [])[1]);
    assert.equal(pages, 1, `the card on ${format} printed on ${pages} pages (see ${file})`);
    const text = execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' });
    assert.match(text, /Quick alarm guide/);
    assert.match(text, /Blocked line/);
    assert.match(text, /\d{3}/, 'the card carries phone numbers');
  }
  await page.context().close();
});
