// The dashboard at `/` in real headless Chromium (Debian's, driven by playwright-core), on an operator that
// has synced something and refused two sources; the screenshot is kept in test-artifacts/dashboard.png
// (git-ignored); with VSO_UPDATE_DOCS_SCREENSHOT=1 it is also copied to docs/dashboard.png (the picture the
// README shows), so that a plain test run leaves the working tree clean.
import { copyFileSync, mkdirSync } from 'node:fs';
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

test('the dashboard shows what is wrong (sources not Ready, last refusals), the request rate, health, syncs and the queue, and refreshes itself every 30 s', async () => {
  const { apps } = kubeClients();
  await createSecret(namespace, 'db', { user: 'app', password: 'dashboard-pw' });
  await createSecret(namespace, 'api', { key: 'k' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db', 'api']) });
  // One refused source (outside the namespace's prefix), so the page has something to say about it.
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'stray', { 'vault-sync.io/path': 'secret/somewhere-else/app' }, ['db']) });
  await waitForVault(`${namespace}/web/db`);
  await waitForVault(`${namespace}/web/api`);
  // And one that names a Secret that does not exist.
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'orphan', { 'vault-sync.io/path': `secret/${namespace}/orphan` }, ['no-such-secret']) });
  await waitFor(async () => (await supervisor.metrics.syncOperations.get()).values.some((v) => v.labels.result === 'refused' && v.value > 0), { description: 'the stray Deployment refused' });
  await waitFor(() => supervisor.problems.notReadySources(10).total >= 2, { description: 'two sources not Ready' });
  // The rate plot needs two samples of the request counter (taken every 5 s).
  await waitFor(async () => /data-points="[1-9]/.test(await (await fetch(`${supervisor.server!.url}/`)).text()), { description: 'the rate plot with data points', timeoutMs: 30_000 });

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
  // What is wrong: both sources in the not-Ready table, with their reasons, and as the last refusals.
  const notReady = page.locator('#not-ready');
  await expect(notReady.locator('.count').innerText()).resolves.toBe('2');
  const strayRow = notReady.locator('tbody tr', { hasText: 'stray' });
  await expect(strayRow.isVisible()).resolves.toBe(true);
  await expect(strayRow.locator('td.reason').innerText()).resolves.toBe('OutsideTenantPrefix');
  await expect(strayRow.locator('td.msg').innerText()).resolves.toContain('secret/somewhere-else/app');
  await expect(notReady.locator('tbody tr', { hasText: 'orphan' }).locator('td.msg').innerText()).resolves.toContain('no-such-secret');
  const refusals = page.locator('#refusals tbody tr');
  await expect(refusals.count()).resolves.toBe(2);
  await expect(page.locator('#refusals tbody tr', { hasText: 'stray' }).isVisible()).resolves.toBe(true);
  // The rate plot has data points and a drawn line.
  const plot = page.locator('#rate-plot svg');
  expect(Number(await plot.getAttribute('data-points'))).toBeGreaterThan(0);
  expect((await plot.locator('polyline.line').getAttribute('points'))!.split(' ').length).toBeGreaterThanOrEqual(2);
  expect((await plot.locator('polyline.line').boundingBox())?.width).toBeGreaterThan(0);
  await expect(plot.locator('circle.dot').isVisible()).resolves.toBe(true);
  await expect(plot.locator('.limit-label').textContent()).resolves.toBe('limit 10/s');
  // Laid out as designed: the eight cards fit the first screen.
  const box = await page.locator('[data-metric="event_loop_lag"]').boundingBox();
  expect(box && box.y + box.height).toBeLessThan(900);

  // The page reloads itself after 30 s (meta refresh) and shows fresh numbers.
  const renderedAt = async () => Date.parse(/Rendered (\S+);/.exec(await page.locator('footer').innerText())![1]);
  const first = await renderedAt();
  await page.waitForEvent('load', { timeout: 40_000 });
  const second = await renderedAt();
  expect(second - first).toBeGreaterThanOrEqual(29_000);
  expect(second - first).toBeLessThan(36_000);

  // The screenshot after the refresh, when the rate plot has half a minute of samples.
  mkdirSync(join(repoRoot, 'test-artifacts'), { recursive: true });
  const screenshot = join(repoRoot, 'test-artifacts', 'dashboard.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  const updateDocs = process.env.VSO_UPDATE_DOCS_SCREENSHOT === '1';
  if (updateDocs) copyFileSync(screenshot, join(repoRoot, 'docs', 'dashboard.png'));
  process.stderr.write(`[ops-dashboard] screenshot: ${screenshot}${updateDocs ? ' (and docs/dashboard.png)' : ''}\n`);

  // Fixed, a source leaves the table (its Ready=True goes through the same store listener); its refusal stays.
  await createSecret(namespace, 'no-such-secret', { now: 'exists' });
  await waitForVault(`${namespace}/orphan/no-such-secret`);
  await waitFor(() => supervisor.problems.notReadySources(10).total === 1, { description: 'orphan Ready again' });
  await page.reload();
  await expect(page.locator('#not-ready .count').innerText()).resolves.toBe('1');
  await expect(page.locator('#not-ready tbody tr', { hasText: 'orphan' }).count()).resolves.toBe(0);
  await expect(page.locator('#refusals tbody tr', { hasText: 'orphan' }).count()).resolves.toBe(1);
  await page.close();
}, 90_000);
