// The dashboard against a server with an access policy
// (test_browser.sh: LAYERD_AUTH_URL, the agent's token in
// LAYERD_AUTH_TOKEN; the agent may list and read base, app and patch).
// The page's files load without credentials; its first API request gets
// a 401, the page asks for a token, keeps it in sessionStorage and sends
// it as a Bearer token; a wrong token shows the 401 problem, from which
// another token can be given.
import { ARTIFACTS, expect, shot, test } from './helpers.mjs';

const AUTH = process.env.LAYERD_AUTH_URL;
const TOKEN = process.env.LAYERD_AUTH_TOKEN;

// What the page sent and got: the Authorization of each API request, and
// the challenges of each 401.
function watch(page) {
  const seen = { authorizations: [], challenges: [] };
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/layers')) seen.authorizations.push(r.headers().authorization || null);
  });
  page.on('response', async (r) => {
    if (r.status() !== 401) return;
    const all = await r.headersArray();
    seen.challenges.push(all.filter((x) => x.name.toLowerCase() === 'www-authenticate').map((x) => x.value));
  });
  return seen;
}

async function giveToken(page, token) {
  const dialog = page.locator('#token-dialog');
  await expect(dialog).toBeVisible();
  await page.locator('#token-input').fill(token);
  await dialog.getByRole('button', { name: 'Use this token' }).click();
}

test('with a policy in force: the token prompt, then the page works', async ({ page, problems }) => {
  expect(AUTH, 'LAYERD_AUTH_URL').toBeTruthy();
  problems.expect(/\/layers\?/); // the 401 of the first request, before the token
  const seen = watch(page);
  await page.goto(`${AUTH}/ui/`);
  await expect(page.locator('#token-dialog')).toBeVisible();
  await shot(page, 'token-prompt');
  await giveToken(page, TOKEN);
  await expect(page.locator('#view[data-ready="true"]')).toBeVisible();
  const ids = await page.locator('#layers tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  expect(ids.slice().sort()).toEqual(['app', 'base', 'patch']);
  expect(await page.evaluate(() => sessionStorage.getItem('layerd.token'))).toBe(TOKEN);
  // the first request went without, the retry and the rest with the token
  expect(seen.authorizations[0]).toBeNull();
  expect(seen.authorizations.slice(1).length).toBeGreaterThan(0);
  for (const a of seen.authorizations.slice(1)) expect(a).toBe(`Bearer ${TOKEN}`);
  // a page's fetch() gets the Bearer challenge only: a Basic one would
  // make the browser open its own login dialog over the page's
  expect(seen.challenges).toEqual([['Bearer realm="layerd"']]);

  // a layer's view and an entry, with the kept token; no second prompt
  await page.goto(`${AUTH}/ui/layers/base?path=etc&entry=etc/os-release`);
  await expect(page.locator('#view[data-ready="true"]')).toBeVisible();
  await expect(page.locator('#token-dialog')).toBeHidden();
  await expect(page.locator('#rows')).toContainText('os-release');
  // a layer the agent may not see is a plain 404
  problems.expect(/\/layers\/snap-top([/?]|$)/);
  await page.goto(`${AUTH}/ui/layers/snap-top`);
  await expect(page.locator('.problem[data-status="404"]')).toBeVisible();
  await shot(page, 'token-then-404');
  expect(ARTIFACTS).toBeTruthy();
});

test('a wrong token shows the 401, and another token can be given', async ({ page, problems }) => {
  problems.expect(/\/layers\?/); // the 401s
  const seen = watch(page);
  await page.goto(`${AUTH}/ui/`);
  await giveToken(page, 'not-the-token');
  const box = page.locator('.problem[data-status="401"]');
  await expect(box).toBeVisible();
  await expect(box.locator('h2')).toHaveText('Unauthorized');
  await expect(box.locator('.detail')).toHaveText('the token is not valid on this server');
  await expect(box.locator('.trace-id')).toHaveText(/^[0-9a-f]{32}$/);
  expect(seen.authorizations).toEqual([null, 'Bearer not-the-token']);
  await shot(page, 'token-wrong-401');
  // nothing of the token in what the page shows
  expect(await page.locator('#view').innerText()).not.toContain('not-the-token');

  await box.getByRole('button', { name: 'Use another token' }).click();
  await giveToken(page, TOKEN);
  await expect(page.locator('#view[data-ready="true"]')).toBeVisible();
  await expect(page.locator('#layers tbody tr')).toHaveCount(3);
});
