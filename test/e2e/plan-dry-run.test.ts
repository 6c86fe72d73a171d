// DRY_RUN=true: the operator plans continuously instead of writing. Against the real apiserver and OpenBao:
// the plan shows as the VaultSync condition Planned and the gauge vault_sync_planned_operations; OpenBao's
// audit log shows no write and no data read; no finalizer is added. Turned off, the same source syncs and
// the stale Planned condition goes away.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, vaultExists, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';
import { sumMetric } from './helpers/ops.js';
import { auditMark, requestsSince } from './helpers/vault-audit.js';

const { kc, apps, core } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);

interface VaultSyncStatus {
  inputFingerprint?: string;
  entries?: unknown[];
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
}
async function vaultSyncStatus(namespace: string, name: string): Promise<VaultSyncStatus | undefined> {
  try {
    return ((await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace, plural: 'vaultsyncs', name })) as { status?: VaultSyncStatus }).status;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}
const condition = (status: VaultSyncStatus | undefined, type: string) => status?.conditions?.find((c) => c.type === type);

test('DRY_RUN reports the plan as a condition, a metric and a log line, and writes nothing to Vault', async () => {
  const ns = await freshNamespace('plan-dry-run');
  await createSecret(ns, 'db', { password: 'dry-run-value' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web` }, ['db']) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'foreign', { 'vault-sync.io/path': `secret/${ns}/taken` }, ['db']) });
  expect((await vaultHttp(`secret/data/${ns}/taken/db`, { body: { data: { by: 'hand' } } })).status).toBe(200);

  const mark = auditMark();
  const logs: string[] = [];
  const operator = await runOperator([ns], ['--dry-run=true'], (line) => logs.push(line));
  try {
    const web = await waitFor(async () => condition(await vaultSyncStatus(ns, 'deployment-web'), 'Planned'), { description: 'the Planned condition of web' });
    expect(web).toMatchObject({ status: 'True', reason: 'ChangesPending', message: `not synced yet; would create secret/${ns}/web/db` });
    const foreign = await waitFor(async () => condition(await vaultSyncStatus(ns, 'deployment-foreign'), 'Planned'), { description: 'the Planned condition of foreign' });
    expect(foreign).toMatchObject({ reason: 'Refused', message: `not synced yet; would refuse secret/${ns}/taken/db (refusing to overwrite: it is not managed by this operator (adopt it with vault-sync.io/adopt: "true" or a VaultSyncPolicy's adoptPathPrefixes))` });
    const metrics = await operator.metrics.registry.metrics();
    expect(sumMetric(metrics, 'vault_sync_planned_operations', { action: 'create' })).toBe(1);
    expect(sumMetric(metrics, 'vault_sync_planned_operations', { action: 'refuse' })).toBe(1);
    expect(logs.some((l) => l.includes('DRY_RUN plan: 1 to create') && l.includes(`Deployment/${ns}/web`))).toBe(true);
    expect(logs.join('\n')).not.toContain('dry-run-value');

    // A change re-plans (the Secret→source index is kept in DRY_RUN too): still nothing written.
    await core.patchNamespacedSecret({ namespace: ns, name: 'db', body: { metadata: { annotations: { touched: 'yes' } }, stringData: { password: 'changed' } } }, mergePatch);
    await apps.patchNamespacedDeployment({ namespace: ns, name: 'foreign', body: { metadata: { annotations: { 'vault-sync.io/path': `secret/${ns}/free` } } } }, mergePatch);
    await waitFor(async () => condition(await vaultSyncStatus(ns, 'deployment-foreign'), 'Planned')?.reason === 'ChangesPending', { description: 'foreign re-planned after its path changed' });
    await waitFor(async () => sumMetric(await operator.metrics.registry.metrics(), 'vault_sync_planned_operations', { action: 'create' }) === 2, { description: 'two planned creates' });
    expect(sumMetric(await operator.metrics.registry.metrics(), 'vault_sync_planned_operations', { action: 'refuse' })).toBe(0);
  } finally {
    await operator.stop();
  }

  // Vault: the operator made no write and read no data; no finalizer; no sync recorded in the status.
  const operatorRequests = requestsSince(mark).filter((r) => !r.byRoot && r.path.includes(ns));
  expect(operatorRequests.length).toBeGreaterThan(0); // it did look (metadata) before planning
  // Metadata only: reads of a path's, or a folder's detailed listing.
  expect(operatorRequests.filter((r) => !(r.operation === 'read' && r.path.startsWith('secret/metadata/')) && !(r.operation === 'list' && r.path.startsWith('secret/detailed-metadata/')))).toEqual([]);
  expect(await vaultExists(`${ns}/web/db`)).toBe(false);
  expect(await eventsOf(ns, 'web')).toEqual([]); // a plan is reported in the VaultSync, not as Events
  expect((await apps.readNamespacedDeployment({ namespace: ns, name: 'web' })).metadata?.finalizers ?? []).toEqual([]);
  const planned = await vaultSyncStatus(ns, 'deployment-web');
  expect(planned?.inputFingerprint).toBeUndefined();
  expect(planned?.entries).toBeUndefined();

  // DRY_RUN off: the same operator syncs, and the Planned condition gives way to Ready.
  const real = await runOperator([ns]);
  try {
    await waitForVault(`${ns}/web/db`, (d) => d.data.password === 'changed');
    const status = await waitFor(async () => {
      const s = await vaultSyncStatus(ns, 'deployment-web');
      return condition(s, 'Ready')?.reason === 'Synced' ? s : undefined;
    }, { description: 'web Ready after DRY_RUN was turned off' });
    expect(condition(status, 'Planned')).toBeUndefined();
  } finally {
    await real.stop();
  }
});
