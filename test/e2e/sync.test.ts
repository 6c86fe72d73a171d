// The first vertical slice, end to end against a real kube-apiserver and a real OpenBao:
// annotated Deployment (and Secret) → Vault KV v2, updates, deletion with the finalizer, preserve-on-delete.
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret as createSecretIn, deploymentUsing, mergePatch, vaultRead } from './helpers/objects.js';
import { runOperator, type TestOperator } from './helpers/operator.js';

const { core, apps } = kubeClients();
let namespace: string;
let operator: TestOperator;

beforeAll(async () => {
  namespace = await freshNamespace('sync');
  operator = await runOperator([namespace]);
});
afterAll(async () => {
  await operator?.stop();
});

const deployment = (name: string, annotations: Record<string, string>, secretNames: string[]) => deploymentUsing(namespace, name, annotations, secretNames);
const createSecret = (name: string, data: Record<string, string>, annotations?: Record<string, string>) => createSecretIn(namespace, name, data, annotations);
const vaultData = vaultRead;
async function vaultMetadataStatus(path: string) {
  return (await vaultHttp(`secret/metadata/${path}`)).status;
}

test('the Secrets an annotated Deployment uses land in Vault at <path>/<secretName>, marked as ours', async () => {
  await createSecret('db', { username: 'app', password: 's3cr3t-e2e' });
  await createSecret('unrelated', { x: 'y' });
  await apps.createNamespacedDeployment({ namespace, body: deployment('web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db']) });

  const synced = await waitFor(() => vaultData(`${namespace}/web/db`), { timeoutMs: 20000, description: 'the db Secret in Vault' });
  expect(synced.data).toEqual({ username: 'app', password: 's3cr3t-e2e' });

  const meta = await vaultHttp(`secret/metadata/${namespace}/web/db`);
  expect(meta.json.data.custom_metadata).toMatchObject({
    'managed-by': 'vault-sync-operator',
    'source-kind': 'Deployment',
    'source-namespace': namespace,
    'source-name': 'web',
  });
  // Only what the pod template references is synced.
  expect(await vaultMetadataStatus(`${namespace}/web/unrelated`)).toBe(404);
  // The finalizer is on, so deletion will clean up first.
  const live = await apps.readNamespacedDeployment({ namespace, name: 'web' });
  expect(live.metadata?.finalizers).toContain('vault-sync.io/finalizer');
});

test('changing the Secret updates Vault; a label-only edit writes nothing', async () => {
  await core.patchNamespacedSecret(
    { namespace, name: 'db', body: { stringData: { password: 'rotated-e2e' } } },
    mergePatch,
  );
  const updated = await waitFor(async () => {
    const d = await vaultData(`${namespace}/web/db`);
    return d?.data.password === 'rotated-e2e' ? d : undefined;
  }, { timeoutMs: 20000, description: 'the rotated password in Vault' });
  const versionAfterChange = updated.metadata.version;
  expect(versionAfterChange).toBe(2);

  const current = await core.readNamespacedSecret({ namespace, name: 'db' });
  current.metadata = { ...current.metadata, labels: { touched: 'yes' } };
  await core.replaceNamespacedSecret({ namespace, name: 'db', body: current });
  // A later, observable change proves the label edit was processed before it.
  await createSecret('marker', { m: '1' }, { 'vault-sync.io/path': `secret/${namespace}/marker` });
  await waitFor(() => vaultData(`${namespace}/marker`), { timeoutMs: 20000, description: 'the marker Secret in Vault' });
  expect((await vaultData(`${namespace}/web/db`))?.metadata.version).toBe(versionAfterChange);
});

test('an annotated Secret writes its own keys at the path itself', async () => {
  await createSecret('standalone', { token: 'abc' }, { 'vault-sync.io/path': `secret/data/${namespace}/standalone` });
  const synced = await waitFor(() => vaultData(`${namespace}/standalone`), { timeoutMs: 20000, description: 'the annotated Secret in Vault' });
  expect(synced.data).toEqual({ token: 'abc' });
});

test('deleting the Deployment deletes its Vault data, then releases the finalizer', async () => {
  await createSecret('temp', { k: 'v' });
  await apps.createNamespacedDeployment({ namespace, body: deployment('short-lived', { 'vault-sync.io/path': `secret/${namespace}/short-lived` }, ['temp']) });
  await waitFor(() => vaultData(`${namespace}/short-lived/temp`), { timeoutMs: 20000, description: 'the temp Secret in Vault' });

  await apps.deleteNamespacedDeployment({ namespace, name: 'short-lived' });
  await waitFor(async () => (await vaultMetadataStatus(`${namespace}/short-lived/temp`)) === 404, { timeoutMs: 20000, description: 'the Vault data to be deleted' });
  await waitFor(
    async () => apps.readNamespacedDeployment({ namespace, name: 'short-lived' }).then(() => false, (e) => e.code === 404),
    { timeoutMs: 20000, description: 'the Deployment to be gone (finalizer released)' },
  );
});

test('with preserve-on-delete the Vault data stays after the Deployment is deleted', async () => {
  await createSecret('keep', { k: 'kept' });
  await apps.createNamespacedDeployment({
    namespace,
    body: deployment('keeper', { 'vault-sync.io/path': `secret/${namespace}/keeper`, 'vault-sync.io/preserve-on-delete': 'true' }, ['keep']),
  });
  await waitFor(() => vaultData(`${namespace}/keeper/keep`), { timeoutMs: 20000, description: 'the keep Secret in Vault' });

  await apps.deleteNamespacedDeployment({ namespace, name: 'keeper' });
  await waitFor(
    async () => apps.readNamespacedDeployment({ namespace, name: 'keeper' }).then(() => false, (e) => e.code === 404),
    { timeoutMs: 20000, description: 'the Deployment to be gone (finalizer released)' },
  );
  expect((await vaultData(`${namespace}/keeper/keep`))?.data).toEqual({ k: 'kept' });
});
