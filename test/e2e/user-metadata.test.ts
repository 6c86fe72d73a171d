// vault-sync.io/custom-metadata and vault-sync.io/update-policy against the real apiserver and OpenBao, counted in
// OpenBao's audit log: the user's keys land beside the marks; a change of the annotation alone is one metadata
// write per path and no new data version; mark names are refused with a Warning (the data still synced, marks
// only); keys removed out of band come back with the drift check. IfNotExists never overwrites a changed
// Secret, and writes a path deleted out of band again only when the source asks for drift checks.
import { randomBytes } from 'node:crypto';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startOperator } from '../../src/operator.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, vaultRead, waitForVault } from './helpers/objects.js';
import { runOperator, type TestOperator } from './helpers/operator.js';
import { auditMark, isDataRead, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

const { kc, core, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);
const META = 'vault-sync.io/custom-metadata';

interface VaultSyncStatus {
  inputFingerprint?: string;
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
}

async function statusOf(namespace: string, name: string): Promise<VaultSyncStatus | undefined> {
  const object = (await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace, plural: 'vaultsyncs', name }).catch(() => undefined)) as { status?: VaultSyncStatus } | undefined;
  return object?.status;
}

/** The Ready condition once it says `message` (a sync that is complete, with this in its summary). */
function readyWith(namespace: string, name: string, message: string) {
  return waitFor(
    async () => {
      const ready = (await statusOf(namespace, name))?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'True' && ready.message?.includes(message) ? ready : undefined;
    },
    { description: `the Ready condition of ${namespace}/${name} saying "${message}"` },
  );
}

/** A completed sync of new inputs: the recorded fingerprint moved from `before` to a final one (not "syncing", "incomplete"...). */
function syncedPast(namespace: string, name: string, before: string | undefined) {
  return waitFor(
    async () => {
      const status = await statusOf(namespace, name);
      return status?.inputFingerprint && status.inputFingerprint !== before && /^[0-9a-f]{64}/.test(status.inputFingerprint) ? status : undefined;
    },
    { description: `a completed sync of ${namespace}/${name} past ${before}` },
  );
}

const customMetadataOf = async (path: string): Promise<Record<string, string>> => (await vaultHttp(`secret/metadata/${path}`)).json?.data?.custom_metadata ?? {};
const currentVersionOf = async (path: string): Promise<number> => (await vaultHttp(`secret/metadata/${path}`)).json?.data?.current_version ?? 0;
const annotate = (namespace: string, name: string, annotations: Record<string, string | null>) =>
  apps.patchNamespacedDeployment({ namespace, name, body: { metadata: { annotations } } }, mergePatch);

describe('vault-sync.io/custom-metadata', () => {
  let ns: string;
  let operator: TestOperator;
  beforeAll(async () => {
    ns = await freshNamespace('user-meta');
    operator = await runOperator([ns]);
    await createSecret(ns, 'db', { password: 'one' });
    await createSecret(ns, 'api', { token: 't-one' });
  });
  afterAll(async () => {
    await operator?.stop();
  });

  test('set with the marks at creation; a change of the annotation alone is one metadata write per path, no new data version', async () => {
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web`, [META]: '{"team":"payments","tier":"gold"}' }, ['db', 'api']) });
    for (const leaf of ['api', 'db']) await waitFor(async () => (await customMetadataOf(`${ns}/web/${leaf}`)).team === 'payments', { description: `the user keys on ${leaf}` });
    expect(await customMetadataOf(`${ns}/web/db`)).toMatchObject({ team: 'payments', tier: 'gold', 'managed-by': 'vault-sync-operator', 'source-name': 'web' });
    await readyWith(ns, 'deployment-web', '2 path(s) in sync');
    const versions = [await currentVersionOf(`${ns}/web/api`), await currentVersionOf(`${ns}/web/db`)];

    const mark = auditMark();
    await annotate(ns, 'web', { [META]: '{"team":"billing","on-call":"ops","__proto__":"kept as a key"}' });
    await readyWith(ns, 'deployment-web', 'wrote the custom_metadata of');
    const requests = kvRequestsSince(mark, `${ns}/web/`);
    expect(requests.map((r) => `${r.operation} ${r.path}`).sort()).toEqual([`update secret/metadata/${ns}/web/api`, `update secret/metadata/${ns}/web/db`]);
    expect([await currentVersionOf(`${ns}/web/api`), await currentVersionOf(`${ns}/web/db`)]).toEqual(versions);
    const metadata = await customMetadataOf(`${ns}/web/db`);
    expect(metadata).toMatchObject({ team: 'billing', 'on-call': 'ops', 'managed-by': 'vault-sync-operator' });
    expect(metadata).not.toHaveProperty('tier');
    expect(Object.hasOwn(metadata, '__proto__') && metadata['__proto__']).toBe('kept as a key');
    expect((await vaultRead(`${ns}/web/db`))!.data).toEqual({ password: 'one' });
  });

  test('a mark name is refused by name with an InvalidAnnotation Warning; the data stays synced, with the marks only', async () => {
    await createSecret(ns, 'cache', { url: 'redis://one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'shadow', { 'vault-sync.io/path': `secret/${ns}/shadow`, [META]: '{"team":"payments","managed-by":"someone-else"}' }, ['cache']) });
    const warning = await waitFor(async () => (await eventsOf(ns, 'shadow', 'InvalidAnnotation'))[0], { description: 'the InvalidAnnotation Warning on shadow' });
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain(`${META}: `);
    expect(warning.message).toContain('ownership marks');
    expect(warning.message).toContain('"managed-by"');
    expect(warning.message).toContain('synced with the ownership marks only');
    expect((await waitForVault(`${ns}/shadow/cache`)).data).toEqual({ url: 'redis://one' });
    const metadata = await customMetadataOf(`${ns}/shadow/cache`);
    expect(metadata).toMatchObject({ 'managed-by': 'vault-sync-operator', 'source-name': 'shadow' });
    expect(metadata).not.toHaveProperty('team');
  });

  test('keys removed in Vault out of band are restored by the drift check: a metadata write, no data write', async () => {
    await createSecret(ns, 'queue', { password: 'q-one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'drift', { 'vault-sync.io/path': `secret/${ns}/drift`, [META]: '{"team":"payments"}', 'vault-sync.io/reconcile': '2s' }, ['queue']) });
    await waitFor(async () => (await customMetadataOf(`${ns}/drift/queue`)).team === 'payments', { description: 'the user keys on drift/queue' });
    const version = await currentVersionOf(`${ns}/drift/queue`);
    const { team: _, ...stripped } = await customMetadataOf(`${ns}/drift/queue`);
    const mark = auditMark();
    expect((await vaultHttp(`secret/metadata/${ns}/drift/queue`, { body: { custom_metadata: stripped } })).status).toBe(204);
    expect(await customMetadataOf(`${ns}/drift/queue`)).not.toHaveProperty('team');
    await waitFor(async () => (await customMetadataOf(`${ns}/drift/queue`)).team === 'payments', { description: 'the user key restored' });
    await waitFor(async () => (await eventsOf(ns, 'drift', 'DriftCorrected'))[0], { description: 'the DriftCorrected Event' });
    const requests = kvRequestsSince(mark, `${ns}/drift/`);
    expect(requests.filter(isWrite).map((r) => r.path)).toEqual([`secret/metadata/${ns}/drift/queue`]);
    expect(requests.filter(isDataRead)).toEqual([]);
    expect(await currentVersionOf(`${ns}/drift/queue`)).toBe(version);
  });
});

describe('vault-sync.io/update-policy: IfNotExists', () => {
  let ns: string;
  let operator: TestOperator;
  beforeAll(async () => {
    ns = await freshNamespace('create-once');
    operator = await runOperator([ns]);
  });
  afterAll(async () => {
    await operator?.stop();
  });

  test('a changed Secret is never written over the seed; the status says kept: create-once', async () => {
    await createSecret(ns, 'seed', { password: 'generated-one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'gen', { 'vault-sync.io/path': `secret/${ns}/gen`, 'vault-sync.io/update-policy': 'IfNotExists' }, ['seed']) });
    await waitForVault(`${ns}/gen/seed`);
    const before = (await syncedPast(ns, 'deployment-gen', undefined)).inputFingerprint;
    // Vault-side rotation owns it from here.
    expect((await vaultHttp(`secret/data/${ns}/gen/seed`, { body: { data: { password: 'rotated-in-vault' } } })).status).toBe(200);
    const mark = auditMark();
    await core.patchNamespacedSecret({ namespace: ns, name: 'seed', body: { stringData: { password: 'generated-two' } } }, mergePatch);
    await syncedPast(ns, 'deployment-gen', before);
    await readyWith(ns, 'deployment-gen', 'kept: create-once');
    expect(kvRequestsSince(mark, `${ns}/gen/`).filter(isWrite)).toEqual([]);
    expect((await vaultRead(`${ns}/gen/seed`))!.data).toEqual({ password: 'rotated-in-vault' });
    expect(await currentVersionOf(`${ns}/gen/seed`)).toBe(2);
  });

  test('deleted out of band: written again with the Secret\'s value only when the source asks for drift checks', async () => {
    await createSecret(ns, 'checked', { password: 'c-one' });
    await createSecret(ns, 'unchecked', { password: 'u-one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'watched', { 'vault-sync.io/path': `secret/${ns}/watched`, 'vault-sync.io/update-policy': 'IfNotExists', 'vault-sync.io/reconcile': '2s' }, ['checked']) });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'unwatched', { 'vault-sync.io/path': `secret/${ns}/unwatched`, 'vault-sync.io/update-policy': 'IfNotExists' }, ['unchecked']) });
    await waitForVault(`${ns}/watched/checked`);
    await waitForVault(`${ns}/unwatched/unchecked`);
    const before = (await syncedPast(ns, 'deployment-unwatched', undefined)).inputFingerprint;
    await core.patchNamespacedSecret({ namespace: ns, name: 'checked', body: { stringData: { password: 'c-two' } } }, mergePatch);

    // With drift checks: a soft-deleted latest version is no live version, so the Secret's value now is written.
    expect((await vaultHttp(`secret/data/${ns}/watched/checked`, { method: 'DELETE' })).status).toBe(204);
    expect((await waitForVault(`${ns}/watched/checked`, undefined, 'the watched path written again')).data).toEqual({ password: 'c-two' });

    // Without: the path stays gone, also across a reconcile of new inputs.
    expect((await vaultHttp(`secret/metadata/${ns}/unwatched/unchecked`, { method: 'DELETE' })).status).toBe(204);
    const mark = auditMark();
    await core.patchNamespacedSecret({ namespace: ns, name: 'unchecked', body: { stringData: { password: 'u-two' } } }, mergePatch);
    await syncedPast(ns, 'deployment-unwatched', before);
    expect(kvRequestsSince(mark, `${ns}/unwatched/`)).toEqual([]);
    expect(await vaultRead(`${ns}/unwatched/unchecked`)).toBeUndefined();
  });
});

test('KV v1 has no custom_metadata: an InvalidAnnotation Warning says so, and the data is synced without the user keys', async () => {
  const env = loadTestEnv();
  const suffix = randomBytes(3).toString('hex');
  const kv1 = `kv1-meta-${suffix}`;
  const ns = await freshNamespace('user-meta-kv1');
  expect((await vaultHttp(`sys/mounts/${kv1}`, { body: { type: 'kv', options: { version: '1' } } })).status).toBe(204);
  const policy = `path "${kv1}/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n`;
  expect((await vaultHttp(`sys/policies/acl/meta-${suffix}`, { method: 'PUT', body: { policy } })).status).toBe(204);
  const created = await vaultHttp('auth/token/create', { body: { policies: [env.vaultKubernetesAuth.policy, `meta-${suffix}`], display_name: `meta-${suffix}`, ttl: '1h' } });
  const config = loadConfig(
    [`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=token', `--vault-token=${created.json?.auth?.client_token as string}`, `--watch-namespaces=${ns}`, '--cluster-name=e2e', `--vault-kv-mounts=secret,${kv1}`, `--tenant-path-template=${kv1}/{namespace}/`],
    { KUBECONFIG: env.kubeconfigPath },
  );
  process.env.KUBECONFIG = env.kubeconfigPath;
  const operator = startOperator(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  try {
    await operator.ready;
    await createSecret(ns, 'db', { password: 'kv1-one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `${kv1}/${ns}/web`, [META]: '{"team":"payments"}' }, ['db']) });
    const warning = await waitFor(async () => (await eventsOf(ns, 'web', 'InvalidAnnotation'))[0], { description: 'the InvalidAnnotation Warning on web' });
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain(`${META}: `);
    expect(warning.message).toContain(`mount "${kv1}"`);
    expect(warning.message).toContain('KV v1 has no custom_metadata');
    await readyWith(ns, 'deployment-web', '1 path(s) in sync');
    const stored = (await vaultHttp(`${kv1}/${ns}/web/db`)).json?.data as Record<string, unknown>;
    expect(stored.password).toBe('kv1-one');
    // The marks ride in the data on KV v1; the user's keys are not among them.
    expect(stored.custom_metadata).toMatchObject({ 'managed-by': 'vault-sync-operator', 'source-name': 'web' });
    expect(stored.custom_metadata).not.toHaveProperty('team');
  } finally {
    await operator.stop();
  }
});
