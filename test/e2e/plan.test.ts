// `vault-sync-operator plan` against the real apiserver and OpenBao, run as the real binary with a read-only
// Kubernetes identity (get/list/watch only) and a Vault token that may only read secret/metadata/*. It must
// print what the operator then does, and write nothing: OpenBao's audit log and the apiserver's RBAC say so.
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, vaultExists, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';
import { metadataReadOnlyToken, planEnv, readOnlyKubeconfig, runPlan, sourceOf } from './helpers/plan.js';
import { auditMark, isDataRead, isWrite, requestsSince } from './helpers/vault-audit.js';

const { core, apps } = kubeClients();
let kubeconfigPath: string;
let vaultToken: string;

beforeAll(async () => {
  const home = await freshNamespace('plan-identity');
  kubeconfigPath = await readOnlyKubeconfig(home);
  vaultToken = await metadataReadOnlyToken();
});

test('the identities plan runs with can read what it needs and write nothing (so any write attempt would fail the plan)', async () => {
  const ns = await freshNamespace('plan-identity-check');
  await createSecret(ns, 'db', { password: 'x' });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const saCore = kc.makeApiClient(CoreV1Api);
  const saApps = kc.makeApiClient(AppsV1Api);
  const status = async (call: () => Promise<unknown>) => call().then(() => 200, (error: { code?: number }) => error.code ?? -1);
  expect(await status(() => saCore.readNamespacedSecret({ namespace: ns, name: 'db' }))).toBe(200);
  expect(await status(() => saApps.listNamespacedDeployment({ namespace: ns }))).toBe(200);
  expect(await status(() => saCore.patchNamespacedSecret({ namespace: ns, name: 'db', body: { metadata: { finalizers: ['vault-sync.io/finalizer'] } } }, mergePatch))).toBe(403);
  expect(await status(() => saCore.createNamespacedEvent({ namespace: ns, body: { metadata: { generateName: 'x.' }, involvedObject: { kind: 'Secret', name: 'db', namespace: ns } } }))).toBe(403);
  expect(await status(() => saCore.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'vault-sync-operator-hash-key' }, data: { key: 'eA==' } } }))).toBe(403);
  expect((await vaultHttp(`secret/data/${ns}/probe`, { token: vaultToken, body: { data: { a: 'b' } } })).status).toBe(403);
  expect((await vaultHttp(`secret/metadata/${ns}/probe`, { token: vaultToken, body: { custom_metadata: { a: 'b' } } })).status).toBe(403);
  expect((await vaultHttp(`secret/data/${ns}/probe`, { token: vaultToken })).status).toBe(403);
});

/**
 * Every request the plan's token made since the mark: only reads of metadata, the mount lookup and the token
 * lookup, and detailed listings of a folder (metadata only; this token may not list, so it reads each path).
 */
function expectOnlyMetadataReads(mark: number) {
  const requests = requestsSince(mark).filter((r) => !r.byRoot);
  expect(requests.length).toBeGreaterThan(0);
  expect(requests.filter(isWrite)).toEqual([]);
  expect(requests.filter(isDataRead)).toEqual([]);
  const unexpected = requests.filter(
    (r) =>
      !(r.operation === 'read' && (r.path.startsWith('secret/metadata/') || r.path === 'sys/internal/ui/mounts/secret' || r.path === 'auth/token/lookup-self')) &&
      !(r.operation === 'list' && r.path.startsWith('secret/detailed-metadata/')),
  );
  expect(unexpected).toEqual([]);
  return requests;
}

test('plan lists what would be created, refused as a whole, and refused per path, exits 1, and writes nothing anywhere', async () => {
  const ns = await freshNamespace('plan-refusals');
  const password = `pw-${randomBytes(6).toString('hex')}`;
  await createSecret(ns, 'db', { username: 'app', password });
  await createSecret(ns, 'api', { token: `tok-${randomBytes(6).toString('hex')}` });
  await createSecret(ns, 'shared', { region: 'eu' }, { 'vault-sync.io/path': `secret/${ns}/shared` });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web` }, ['db', 'api']) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'outside', { 'vault-sync.io/path': 'secret/someone-else/x' }, ['db']) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'foreign', { 'vault-sync.io/path': `secret/${ns}/taken` }, ['db']) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'broken', { 'vault-sync.io/path': `secret/${ns}/broken`, 'vault-sync.io/secrets': '[{"name":"missing"}]' }, []) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'migrating', { 'vault-sync.io/path': `secret/${ns}/legacy`, 'vault-sync.io/adopt': 'true' }, ['db']) });
  // Written by hand before the operator: unmarked, so not ours to overwrite (unless adopted on purpose).
  expect((await vaultHttp(`secret/data/${ns}/taken/db`, { body: { data: { by: 'hand' } } })).status).toBe(200);
  expect((await vaultHttp(`secret/data/${ns}/legacy/db`, { body: { data: { by: 'script' } } })).status).toBe(200);

  const mark = auditMark();
  const run = await runPlan(['--output=json'], planEnv(kubeconfigPath, vaultToken, [ns]));
  expect(run.stderr).not.toMatch(/forbidden|no plan could be made/i);
  expect(run.code).toBe(1);
  const report = run.report!;
  expect(report.apiVersion).toBe('vault-sync.io/plan/v1');

  const web = sourceOf(report, 'Deployment', 'web');
  expect(web.verdict).toBe('change');
  expect(web.paths.map((p) => [p.path, p.action])).toEqual([
    [`secret/${ns}/web/api`, 'create'],
    [`secret/${ns}/web/db`, 'create'],
  ]);
  expect(sourceOf(report, 'Secret', 'shared').paths).toEqual([{ path: `secret/${ns}/shared`, action: 'create', reason: 'not synced yet; a new path' }]);
  const outside = sourceOf(report, 'Deployment', 'outside');
  expect(outside).toMatchObject({ verdict: 'refuse', paths: [] });
  expect(outside.reason).toMatch(/^OutsideTenantPrefix: the Vault path "secret\/someone-else\/x\/db" is outside what namespace/);
  const foreign = sourceOf(report, 'Deployment', 'foreign');
  expect(foreign.verdict).toBe('refuse');
  expect(foreign.paths).toEqual([
    { path: `secret/${ns}/taken/db`, action: 'refuse', reason: 'refusing to overwrite: it is not managed by this operator (adopt it with vault-sync.io/adopt: "true" or a VaultSyncPolicy\'s adoptPathPrefixes)' },
  ]);
  // The same unmarked path, with the source asking to adopt it: adopt (a write), not refuse.
  const adopting = sourceOf(report, 'Deployment', 'migrating');
  expect(adopting.verdict).toBe('change');
  expect(adopting.paths.map((p) => [p.path, p.action])).toEqual([[`secret/${ns}/legacy/db`, 'adopt']]);
  expect(sourceOf(report, 'Deployment', 'broken')).toMatchObject({ verdict: 'refuse', reason: 'SecretNotFound: Secret "missing" does not exist' });
  expect(report.summary).toMatchObject({ sources: 6, create: 3, adopt: 1, refuse: 1, refusedSources: 2 });

  // No value anywhere in what plan printed.
  expect(run.stdout + run.stderr).not.toContain(password);
  // Vault: reads of metadata only (one per path that would be written), never data, never a write.
  const requests = expectOnlyMetadataReads(mark);
  expect(requests.filter((r) => r.path.startsWith('secret/metadata/')).map((r) => r.path).sort()).toEqual(
    [`secret/metadata/${ns}/legacy/db`, `secret/metadata/${ns}/shared`, `secret/metadata/${ns}/taken/db`, `secret/metadata/${ns}/web/api`, `secret/metadata/${ns}/web/db`].sort(),
  );
  // Kubernetes: nothing written (and the identity could not have): no finalizer, no VaultSync, no Event.
  for (const name of ['web', 'outside', 'foreign', 'broken', 'migrating']) expect((await apps.readNamespacedDeployment({ namespace: ns, name })).metadata?.finalizers ?? []).toEqual([]);
  const vaultSyncs = (await kubeClients().kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace: ns, plural: 'vaultsyncs' })) as { items: unknown[] };
  expect(vaultSyncs.items).toEqual([]);
  expect(await eventsOf(ns, 'web')).toEqual([]);
  expect(await vaultExists(`${ns}/web/db`)).toBe(false);

  // The same plan as text, for people: one line per path with its action, and the summary.
  const text = await runPlan([], planEnv(kubeconfigPath, vaultToken, [ns]));
  expect(text.code).toBe(1);
  expect(text.stdout).toContain(`Deployment ${ns}/foreign: REFUSED`);
  expect(text.stdout).toMatch(new RegExp(`\\+ secret/${ns}/web/db\\s+create`));
  expect(text.stdout).toMatch(/Refusals need attention/);
});

test('plan says what the operator then does: exit 2 before the sync, 0 after it, 2 again with an update when a Secret changes', async () => {
  const ns = await freshNamespace('plan-agrees');
  await createSecret(ns, 'db', { username: 'app', password: 'one' });
  await createSecret(ns, 'api', { token: 't' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web` }, ['db', 'api']) });
  const env = planEnv(kubeconfigPath, vaultToken, [ns]);

  const before = await runPlan(['--output=json'], env);
  expect(before.code).toBe(2);
  const planned = sourceOf(before.report!, 'Deployment', 'web').paths.filter((p) => p.action === 'create').map((p) => p.path);
  expect(planned).toEqual([`secret/${ns}/web/api`, `secret/${ns}/web/db`]);

  const operator = await runOperator([ns]);
  try {
    for (const path of planned) await waitForVault(path.replace(/^secret\//, ''));
    await waitFor(async () => (await eventsOf(ns, 'web', 'Synced')).length > 0, { description: 'the Synced Event of web' });
  } finally {
    await operator.stop();
  }

  const mark = auditMark();
  const after = await runPlan(['--output=json'], env);
  expect(after.code).toBe(0);
  expect(sourceOf(after.report!, 'Deployment', 'web')).toMatchObject({ verdict: 'none', reason: 'in sync: no input changed since the last sync' });
  expect(sourceOf(after.report!, 'Deployment', 'web').paths.map((p) => p.action)).toEqual(['unchanged', 'unchanged']);
  // In sync: not even a metadata read of the synced paths (the VaultSync record answers, as for the operator).
  expect(expectOnlyMetadataReads(mark).filter((r) => r.path.startsWith(`secret/metadata/${ns}`))).toEqual([]);

  await core.patchNamespacedSecret({ namespace: ns, name: 'db', body: { stringData: { password: 'two' } } }, mergePatch);
  const changed = await waitFor(
    async () => {
      const run = await runPlan(['--output=json'], env);
      return run.code === 2 ? run : undefined;
    },
    { description: 'plan to see the changed Secret', timeoutMs: 30_000, intervalMs: 500 },
  );
  expect(sourceOf(changed.report!, 'Deployment', 'web').paths).toEqual([
    { path: `secret/${ns}/web/api`, action: 'unchanged', reason: 'content unchanged' },
    { path: `secret/${ns}/web/db`, action: 'update', reason: expect.stringMatching(/^content changed; ours at version 1 \(recorded\)$/) },
  ]);
});

test('plan of a source being deleted: its paths would be deleted, or kept with preserve-on-delete', async () => {
  const ns = await freshNamespace('plan-delete');
  await createSecret(ns, 'db', { password: 'x' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'gone', { 'vault-sync.io/path': `secret/${ns}/gone` }, ['db']) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'kept', { 'vault-sync.io/path': `secret/${ns}/kept`, 'vault-sync.io/preserve-on-delete': 'true' }, ['db']) });
  const operator = await runOperator([ns]);
  try {
    await waitForVault(`${ns}/gone/db`);
    await waitForVault(`${ns}/kept/db`);
  } finally {
    await operator.stop();
  }
  // With the operator stopped, the finalizer holds both Deployments in deletion.
  await apps.deleteNamespacedDeployment({ namespace: ns, name: 'gone' });
  await apps.deleteNamespacedDeployment({ namespace: ns, name: 'kept' });

  const run = await runPlan(['--output=json'], planEnv(kubeconfigPath, vaultToken, [ns]));
  expect(run.code).toBe(2);
  expect(sourceOf(run.report!, 'Deployment', 'gone').paths).toEqual([{ path: `secret/${ns}/gone/db`, action: 'delete', reason: 'source deleted (every version and the metadata)' }]);
  expect(sourceOf(run.report!, 'Deployment', 'kept').paths).toEqual([{ path: `secret/${ns}/kept/db`, action: 'keep', reason: 'preserve-on-delete' }]);
  expect(await vaultExists(`${ns}/gone/db`)).toBe(true);
});

test('plan of a source with drift checks (vault-sync.io/reconcile): a path changed in Vault out of band would be restored', async () => {
  const ns = await freshNamespace('plan-drift');
  await createSecret(ns, 'db', { password: 'x' });
  await createSecret(ns, 'api', { token: 't' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web`, 'vault-sync.io/reconcile': '1h' }, ['db', 'api']) });
  const operator = await runOperator([ns]);
  try {
    await waitForVault(`${ns}/web/db`);
    await waitForVault(`${ns}/web/api`);
    await waitFor(async () => (await eventsOf(ns, 'web', 'Synced')).length > 0, { description: 'the Synced Event of web' });
  } finally {
    await operator.stop();
  }
  // Someone edits the data by hand (the marks stay: still ours).
  expect((await vaultHttp(`secret/data/${ns}/web/db`, { body: { data: { password: 'by hand' } } })).status).toBe(200);

  const mark = auditMark();
  const run = await runPlan(['--output=json'], planEnv(kubeconfigPath, vaultToken, [ns]));
  expect(run.code).toBe(2);
  const web = sourceOf(run.report!, 'Deployment', 'web');
  expect(web.reason).toBe('in sync with its inputs; drift checked in Vault');
  expect(web.paths).toEqual([
    { path: `secret/${ns}/web/api`, action: 'unchanged', reason: 'content unchanged; no drift in Vault' },
    { path: `secret/${ns}/web/db`, action: 'update', reason: expect.stringMatching(/^changed in Vault out of band: restored; ours at version 2/) },
  ]);
  // One metadata read per recorded path, as the operator's drift check.
  expect(expectOnlyMetadataReads(mark).filter((r) => r.path.startsWith(`secret/metadata/${ns}`)).map((r) => r.path).sort()).toEqual([`secret/metadata/${ns}/web/api`, `secret/metadata/${ns}/web/db`]);
});

test('plan fails fast, naming the flag, with exit code 3', async () => {
  const bad = await runPlan(['--output=yaml'], planEnv(kubeconfigPath, vaultToken, ['default']));
  expect(bad.code).toBe(3);
  expect(bad.stderr).toContain('--output must be text or json, got "yaml"');
  const unknown = await runPlan(['--no-such-flag=1'], planEnv(kubeconfigPath, vaultToken, ['default']));
  expect(unknown.code).toBe(3);
  expect(unknown.stderr).toContain('unknown setting --no-such-flag');
  expect(unknown.stdout).toBe('');
});
