// KV version 1 next to version 2: the operator detects each mount's version and speaks its API. KV v1 has no
// metadata endpoint, so the ownership marks travel in the data under "custom_metadata" (as External Secrets
// does), and readers of the operator's own port never see them.
import { randomBytes } from 'node:crypto';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { runOperator } from './helpers/operator.js';
import { wholeMounts } from '../../src/vault/scope.js';
import { vaultStack } from './helpers/vault-stack.js';

const env = loadTestEnv();
let kv1: string;

beforeAll(async () => {
  kv1 = `kv1-${randomBytes(3).toString('hex')}`;
  const res = await vaultHttp(`sys/mounts/${kv1}`, { body: { type: 'kv', options: { version: '1' } } });
  expect(res.status).toBeLessThan(300);
});

const raw = async (key: string) => {
  const res = await vaultHttp(`${kv1}/${key}`);
  return res.status === 200 ? (res.json.data as Record<string, unknown>) : undefined;
};

test('the port on a KV v1 mount: data and marks in one entry; reads return the data without the marks', async () => {
  const stack = await vaultStack(['--vault-auth-method=token', `--vault-token=${env.vaultRootToken}`, `--vault-kv-mounts=secret,${kv1}`]);
  await stack.login();
  expect(stack.logs.filter((l) => l.msg === 'KV mount detected').map((l) => [l.mount, l.kvVersion])).toEqual([['secret', 2], [kv1, 1]]);
  const path = { mount: kv1, key: 'team/app' };
  const vault = stack.vault;
  const kv1Test = { scope: wholeMounts([kv1], 'an e2e test of the Vault layer') };

  expect(await vault.readMetadata(path, kv1Test)).toBeUndefined();
  await vault.writeMetadata(path, { 'managed-by': 'vault-sync-operator', 'content-hash': 'h1' }, kv1Test); // claim: nothing to write yet
  expect(await vault.writeData(path, new Map(Object.entries({ user: 'app', pass: 'p1' })), { cas: 0 }, kv1Test)).toEqual({ version: 0 });
  expect(await raw('team/app')).toEqual({ user: 'app', pass: 'p1', custom_metadata: { 'managed-by': 'vault-sync-operator', 'content-hash': 'h1' } });

  await vault.writeData(path, new Map(Object.entries({ user: 'app', pass: 'p2' })), { cas: 0 }, kv1Test); // cas has no meaning on v1
  await vault.writeMetadata(path, { 'managed-by': 'vault-sync-operator', 'content-hash': 'h2' }, kv1Test);
  expect(await vault.readData(path, kv1Test)).toEqual(new Map([['user', 'app'], ['pass', 'p2']]));
  expect(await vault.readMetadata(path, kv1Test)).toEqual({ currentVersion: 0, customMetadata: { 'managed-by': 'vault-sync-operator', 'content-hash': 'h2' } });

  await expect(vault.writeData(path, new Map(Object.entries({ custom_metadata: 'x' })), {}, kv1Test)).rejects.toThrow(/the key "custom_metadata" is reserved on a KV version 1 mount/);
  await vault.deleteAll(path, kv1Test);
  expect(await raw('team/app')).toBeUndefined();
  await stack.stop();
});

test('the operator syncs an annotated Secret to a KV v1 mount, follows a change, and cleans up on delete', async () => {
  const namespace = await freshNamespace('kv1');
  const { core } = kubeClients();
  const operator = await runOperator([namespace], ['--vault-auth-method=token', `--vault-token=${env.vaultRootToken}`, `--vault-kv-mounts=secret,${kv1}`, `--tenant-path-template=${kv1}/{namespace}/`]);
  try {
    const key = `${namespace}/app`;
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'app', namespace, annotations: { 'vault-sync.io/path': `${kv1}/${key}` } }, stringData: { token: 't1' } } });
    const first = await waitFor(async () => ((await raw(key))?.token === 't1' ? raw(key) : undefined), { timeoutMs: 20_000, description: 'the Secret in the KV v1 mount' });
    expect(first).toMatchObject({ token: 't1', custom_metadata: { 'managed-by': 'vault-sync-operator', 'source-kind': 'Secret', 'source-name': 'app' } });

    await core.patchNamespacedSecret({ namespace, name: 'app', body: { stringData: { token: 't2' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await waitFor(async () => (await raw(key))?.token === 't2', { timeoutMs: 20_000, description: 'the change in the KV v1 mount' });
    expect((await raw(key))?.custom_metadata).toMatchObject({ 'managed-by': 'vault-sync-operator' });

    await core.deleteNamespacedSecret({ namespace, name: 'app' });
    await waitFor(async () => (await raw(key)) === undefined, { timeoutMs: 20_000, description: 'the KV v1 entry to be deleted' });
  } finally {
    await operator.stop();
  }
});
