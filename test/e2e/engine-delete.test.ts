// Deletion policies, and a Vault that stays down during deletion: bounded retries, then the finalizer goes
// with an Event that says what was left behind (a namespace deletion is never blocked forever).
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForEvent, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';
import { startPrivateVault } from './helpers/private-vault.js';
import { createLogger } from '../../src/observability/logger.js';
import { loadConfig } from '../../src/config.js';
import { startOperator } from '../../src/operator.js';
import { loadTestEnv } from './helpers/env.js';

const { apps } = kubeClients();
const gone = (namespace: string, name: string) => apps.readNamespacedDeployment({ namespace, name }).then(() => false, (e) => e.code === 404);

test('delete policy latest-version soft-deletes the latest version and keeps the history', async () => {
  const ns = await freshNamespace('delete-latest');
  const operator = await runOperator([ns], ['--delete-policy=latest-version']);
  try {
    await createSecret(ns, 'kept-history', { k: 'v' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'app', { 'vault-sync.io/path': `secret/${ns}/app` }, ['kept-history']) });
    await waitForVault(`${ns}/app/kept-history`);
    await apps.deleteNamespacedDeployment({ namespace: ns, name: 'app' });
    await waitFor(() => gone(ns, 'app'), { timeoutMs: 20000, description: 'the Deployment gone' });
    const meta = await vaultHttp(`secret/metadata/${ns}/app/kept-history`);
    expect(meta.status).toBe(200);
    expect(meta.json.data.versions['1'].deletion_time).not.toBe('');
    expect((await vaultHttp(`secret/data/${ns}/app/kept-history`)).status).toBe(404);
  } finally {
    await operator.stop();
  }
});

test('a Vault that stays down does not hold a deletion forever: after the cleanup timeout the finalizer goes, with a DataLeftBehind Event', async () => {
  const ns = await freshNamespace('delete-vault-down');
  const vault = await startPrivateVault();
  const env = loadTestEnv();
  process.env.KUBECONFIG = env.kubeconfigPath;
  const config = loadConfig(
    [`--vault-addr=${vault.addr}`, `--vault-token=${vault.rootToken}`, `--watch-namespaces=${ns}`, '--cleanup-timeout=2s', '--vault-timeout=2s', '--cluster-name=e2e'],
    {},
  );
  const operator = startOperator(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'silent'));
  try {
    await operator.ready;
    await createSecret(ns, 'stranded', { k: 'v' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'app', { 'vault-sync.io/path': `secret/${ns}/app` }, ['stranded']) });
    await waitFor(async () => (await fetch(`${vault.addr}/v1/secret/data/${ns}/app/stranded`, { headers: { 'X-Vault-Token': vault.rootToken } })).status === 200, { timeoutMs: 20000, description: 'the data in the private Vault' });

    await vault.stop(); // Vault is gone for good
    await apps.deleteNamespacedDeployment({ namespace: ns, name: 'app' });
    await waitFor(() => gone(ns, 'app'), { timeoutMs: 30000, description: 'the finalizer released after the cleanup timeout' });
    const event = await waitForEvent(ns, 'app', 'DataLeftBehind');
    expect(event.type).toBe('Warning');
    expect(event.message).toContain(`secret/${ns}/app/stranded`);
  } finally {
    await operator.stop();
    await vault.stop();
  }
});
