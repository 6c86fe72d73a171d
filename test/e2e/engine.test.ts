// The annotation contract row by row, end to end: real apiserver, real OpenBao, the real operator.
import { CustomObjectsApi, type V1Deployment, type V1PodSpec } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { mergePatch, vaultRead, waitForEvent, waitForVault } from './helpers/objects.js';
import { runOperator, type TestOperator } from './helpers/operator.js';
import { auditMark, isDataRead, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

const { kc, core, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);
let ns: string;
let operator: TestOperator;

beforeAll(async () => {
  ns = await freshNamespace('engine');
  operator = await runOperator([ns]);
});
afterAll(async () => operator?.stop());

const podSpec = (spec: Partial<V1PodSpec>): V1PodSpec => ({ containers: [{ name: 'app', image: 'example/app:1' }], ...spec });
function deployment(name: string, annotations: Record<string, string>, spec: Partial<V1PodSpec>): V1Deployment {
  return {
    metadata: { name, namespace: ns, annotations },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: podSpec(spec) } },
  };
}
const envFrom = (...names: string[]): Partial<V1PodSpec> => ({ containers: [{ name: 'app', image: 'example/app:1', envFrom: names.map((name) => ({ secretRef: { name } })) }] });
async function secret(name: string, stringData: Record<string, string>, annotations?: Record<string, string>) {
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name, namespace: ns, annotations }, stringData } });
}
const waitVault = waitForVault;
async function vaultSync(name: string) {
  return custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace: ns, plural: 'vaultsyncs', name }).catch(() => undefined);
}
const waitEvent = (objectName: string, reason: string) => waitForEvent(ns, objectName, reason);

test('an explicit secrets list merges chosen keys with prefixes into ONE write at the path', async () => {
  await secret('db', { user: 'u1', pass: 'p1', unused: 'x' });
  await secret('api', { token: 't1' });
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: deployment('merged', { 'vault-sync.io/path': `secret/${ns}/merged`, 'vault-sync.io/secrets': '[{"name":"db","keys":["user","pass"],"prefix":"db_"},{"name":"api"}]' }, {}),
  });
  const d = await waitVault(`${ns}/merged`);
  expect(d.data).toEqual({ db_user: 'u1', db_pass: 'p1', token: 't1' });
  expect(d.metadata.version).toBe(1);
});

test('auto-discovery covers initContainers, projected volumes and secret volumes; a missing optional Secret is no error', async () => {
  await secret('init-only', { i: '1' });
  await secret('projected-one', { p: '2' });
  await secret('volume-one', { v: '3' });
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: deployment('discovery', { 'vault-sync.io/path': `secret/${ns}/discovery` }, {
      initContainers: [{ name: 'init', image: 'x', envFrom: [{ secretRef: { name: 'init-only' } }] }],
      containers: [{ name: 'app', image: 'x', env: [{ name: 'O', valueFrom: { secretKeyRef: { name: 'not-there', key: 'k', optional: true } } }] }],
      volumes: [
        { name: 'p', projected: { sources: [{ secret: { name: 'projected-one' } }] } },
        { name: 'v', secret: { secretName: 'volume-one' } },
      ],
    }),
  });
  await waitVault(`${ns}/discovery/init-only`);
  await waitVault(`${ns}/discovery/projected-one`);
  await waitVault(`${ns}/discovery/volume-one`);
  const record = await waitFor(async () => {
    const vs = (await vaultSync('deployment-discovery')) as any;
    return vs?.status?.conditions?.[0]?.status === 'True' ? vs : undefined;
  }, { timeoutMs: 20000, description: 'a Ready VaultSync for the discovery Deployment' });
  expect(record.status.entries.map((e: { path: string }) => e.path).sort()).toEqual([`secret/${ns}/discovery/init-only`, `secret/${ns}/discovery/projected-one`, `secret/${ns}/discovery/volume-one`]);
  expect((await vaultHttp(`secret/metadata/${ns}/discovery/not-there`)).status).toBe(404);
});

test('one Secret change re-syncs every Deployment that uses it', async () => {
  await secret('shared', { k: 'v1' });
  for (const name of ['user-a', 'user-b']) {
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(name, { 'vault-sync.io/path': `secret/${ns}/${name}` }, envFrom('shared')) });
    await waitVault(`${ns}/${name}/shared`);
  }
  await core.patchNamespacedSecret({ namespace: ns, name: 'shared', body: { stringData: { k: 'v2' } } }, mergePatch);
  for (const name of ['user-a', 'user-b']) await waitVault(`${ns}/${name}/shared`, (d) => d.data.k === 'v2', `${name} to follow the change`);
});

test('a Secret label edit and a Deployment scale cause zero Vault requests; VaultSync shows path, hash, version', async () => {
  await secret('quiet', { k: 'v' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('quiet', { 'vault-sync.io/path': `secret/${ns}/quiet` }, envFrom('quiet')) });
  await waitVault(`${ns}/quiet/quiet`);
  const record = await waitFor(async () => ((await vaultSync('deployment-quiet')) as any)?.status?.vaultVersion === 1 && (await vaultSync('deployment-quiet')), { timeoutMs: 20000, description: 'the VaultSync record' }) as any;
  expect(record.spec).toMatchObject({ source: { kind: 'Deployment', name: 'quiet' }, path: `secret/${ns}/quiet` });
  expect(record.status.shortHash).toMatch(/^[0-9a-f]{12}$/);
  expect(record.status.entries[0].hash).toMatch(/^hmac-sha256:/);

  const mark = auditMark();
  await core.patchNamespacedSecret({ namespace: ns, name: 'quiet', body: { metadata: { labels: { edited: 'yes' } } } }, mergePatch);
  await apps.patchNamespacedDeployment({ namespace: ns, name: 'quiet', body: { spec: { replicas: 3 } } }, mergePatch);
  // A later change that does reach Vault proves the two edits above were processed first.
  await secret('quiet-marker', { m: '1' }, { 'vault-sync.io/path': `secret/${ns}/quiet-marker` });
  await waitVault(`${ns}/quiet-marker`);
  expect(kvRequestsSince(mark, `${ns}/quiet/`)).toEqual([]);
});

test('binary values round-trip as base64 with a marker in custom_metadata', async () => {
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'binary', namespace: ns, annotations: { 'vault-sync.io/path': `secret/${ns}/binary` } }, data: { blob: Buffer.from([0xff, 0xfe, 0x00, 0x01]).toString('base64'), text: Buffer.from('plain').toString('base64') } },
  });
  const d = await waitVault(`${ns}/binary`);
  expect(d.data).toEqual({ blob: '//4AAQ==', text: 'plain' });
  const meta = await vaultHttp(`secret/metadata/${ns}/binary`);
  expect(meta.json.data.custom_metadata['base64-keys']).toBe('blob');
  expect(Buffer.from(d.data.blob, 'base64')).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0x01]));
});

test('suspend pauses writes; force-sync writes once although nothing changed; rotation-check disabled writes on every reconcile', async () => {
  await secret('controls', { k: 'v1' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('controls', { 'vault-sync.io/path': `secret/${ns}/controls` }, envFrom('controls')) });
  await waitVault(`${ns}/controls/controls`);

  await apps.patchNamespacedDeployment({ namespace: ns, name: 'controls', body: { metadata: { annotations: { 'vault-sync.io/suspend': 'true' } } } }, mergePatch);
  await waitFor(async () => ((await vaultSync('deployment-controls')) as any)?.status?.conditions?.[0]?.reason === 'Suspended', { timeoutMs: 20000, description: 'a Suspended condition' });
  await core.patchNamespacedSecret({ namespace: ns, name: 'controls', body: { stringData: { k: 'v2' } } }, mergePatch);
  await secret('controls-marker', { m: '1' }, { 'vault-sync.io/path': `secret/${ns}/controls-marker` });
  await waitVault(`${ns}/controls-marker`);
  expect((await vaultRead(`${ns}/controls/controls`))?.data.k).toBe('v1');

  await apps.patchNamespacedDeployment({ namespace: ns, name: 'controls', body: { metadata: { annotations: { 'vault-sync.io/suspend': null } } } }, mergePatch);
  await waitVault(`${ns}/controls/controls`, (d) => d.data.k === 'v2' && d.metadata.version === 2, 'the change after resume');

  await apps.patchNamespacedDeployment({ namespace: ns, name: 'controls', body: { metadata: { annotations: { 'vault-sync.io/force-sync': '1' } } } }, mergePatch);
  await waitVault(`${ns}/controls/controls`, (d) => d.metadata.version === 3, 'one forced write');

  await apps.patchNamespacedDeployment({ namespace: ns, name: 'controls', body: { metadata: { annotations: { 'vault-sync.io/rotation-check': 'disabled' } } } }, mergePatch);
  await waitVault(`${ns}/controls/controls`, (d) => d.metadata.version === 4, 'a write with change detection off');
  await apps.patchNamespacedDeployment({ namespace: ns, name: 'controls', body: { metadata: { labels: { poke: '1' } } } }, mergePatch);
  await waitVault(`${ns}/controls/controls`, (d) => d.metadata.version === 5, 'another write on the next reconcile');
});

test('a path that someone else owns is refused, and left as it was', async () => {
  await vaultHttp(`secret/data/${ns}/taken/db`, { body: { data: { owner: 'a-human' } } });
  await secret('db-taken', { k: 'v' });
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: deployment('taken', { 'vault-sync.io/path': `secret/${ns}/taken`, 'vault-sync.io/secrets': '[{"name":"db-taken"}]' }, {}),
  });
  await vaultHttp(`secret/data/${ns}/taken`, { body: { data: { owner: 'someone-else' } } });
  const event = await waitEvent('taken', 'Refused');
  expect(event.message).toContain(`refusing to overwrite secret/${ns}/taken`);
  expect(event.message).toContain('not managed by this operator');
  expect((await vaultRead(`${ns}/taken`))?.data).toEqual({ owner: 'someone-else' });
});

test('drift: with vault-sync.io/reconcile an out-of-band change in Vault is restored (metadata read only)', async () => {
  await secret('drifty', { k: 'truth' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('drifty', { 'vault-sync.io/path': `secret/${ns}/drifty`, 'vault-sync.io/reconcile': '2s' }, envFrom('drifty')) });
  await waitVault(`${ns}/drifty/drifty`);
  await vaultHttp(`secret/data/${ns}/drifty/drifty`, { body: { data: { k: 'tampered' } } });
  const mark = auditMark();
  await waitVault(`${ns}/drifty/drifty`, (d) => d.data.k === 'truth' && d.metadata.version === 3, 'the value restored');
  await waitEvent('drifty', 'DriftCorrected');
  expect(kvRequestsSince(mark, `${ns}/drifty/`).filter(isDataRead)).toEqual([]);
});

test('removing the path annotation deletes the Vault data and the finalizer', async () => {
  await secret('unannotate', { k: 'v' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('unannotate', { 'vault-sync.io/path': `secret/${ns}/unannotate` }, envFrom('unannotate')) });
  await waitVault(`${ns}/unannotate/unannotate`);
  await apps.patchNamespacedDeployment({ namespace: ns, name: 'unannotate', body: { metadata: { annotations: { 'vault-sync.io/path': null } } } }, mergePatch);
  await waitFor(async () => (await vaultHttp(`secret/metadata/${ns}/unannotate/unannotate`)).status === 404, { timeoutMs: 20000, description: 'the data deleted' });
  await waitFor(async () => !(await apps.readNamespacedDeployment({ namespace: ns, name: 'unannotate' })).metadata?.finalizers?.includes('vault-sync.io/finalizer'), { timeoutMs: 20000, description: 'the finalizer removed' });
  await waitEvent('unannotate', 'Deleted');
});

test('tenancy: a path outside the namespace prefix is refused until a VaultSyncPolicy grants it', async () => {
  await secret('tenant', { k: 'v' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('tenant', { 'vault-sync.io/path': `secret/shared-${ns}/app` }, envFrom('tenant')) });
  const refused = await waitEvent('tenant', 'Refused');
  expect(refused.message).toContain(`outside what namespace "${ns}" may write to (secret/${ns}/)`);
  expect((await vaultHttp(`secret/metadata/shared-${ns}/app/tenant`)).status).toBe(404);

  await custom.createClusterCustomObject({
    group: 'vault-sync.io', version: 'v1alpha1', plural: 'vaultsyncpolicies',
    body: { apiVersion: 'vault-sync.io/v1alpha1', kind: 'VaultSyncPolicy', metadata: { name: `grant-${ns}` }, spec: { namespaces: [ns], allowedPathPrefixes: [`secret/shared-${ns}/`] } },
  });
  await waitVault(`shared-${ns}/app/tenant`);
});
