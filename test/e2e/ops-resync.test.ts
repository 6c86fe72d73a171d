// The periodic resync (the heartbeat of /health): every synced source is re-checked, at no Vault cost when
// nothing changed.
import type { Supervisor } from '../../src/supervisor.js';
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { sumMetric } from './helpers/ops.js';
import { runSupervised } from './helpers/supervised.js';

let supervisor: Supervisor;
afterAll(async () => supervisor?.stop());

test('a resync re-checks every synced source without a single Vault call, and keeps the heartbeat fresh', async () => {
  const namespace = await freshNamespace('ops-resync');
  supervisor = await runSupervised([namespace], ['--resync-interval=1s']);
  const { apps } = kubeClients();
  await createSecret(namespace, 'db', { password: 'resync' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db']) });
  await waitForVault(`${namespace}/web/db`);
  const metrics = async () => supervisor.metrics.registry.metrics();
  // The first sync is complete once it is counted (its status and Event come after the Vault write).
  await waitFor(async () => sumMetric(await metrics(), 'vault_sync_operations_total', { result: 'synced' }) === 1, { description: 'the first sync counted' });
  const before = await metrics();
  const unchangedBefore = sumMetric(before, 'vault_sync_operations_total', { result: 'unchanged' });
  const vaultBefore = sumMetric(before, 'vault_rate_limit_requests_total');

  await waitFor(async () => sumMetric(await metrics(), 'vault_sync_operations_total', { result: 'unchanged' }) >= unchangedBefore + 3, {
    timeoutMs: 10_000,
    description: 'three resync rounds (unchanged reconciles)',
  });
  const after = await metrics();
  expect(sumMetric(after, 'vault_rate_limit_requests_total')).toBe(vaultBefore); // not one Vault call
  expect(sumMetric(after, 'vault_sync_operations_total', { result: 'synced' })).toBe(sumMetric(before, 'vault_sync_operations_total', { result: 'synced' }));
  const health = await (await fetch(`${supervisor.server!.url}/health`)).json() as { heartbeat_healthy: boolean; healthy: boolean; heartbeat: string };
  expect(health).toMatchObject({ healthy: true, heartbeat_healthy: true });
  expect(Date.now() - Date.parse(health.heartbeat)).toBeLessThan(3 * 1000 + 5000); // beats at least every sampling period
});
