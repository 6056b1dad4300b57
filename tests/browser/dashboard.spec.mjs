// The dashboard on the demo store (tests/fixtures/mkdemo.sh), in a real
// browser: what it shows is checked against GET /layers and against what
// `layerd entries` and `layerd export` print.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { DEMO, cliDigest, cliEntries, expect, readRows, shot, test } from './helpers.mjs';

const LAYERS = ['base', 'app', 'patch', 'snap-base', 'snap-top'];

async function ready(page) {
  await expect(page.locator('#view[data-ready="true"]')).toBeVisible();
}

async function complete(page) {
  await expect(page.locator('#status')).toHaveAttribute('data-state', 'complete');
}

test('the layers list shows every layer of GET /layers and the filter narrows it', async ({ page, problems }) => {
  const res = await page.request.get(`${DEMO}/layers`);
  const api = (await res.json()).layers;
  await page.goto(`${DEMO}/ui/`);
  await ready(page);
  const ids = await page.locator('#layers tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  expect(ids.slice().sort()).toEqual(api.map((l) => l.id).sort());
  expect(ids.length).toBe(LAYERS.length);
  // newest first by default: the parent links and created times agree
  for (const l of api) {
    const row = page.locator(`#layers tbody tr[data-id="${l.id}"]`);
    await expect(row.locator('td').nth(1)).toContainText(l.kind);
    if (l.parent) await expect(row.locator('td').nth(2)).toHaveText(l.parent);
    await expect(row.locator('td').nth(3)).toContainText(l.created);
  }
  const byCreated = api.slice().sort((a, b) => b.created.localeCompare(a.created) || (a.id < b.id ? 1 : -1));
  expect(ids[0]).toBe(byCreated[0].id);
  await shot(page, 'layers-list');

  await page.locator('#layer-filter').fill('snap');
  await expect(page.locator('#layers tbody tr')).toHaveCount(2);
  const narrowed = await page.locator('#layers tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  expect(narrowed.sort()).toEqual(['snap-base', 'snap-top']);
  await expect(page.locator('#layer-count')).toHaveText('2 of 5 layers');
  expect(new URL(page.url()).searchParams.get('q')).toBe('snap');
  await page.locator('#layer-filter').fill('no-such-layer');
  await expect(page.locator('#layers tbody tr')).toHaveText(['No layer matches the filter.']);
  await page.locator('#layer-filter').fill('');

  // sorting by id, both ways
  await page.locator('#layer-sort').selectOption('id');
  await expect(page.locator('#layers tbody tr').first()).toHaveAttribute('data-id', 'app');
  await page.locator('#layer-sort').selectOption('-id');
  await expect(page.locator('#layers tbody tr').first()).toHaveAttribute('data-id', 'snap-top');
  expect(problems.seen).toEqual([]);
});

for (const id of LAYERS) {
  test(`the flat view of ${id} shows exactly the paths and changes of layerd entries`, async ({ page, problems }) => {
    const want = cliEntries(id).map((e) => ({ path: e.path, change: e.change }));
    await page.goto(`${DEMO}/ui/layers/${id}?view=flat`);
    await complete(page);
    await expect(page.locator('#live-count')).toHaveText(`${want.length} ${want.length === 1 ? 'entry' : 'entries'}`);
    expect(await readRows(page)).toEqual(want);
    if (id === 'patch') {
      await page.locator('#rows').evaluate((el) => { el.scrollTop = 0; });
      await shot(page, 'flat-view');
      // change kinds filter on the page, the prefix through the API
      await page.locator('#kind-add').uncheck();
      await page.locator('#kind-modify').uncheck();
      expect(await readRows(page)).toEqual(want.filter((e) => e.change === 'delete'));
      expect(new URL(page.url()).searchParams.get('change')).toBe('delete');
      await page.locator('#kind-add').check();
      await page.locator('#kind-modify').check();
      await page.locator('#prefix').fill('var/lib');
      await page.locator('#prefix').press('Enter');
      await complete(page);
      expect(await readRows(page)).toEqual(want.filter((e) => e.path === 'var/lib' || e.path.startsWith('var/lib/')));
      expect(new URL(page.url()).searchParams.get('prefix')).toBe('var/lib');
    }
  });
}

// The CLI's entries that are direct children of dir.
function children(id, dir) {
  return cliEntries(id)
    .filter((e) => (dir === '' ? !e.path.includes('/') : e.path.startsWith(`${dir}/`) && !e.path.slice(dir.length + 1).includes('/')))
    .map((e) => ({ path: e.path, change: e.change }));
}

for (const [id, dir] of [['base', ''], ['base', 'etc'], ['patch', 'var/lib/db']]) {
  test(`the directory view of ${id} shows the children of /${dir}`, async ({ page, problems }) => {
    const want = children(id, dir);
    expect(want.length).toBeGreaterThan(1);
    await page.goto(`${DEMO}/ui/layers/${id}${dir ? `?path=${dir}` : ''}`);
    await complete(page);
    expect(await readRows(page)).toEqual(want);
    await expect(page.locator('#dir-info')).toContainText(`${want.length} entries here`);
    if (dir === 'var/lib/db') {
      // an opaque directory: its parents' files are tombstones here
      expect(want.some((e) => e.change === 'delete')).toBe(true);
      await expect(page.locator('#dir-info')).toContainText('opaque');
      await shot(page, 'directory-view');
    }
  });
}

test('the keyboard moves, opens and goes up', async ({ page, problems }) => {
  await page.goto(`${DEMO}/ui/layers/base`);
  await complete(page);
  await page.locator('#rows').focus();
  await page.keyboard.press('ArrowDown'); // bin
  await page.keyboard.press('ArrowDown'); // dev
  await page.keyboard.press('ArrowDown'); // etc
  await expect(page.locator('#rows .row[aria-selected="true"]')).toHaveAttribute('data-path', 'etc');
  await page.keyboard.press('Enter');
  await expect(page.locator('#pathbar')).toContainText('etc');
  await complete(page);
  expect(new URL(page.url()).searchParams.get('path')).toBe('etc');
  await page.locator('#rows').focus();
  await page.keyboard.press('End');
  await expect(page.locator('#rows .row[aria-selected="true"]')).toHaveAttribute('data-path', 'etc/passwd');
  await page.keyboard.press('Enter');
  await expect(page.locator('#panel[data-ready="true"] #panel-title')).toHaveText('passwd');
  await page.locator('#rows').focus();
  await page.keyboard.press('Backspace');
  await complete(page);
  expect(new URL(page.url()).searchParams.get('path')).toBe(null);
});

test('the entry panel of a text file shows its fields, xattrs and first line', async ({ page, problems }) => {
  const entry = cliEntries('base').find((e) => e.path === 'etc/os-release');
  await page.goto(`${DEMO}/ui/layers/base?path=etc&entry=etc/os-release`);
  await expect(page.locator('#panel[data-ready="true"]')).toBeVisible();
  await expect(page.locator('#preview-text')).toBeVisible();
  const first = (await page.locator('#preview-text').textContent()).split('\n')[0];
  expect(first).toBe('NAME="layerd demo"');
  for (const key of Object.keys(entry).filter((k) => k !== 'xattrs'))
    await expect(page.locator(`#entry-fields dd[data-field="${key}"]`)).toBeVisible();
  await expect(page.locator('#entry-fields dd[data-field="mode"]')).toHaveText('-rw-r--r--  0644');
  await expect(page.locator('#entry-xattrs')).toContainText('user.layerd.origin');
  await expect(page.locator('#entry-xattrs .v[data-decoded="text"]')).toHaveText('base');
  await expect(page.locator('#rows .row[aria-selected="true"]')).toHaveAttribute('data-path', 'etc/os-release');
  await shot(page, 'entry-panel');

  // a hard link points at its first name
  await page.goto(`${DEMO}/ui/layers/base?path=usr/bin&entry=usr/bin/tool-alias`);
  await expect(page.locator('#panel[data-ready="true"] a.link-target')).toHaveText('usr/bin/tool');
  await page.locator('#panel a.link-target').click();
  await expect(page.locator('#panel[data-ready="true"] #panel-title')).toHaveText('tool');
  await expect(page.locator('#preview-text')).toContainText('tool v1');

  // a file download carries the file's bytes
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#entry-download').click()]);
  expect(fs.readFileSync(await dl.path(), 'utf8')).toBe('#!/bin/sh\necho "tool v1"\n');
});

test('the export buttons download what the CLI exports, digest for digest', async ({ page, problems }) => {
  await page.goto(`${DEMO}/ui/layers/patch`);
  await complete(page);
  for (const [compression, ext] of [['gzip', '.tar.gz'], ['none', '.tar']]) {
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.locator(`button[data-compression="${compression}"]`).click(),
    ]);
    expect(dl.suggestedFilename()).toBe(`patch${ext}`);
    const bytes = fs.readFileSync(await dl.path());
    const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
    expect(digest).toBe(cliDigest('patch', compression));
    // the page shows the digest of what it downloaded
    await expect(page.locator('#export-digest')).toHaveText(digest);
  }
});

test('an export started before the counts come keeps its note when they redraw the head', async ({ page, problems }) => {
  // hold the counts until the download is done, so that they redraw the
  // head after it
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/layers/patch/summary', async (route) => { await held; await route.continue(); });
  await page.goto(`${DEMO}/ui/layers/patch`);
  await complete(page);
  await expect(page.locator('#layer-head')).not.toHaveAttribute('data-counted', 'true');
  const [dl] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('button[data-compression="none"]').click(),
  ]);
  const digest = `sha256:${crypto.createHash('sha256').update(fs.readFileSync(await dl.path())).digest('hex')}`;
  await expect(page.locator('#export-digest')).toHaveText(digest);
  release();
  await expect(page.locator('#layer-head')).toHaveAttribute('data-counted', 'true');
  await expect(page.locator('#export-digest')).toHaveText(digest);
  await expect(page.locator('button[data-compression="none"]')).toBeEnabled();
});

test('deep links reload, and back and forward move between views', async ({ page, problems }) => {
  await page.goto(`${DEMO}/ui/`);
  await ready(page);
  await page.locator('#layers a', { hasText: /^patch$/ }).first().click();
  await expect(page).toHaveURL(/\/ui\/layers\/patch$/);
  await complete(page);
  await page.locator('#rows .row[data-path="var"] a').click();
  await expect(page).toHaveURL(/path=var$/);
  await complete(page);
  await page.locator('#rows .row[data-path="var/lib"] a').click();
  await complete(page);
  await page.locator('#rows .row[data-path="var/lib/db"] a').click();
  await complete(page);
  await page.locator('#rows .row[data-path="var/lib/db/fresh.db"] a').click();
  await expect(page.locator('#panel[data-ready="true"] #panel-title')).toHaveText('fresh.db');
  const deep = page.url();
  expect(deep).toContain('entry=var%2Flib%2Fdb%2Ffresh.db');

  await page.reload();
  await expect(page.locator('#panel[data-ready="true"] #panel-title')).toHaveText('fresh.db');
  await complete(page);
  await expect(page.locator('#pathbar')).toContainText('db');
  await expect(page.locator('#preview-text')).toHaveText('fresh\n');

  await page.goBack(); // the panel closes
  await expect(page.locator('#panel')).toBeHidden();
  await expect(page).toHaveURL(/path=var%2Flib%2Fdb$/);
  await page.goBack();
  await complete(page);
  await expect(page).toHaveURL(/path=var%2Flib$/);
  expect((await readRows(page)).map((r) => r.path)).toEqual(['var/lib/db']);
  await page.goForward();
  await complete(page);
  await page.goForward();
  await expect(page.locator('#panel[data-ready="true"] #panel-title')).toHaveText('fresh.db');
  expect(page.url()).toBe(deep);

  // the flat view's filters are in the URL too
  await page.goto(`${DEMO}/ui/layers/patch?view=flat&change=delete`);
  await complete(page);
  expect((await readRows(page)).every((r) => r.change === 'delete')).toBe(true);
  await page.goBack();
  await expect(page.locator('#panel[data-ready="true"] #panel-title')).toHaveText('fresh.db');
});

test('a missing layer shows the 404 problem with its trace id', async ({ page, problems }) => {
  // the layer, and the listing that starts beside it
  problems.expect(/\/layers\/no-such-layer([/?]|$)/);
  const [res] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/layers/no-such-layer'),
    page.goto(`${DEMO}/ui/layers/no-such-layer`),
  ]);
  expect(res.status()).toBe(404);
  const body = await res.json();
  const box = page.locator('.problem[data-status="404"]');
  await expect(box).toBeVisible();
  await expect(box.locator('h2')).toHaveText(body.title);
  await expect(box.locator('.detail')).toHaveText(body.detail);
  await expect(box.locator('.trace-id')).toHaveText(body.trace_id);
  expect(body.trace_id).toMatch(/^[0-9a-f]{32}$/);
  await shot(page, 'problem-404');
});

test('screenshots: every view at 1280x800 and 390x844, light and dark', async ({ browser }) => {
  const views = [
    ['layers', '/ui/'],
    ['directory', '/ui/layers/patch?path=var/lib/db'],
    ['flat', '/ui/layers/patch?view=flat'],
    ['entry', '/ui/layers/base?path=etc&entry=etc/os-release'],
    ['problem', '/ui/layers/no-such-layer'],
  ];
  for (const [w, hgt] of [[1280, 800], [390, 844]]) {
    for (const scheme of ['light', 'dark']) {
      const ctx = await browser.newContext({ viewport: { width: w, height: hgt }, colorScheme: scheme, ignoreHTTPSErrors: true });
      const page = await ctx.newPage();
      for (const [name, url] of views) {
        await page.goto(`${DEMO}${url}`);
        await expect(page.locator('#view[data-ready="true"]')).toBeVisible();
        if (name === 'entry') await expect(page.locator('#panel[data-ready="true"]')).toBeVisible();
        if (name !== 'layers' && name !== 'problem') {
          await complete(page);
          await expect(page.locator('#layer-head[data-counted="true"]')).toBeVisible();
        }
        if (name === 'directory') await expect(page.locator('#dir-info[data-counted="true"]')).toBeVisible();
        await shot(page, `${name}-${w}x${hgt}-${scheme}`);
      }
      await ctx.close();
    }
  }
});
