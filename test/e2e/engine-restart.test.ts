// After a restart with nothing changed: zero Vault writes and zero Vault data reads, counted by OpenBao's
// audit log. The sync record lives in VaultSync status (docs/adr/0001-sync-state-in-vaultsync-status.md).
import { freshNamespace, kubeClients } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';
import { auditMark, isDataRead, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

const { apps } = kubeClients();

test('a restarted operator with nothing changed makes zero writes and zero data reads', async () => {
  const ns = await freshNamespace('restart');
  const first = await runOperator([ns]);
  for (let i = 0; i < 5; i++) {
    await createSecret(ns, `s${i}`, { value: `v${i}` });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, `app${i}`, { 'vault-sync.io/path': `secret/${ns}/app${i}` }, [`s${i}`]) });
  }
  await createSecret(ns, 'own', { value: 'x' }, { 'vault-sync.io/path': `secret/${ns}/own` });
  for (let i = 0; i < 5; i++) await waitForVault(`${ns}/app${i}/s${i}`);
  await waitForVault(`${ns}/own`);
  await first.stop();

  const mark = auditMark();
  const second = await runOperator([ns]);
  // Proof that the restarted operator went through its whole initial list: a new source gets synced.
  await createSecret(ns, 'after-restart', { value: 'y' }, { 'vault-sync.io/path': `secret/${ns}/after-restart` });
  await waitForVault(`${ns}/after-restart`);
  await second.stop();

  const requests = kvRequestsSince(mark, ns).filter((r) => !r.path.includes(`${ns}/after-restart`));
  expect(requests.filter(isWrite)).toEqual([]);
  expect(requests.filter(isDataRead)).toEqual([]);
  expect(requests).toEqual([]); // not even a metadata read: the VaultSync status answered every question
});
