// The dashboard at `/` in real headless Chromium (Debian's, driven by playwright-core), on an operator that
// has synced something; the screenshot is kept in test-artifacts/dashboard.png (git-ignored).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Supervisor } from '../../src/supervisor.js';
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { repoRoot, tools } from './helpers/ops.js';
import { runSupervised } from './helpers/supervised.js';

const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let supervisor: Supervisor;
let browser: Browser;
let namespace: string;

beforeAll(async () => {
  const executablePath = tools.chromium(); // fails loudly when missing
  namespace = await freshNamespace('ops-dashboard');
  supervisor = await runSupervised([namespace]);
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS });
});
afterAll(async () => {
  await browser?.close();
  await supervisor?.stop();
});

test('the dashboard shows health, syncs, errors, rate-limit use and the queue, and refreshes itself every 30 s', async () => {
  const { apps } = kubeClients();
  await createSecret(namespace, 'db', { user: 'app', password: 'dashboard-pw' });
  await createSecret(namespace, 'api', { key: 'k' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db', 'api']) });
  // One refused source (outside the namespace's prefix), so the page has something to say about it.
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'stray', { 'vault-sync.io/path': 'secret/somewhere-else/app' }, ['db']) });
  await waitForVault(`${namespace}/web/db`);
  await waitForVault(`${namespace}/web/api`);
  await waitFor(async () => (await supervisor.metrics.syncOperations.get()).values.some((v) => v.labels.result === 'refused' && v.value > 0), { description: 'the stray Deployment refused' });

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const response = await page.goto(`${supervisor.server!.url}/`);
  expect(response?.status()).toBe(200);
  expect(await page.title()).toContain('vault-sync-operator');
  expect(await page.locator('meta[http-equiv="refresh"]').getAttribute('content')).toBe('30');
  await expect(page.locator('#status').innerText()).resolves.toBe('Healthy · syncing (no leader election)');
  const card = (id: string) => page.locator(`[data-metric="${id}"] .value`).innerText();
  expect(Number((await card('total_syncs')).replace(/,/g, ''))).toBeGreaterThanOrEqual(2);
  expect(await card('error_rate')).toMatch(/^\d+(\.\d+)? %$/);
  expect(await card('queue_depth')).toMatch(/^\d+$/);
  expect(Number((await card('vault_requests')).replace(/,/g, ''))).toBeGreaterThan(0);
  await expect(page.locator('#rate-limit').innerText()).resolves.toContain('10 req/s · 20');
  await expect(page.locator('#syncs').innerText()).resolves.toMatch(/refused\s+[1-9]/);
  await expect(page.locator('#checks').innerText()).resolves.toMatch(/vault-authenticated\s+ok/);
  // Laid out as designed: the eight cards fit the first screen.
  const box = await page.locator('[data-metric="event_loop_lag"]').boundingBox();
  expect(box && box.y + box.height).toBeLessThan(900);

  mkdirSync(join(repoRoot, 'test-artifacts'), { recursive: true });
  const screenshot = join(repoRoot, 'test-artifacts', 'dashboard.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  process.stderr.write(`[ops-dashboard] screenshot: ${screenshot}\n`);

  // The page reloads itself after 30 s (meta refresh) and shows fresh numbers.
  const renderedAt = async () => Date.parse(/Rendered (\S+);/.exec(await page.locator('footer').innerText())![1]);
  const first = await renderedAt();
  await page.waitForEvent('load', { timeout: 40_000 });
  const second = await renderedAt();
  expect(second - first).toBeGreaterThanOrEqual(29_000);
  expect(second - first).toBeLessThan(36_000);
  await page.close();
}, 90_000);
