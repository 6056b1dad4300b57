// Playwright's settings for the dashboard's browser tests (run by
// tests/integration/test_browser.sh, which starts the servers and sets
// the variables below). The browser is Debian's chromium, never a
// download: Playwright launches it with a fresh temporary profile
// (user-data dir) for every run.
//
//   LAYERD_DEMO_URL   a server on the demo store (tests/fixtures/mkdemo.sh)
//   LAYERD_BIG_URL    a server on the 200,000-entry store (mkbig.sh)
//   LAYERD_AUTH_URL   a server on the demo store under an access policy,
//   LAYERD_AUTH_TOKEN and the token of its principal
//   LAYERD_EXPECT     a directory of what the CLI says (entries, digests)
//   LAYERD_ARTIFACTS  where screenshots and measurements go
import { defineConfig } from '@playwright/test';

const out = process.env.LAYERD_ARTIFACTS || 'browser-artifacts';

export default defineConfig({
  testDir: '.',
  testMatch: /.*\.spec\.mjs$/,
  // two cores, shared with the servers: one test at a time
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  outputDir: `${out}/test-results`,
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    ignoreHTTPSErrors: true, // the servers' certificates are ephemeral
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.LAYERD_CHROMIUM || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--enable-precise-memory-info',
      ],
    },
  },
});
