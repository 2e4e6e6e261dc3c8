import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { startRole } from '../../roles/index.ts';
import { sampleBatch } from '../helpers/batch-samples.ts';
import { testConfig } from '../helpers/env.ts';
import { ensureExecInit } from '../helpers/exec-init.ts';
import { leakCheck } from '../helpers/leak-check.ts';
import { buildLocalImage } from '../helpers/local-images.ts';

/*
 * Issue 14's "done means", in a real browser: Debian's chromium driven by playwright-core
 * (never a downloaded browser) against `dockhand all` listening on a free port with API_KEYS
 * set. Types the key, deploys and invokes a function, runs a sweep and applies a size from its
 * chart, runs an exec request and downloads its output file, drops a batch and reads its
 * score card, and sees this machine as an online node. Every page is screenshotted at
 * 1280×800 and 390 wide, checked by axe-core (no serious or critical violation), and the
 * browser's console must stay free of errors (CSP refusals included).
 */

const CHROMIUM = '/usr/bin/chromium';

// What the functions given to page.evaluate use: they run in the browser, and the root
// tsconfig has no DOM library (declared here, module-local, so server code cannot lean on it).
interface Box {
  right: number;
}
interface El {
  tagName: string;
  className: string;
  parentElement: El | null;
  getBoundingClientRect(): Box;
}
interface AxeResult {
  violations: Array<{ id: string; impact: string; help: string; nodes: unknown[] }>;
}
declare const window: { innerWidth: number; axe: { run(ctx: unknown, o: object): Promise<AxeResult> } };
declare const document: {
  documentElement: { scrollWidth: number };
  cookie: string;
  querySelectorAll(s: string): Iterable<El>;
};
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: object;
if (!existsSync(CHROMIUM)) {
  t.plan(
    0,
    `${CHROMIUM} is missing: install Debian's chromium (scripts/prepare.sh does) to run the console test.`,
  );
  process.exit(0);
}

leakCheck(t);
const { chromium } = await import('playwright-core');
const ROOT = path.resolve(import.meta.dirname, '../..');
const ARTIFACTS = path.join(ROOT, '.build/test-artifacts/console');
mkdirSync(ARTIFACTS, { recursive: true });
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const KEY = 'console-e2e-key';
const LONG = 180_000;

// The page under test is the one prepare builds; built here too, so the test runs on its own.
execFileSync('bash', [path.join(ROOT, 'scripts/build-console.sh')], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
ensureExecInit();
const CP_IMAGE = buildLocalImage({ tag: 'dockhand-test-console-cp:local', binaries: ['/bin/cp'] });

const config = testConfig(t, {
  PORT: '0',
  API_KEYS: KEY,
  HEARTBEAT_INTERVAL: '1',
});
const running = await startRole('all', config, { listen: true });
t.teardown(() => running.close());
const base = running.url as string;

const browser: Browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
  ],
});
t.teardown(() => browser.close());
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(60_000);
const consoleErrors: string[] = [];
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});
page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));

/** Screenshots at both widths and an axe-core run; the page is left at 1280×800. */
async function inspect(t: Test, page: Page, name: string) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-1280.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-390.png`), fullPage: true });
  // Nothing may be wider than the window at 390 px (tables scroll inside their own box).
  const overflow = await page.evaluate(() => {
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
      // The outermost too-wide element: the one to fix.
      .filter((el) => (el.parentElement?.getBoundingClientRect().right ?? 0) <= window.innerWidth + 1)
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
    return { px: document.documentElement.scrollWidth - window.innerWidth, wide };
  });
  t.ok(overflow.px <= 1, `${name}: no sideways scrolling at 390 px`, overflow);
  await page.setViewportSize({ width: 1280, height: 800 });
  // Evaluated through the debugger, not a <script>: the page's CSP stays as it is.
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.length,
    }));
  });
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  t.same(serious, [], `${name}: no serious or critical accessibility violations`);
  if (violations.length > serious.length)
    t.comment(`${name}: minor axe findings ${JSON.stringify(violations)}`);
}

const nav = (label: string) =>
  page.getByRole('navigation').getByRole('link', { name: label, exact: true }).click();

t.test('the static files are public, strict and cacheable; the API behind them is not', async (t) => {
  const index = await fetch(`${base}/console/`);
  t.equal(index.status, 200);
  t.match(index.headers.get('content-security-policy'), /default-src 'self'/);
  t.notMatch(index.headers.get('content-security-policy'), /unsafe-inline|unsafe-eval/);
  t.equal(index.headers.get('x-content-type-options'), 'nosniff');
  t.equal(index.headers.get('cache-control'), 'no-cache');
  const html = await index.text();
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  const asset = html.match(/\/console\/assets\/[^"]+\.js/)?.[0] as string;
  const js = await fetch(`${base}${asset}`);
  t.equal(js.status, 200);
  t.match(js.headers.get('cache-control'), /immutable/);
  await js.arrayBuffer();
  const api = await fetch(`${base}/queues`);
  t.equal(api.status, 401, 'the API still needs the key');
  await api.arrayBuffer();
  t.same(await (await fetch(`${base}/console/settings.json`)).json(), { keyRequired: true });
});

t.test('a new user does it all from the console', async (t) => {
  await page.goto(`${base}/console/`);
  // The key prompt, before any call is made.
  await page.getByLabel('API key', { exact: true }).fill(KEY);
  await inspect(t, page, '00-key');
  await page.getByRole('button', { name: 'Use this key' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  await page
    .getByRole('cell', { name: 'functions' })
    .or(page.getByRole('rowheader', { name: 'functions' }))
    .first()
    .waitFor();
  t.notMatch(page.url(), KEY, 'the key is not in the URL');
  await inspect(t, page, '01-overview');

  // Deploy and invoke.
  await nav('Functions');
  await page.getByLabel('Name', { exact: true }).fill('hello-console');
  await page.getByRole('button', { name: 'Deploy' }).click();
  await page.getByRole('heading', { name: 'hello-console', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Invoke', exact: true }).click();
  const result = page.getByTestId('invocation-result').first();
  await result.getByText('SUCCESS').waitFor({ timeout: LONG });
  t.match(await result.textContent(), /"hello": "Dockhand"/, 'the result shows what the function returned');
  t.match(await result.textContent(), /cold|warm/);
  t.match(await result.textContent(), /got \{"name":"Dockhand"\}/, 'and its logs');

  // A small sweep, its chart, and a size applied from it.
  await page.getByLabel('Memory sizes (MB)').fill('128, 256');
  await page.getByLabel('Runs per size').fill('1');
  await page.getByRole('button', { name: 'Run sweep' }).click();
  const sweep = page.getByTestId('sweep-result');
  await sweep.waitFor({ timeout: LONG });
  await sweep.locator('canvas').first().waitFor();
  const sweepText = await sweep.textContent();
  t.match(sweepText, /Pick: /, 'the pick is named');
  t.match(sweepText, /\$[0-9.]+ \/ 1M/, 'cost per million invocations, readable');
  t.notMatch(sweepText, /e-\d/, 'no exponent notation');
  t.match(sweepText, /cost per 1M\s+invocations \(USD\)/, 'the cost axis is named');
  t.match(sweepText, /memory \(MB\)/, 'the memory axis is named');
  await sweep
    .getByRole('region', { name: 'Sweep points, table' })
    .getByRole('button', { name: 'Use 256 MB' })
    .click();
  await page.getByText('Memory set to 256 MB').waitFor();
  await inspect(t, page, '02-function');

  // An exec request and its output file.
  await nav('Exec runs');
  const request = {
    container: {
      image: CP_IMAGE,
      command: ['/bin/cp', '/workspace/input/hello.txt', '/workspace/output/result.txt'],
    },
    input: { files: [{ name: 'hello.txt', content: 'hello from the console\n' }] },
    output: { expected_files: ['result.txt'], return_logs: true },
    timeout: 60,
  };
  await page.getByLabel(/Exec request/).fill(JSON.stringify(request, null, 2));
  await page.getByRole('button', { name: 'Submit' }).click();
  const download = page.getByRole('link', { name: 'Download result.txt' });
  await download.waitFor({ timeout: LONG });
  const [file] = await Promise.all([page.waitForEvent('download'), download.click()]);
  t.equal(readFileSync(await file.path(), 'utf8'), 'hello from the console\n', 'the output file downloads');
  await page.getByTestId('exec-result').getByText('succeeded').first().waitFor();
  await inspect(t, page, '03-exec');

  // A batch dropped as files, and its score card.
  await nav('Batches');
  await page.getByLabel('Batch name', { exact: true }).fill('console-batch');
  await page.getByLabel('Metric files', { exact: true }).setInputFiles(
    Object.entries(sampleBatch()).map(([name, value]) => ({
      name,
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(value)),
    })),
  );
  await page.getByRole('button', { name: 'Create and score' }).click();
  const card = page.getByTestId('score-card');
  await card.waitFor({ timeout: LONG });
  const cardText = await card.textContent();
  t.match(cardText, /overall \(0–5\)/);
  t.match(cardText, /lb\.performance/, 'per-metric cards');
  t.match(cardText, /reliability/, 'per-category scores');
  await inspect(t, page, '04-batches');

  // This machine, online.
  await nav('Nodes');
  const node = page.locator(`article[data-node-name="${os.hostname()}"]`);
  await node.getByText('online', { exact: true }).waitFor({ timeout: LONG });
  t.match(await node.textContent(), /CPUs/);
  await inspect(t, page, '05-nodes');

  await nav('Dead letters');
  await page.getByRole('heading', { name: 'Dead letters', level: 1 }).waitFor();
  await inspect(t, page, '06-dead-letters');

  // The key stayed in session storage, never in local storage or a cookie.
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('dockhand.apiKey'),
    local: Object.keys(localStorage).length,
    cookie: document.cookie,
  }));
  t.same(stored, { session: KEY, local: 0, cookie: '' });
  t.same(consoleErrors, [], 'no errors in the browser console');
});
