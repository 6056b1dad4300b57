// What every browser test shares: a page fixture that records console
// errors, uncaught exceptions, failed requests and error answers, and
// fails the test on any it did not expect; screenshots into the
// artifacts directory; reading the rows of a virtualised list by
// scrolling through it.
import { test as base, expect } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';

export const DEMO = process.env.LAYERD_DEMO_URL;
export const BIG = process.env.LAYERD_BIG_URL;
export const EXPECT = process.env.LAYERD_EXPECT;
export const ARTIFACTS = process.env.LAYERD_ARTIFACTS || 'browser-artifacts';

// Chromium (with Playwright 1.6x) may report a fetch() whose body was
// streamed to its end as failed with net::ERR_ABORTED when the response
// says Cache-Control: no-store, as the entries streams do: the page got
// every byte, only the report is wrong. Such a report is forgiven when the
// page's own Resource Timing shows that request complete (status 200); a
// request the page really aborted shows status 0 there, and a server that
// cut a stream makes the page fail visibly.
const RESOURCES = `new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    if (e.responseStatus) window.__layerdResource(e.name, e.responseStatus, e.encodedBodySize);
}).observe({ type: 'resource', buffered: true });`;

export const test = base.extend({
  // problems.expect(re): an error answer (or failure) this test provokes.
  problems: async ({ page }, use) => {
    const seen = [];
    const allowed = [];
    const complete = [];
    await page.exposeFunction('__layerdResource', (url, status, size) => complete.push({ url, status, size }));
    await page.addInitScript(RESOURCES);
    page.on('console', (m) => {
      if (m.type() === 'error') seen.push({ kind: 'console', text: m.text(), url: m.location().url });
    });
    page.on('pageerror', (e) => seen.push({ kind: 'exception', text: String(e) }));
    // A request still running when the page moves on (a reload, a view
    // change through the history) is cancelled by the browser or by the
    // page: net::ERR_ABORTED then means "no longer wanted", not a failure.
    let navigations = 0;
    const startedAt = new Map();
    // (a reload or a link starts a document request before the old
    // document's requests are cancelled; a move through the history within
    // the page shows as a navigated frame)
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
    page.on('request', (r) => {
      if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigations++;
      startedAt.set(r, navigations);
    });
    page.on('requestfailed', (r) => seen.push({ kind: 'failed', text: `${r.url()} ${r.failure()?.errorText}`, url: r.url(), error: r.failure()?.errorText, superseded: navigations > (startedAt.get(r) ?? navigations) }));
    page.on('response', (r) => {
      if (r.status() >= 400) seen.push({ kind: 'status', text: `${r.status()} ${r.url()}`, url: r.url() });
    });
    const api = { expect: (re) => allowed.push(re), seen };
    await use(api);
    const forgiven = (s) => {
      if (s.kind !== 'failed' || s.error !== 'net::ERR_ABORTED') return false;
      if (s.superseded) return true;
      const i = complete.findIndex((c) => c.url === s.url && c.status === 200);
      if (i < 0) return false;
      complete.splice(i, 1);
      return true;
    };
    // Chromium reports an error answer to fetch() on the console as well:
    // one allowed answer covers both lines.
    const unexpected = seen.filter((s) => !forgiven(s) && !allowed.some((re) =>
      re.test(s.text) || (s.kind === 'console' && /Failed to load resource/.test(s.text) && s.url && re.test(s.url))));
    expect(unexpected, 'console errors, exceptions, failed requests or error answers').toEqual([]);
  },
});
export { expect };

export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

export function record(name, value) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'measurements.json');
  let all = {};
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    all = {};
  }
  all[name] = value;
  fs.writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  console.log(`measured ${name}: ${JSON.stringify(value)}`);
}

// The CLI's entries of a demo layer (written by test_browser.sh).
export function cliEntries(id) {
  return fs.readFileSync(path.join(EXPECT, `entries-${id}.ndjson`), 'utf8')
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

export function cliDigest(id, compression) {
  return JSON.parse(fs.readFileSync(path.join(EXPECT, `export-${id}-${compression}.json`), 'utf8')).digest;
}

// Every row of the list #rows: [{path, change}] in order, read by
// scrolling the virtualised list from top to bottom.
export async function readRows(page) {
  const list = page.locator('#rows');
  await list.evaluate((el) => { el.scrollTop = 0; });
  const rows = new Map();
  for (let step = 0; step < 10000; step++) {
    const got = await list.evaluate(async (el) => {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const out = [];
      for (const row of el.querySelectorAll('.row:not([hidden])'))
        out.push([Number(row.dataset.index), row.dataset.path, row.dataset.change]);
      const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 1;
      el.scrollTop += el.clientHeight;
      return { out, atEnd };
    });
    for (const [i, p, c] of got.out) rows.set(i, { path: p, change: c });
    if (got.atEnd) break;
  }
  const n = rows.size ? Math.max(...rows.keys()) + 1 : 0;
  return Array.from({ length: n }, (_, i) => rows.get(i) || { path: null, change: null });
}
