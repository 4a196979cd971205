/// <reference lib="dom" />
import { copyFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { Browser, chromium, Page } from 'playwright-core';

import { createTestApp, TestApp } from 'test/setup/test-app';

/** Debian's Chromium, with the flags these machines need (no sandbox, no background traffic). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts', 'screenshots');
const DOCS = join(__dirname, '..', '..', 'docs', 'screenshots');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The app listening on a free port (PUBLIC_BASE_URL set to it), and a headless Chromium. */
export async function startBrowserHarness(): Promise<{ t: TestApp; base: string; browser: Browser }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const t = await createTestApp({ env: { PUBLIC_BASE_URL: base } });
  await t.app.listen(port, '127.0.0.1');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  return { t, base, browser };
}

/** A full-page screenshot kept as a test artifact (and in docs/screenshots with UPDATE_SCREENSHOTS=1). */
export async function screenshot(page: Page, name: string): Promise<void> {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOCS, { recursive: true });
    copyFileSync(file, join(DOCS, `${name}.png`));
  }
}

/** Signs in on the login page as a user would: the form, then the page it leads to. */
export async function signInWithBrowser(
  page: Page,
  base: string,
  user: { email: string; password: string },
): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
}
