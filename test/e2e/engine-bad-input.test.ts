// Bad input: each case gets an Event naming the object and the problem, nothing is written, the operator
// does not crash, and the other sources keep syncing.
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';
import { KNOWN_ANNOTATIONS } from '../../src/kube/annotation-rules.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, vaultExists, vaultRead, waitForEvent, waitForVault } from './helpers/objects.js';
import { runOperator, type TestOperator } from './helpers/operator.js';
import { auditMark, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

const { core, apps } = kubeClients();
let ns: string;
let terminating: string;
let operator: TestOperator;
let mark: number;

beforeAll(async () => {
  ns = await freshNamespace('bad-input');
  terminating = await freshNamespace('bad-terminating');
  mark = auditMark();
  operator = await runOperator([ns, terminating], ['--max-secret-size=4Ki', '--large-secret-threshold=1Ki']);
});
afterAll(async () => operator?.stop());

const cases: Array<{ reason: string; name: string; annotations: (ns: string) => Record<string, string>; secrets: string[]; event: string; says: string | RegExp }> = [
  { reason: 'invalid JSON in vault-sync.io/secrets', name: 'bad-json', annotations: (n) => ({ 'vault-sync.io/path': `secret/${n}/bad-json`, 'vault-sync.io/secrets': '[{"name": "db",' }), secrets: [], event: 'SyncFailed', says: 'vault-sync.io/secrets: is not valid JSON' },
  { reason: 'a listed Secret that does not exist', name: 'missing-secret', annotations: (n) => ({ 'vault-sync.io/path': `secret/${n}/missing-secret`, 'vault-sync.io/secrets': '[{"name":"nope"}]' }), secrets: [], event: 'SyncFailed', says: 'Secret "nope" does not exist' },
  { reason: 'a listed key that does not exist', name: 'missing-key', annotations: (n) => ({ 'vault-sync.io/path': `secret/${n}/missing-key`, 'vault-sync.io/secrets': '[{"name":"good","keys":["absent"]}]' }), secrets: [], event: 'SyncFailed', says: 'Secret "good" has no key "absent"' },
  { reason: 'two Secrets writing the same key to one path', name: 'conflict', annotations: (n) => ({ 'vault-sync.io/path': `secret/${n}/conflict`, 'vault-sync.io/secrets': '[{"name":"good"},{"name":"good-twin"}]' }), secrets: [], event: 'SyncFailed', says: 'would be written by both Secret "good" and Secret "good-twin"' },
  { reason: 'a path outside the tenant prefix', name: 'outside', annotations: () => ({ 'vault-sync.io/path': 'secret/someone-else/app' }), secrets: ['good'], event: 'Refused', says: 'is outside what namespace' },
  { reason: 'a path with traversal', name: 'traversal', annotations: (n) => ({ 'vault-sync.io/path': `secret/${n}/../other/app` }), secrets: ['good'], event: 'Refused', says: 'path traversal' },
  { reason: 'an empty path', name: 'empty-path', annotations: () => ({ 'vault-sync.io/path': '' }), secrets: ['good'], event: 'Refused', says: 'the Vault path is empty' },
  { reason: 'a path into sys/', name: 'sys-path', annotations: () => ({ 'vault-sync.io/path': 'sys/policies/acl/admin' }), secrets: ['good'], event: 'Refused', says: 'not under an allowed KV mount' },
  { reason: 'combined data over the size limit', name: 'too-big', annotations: (n) => ({ 'vault-sync.io/path': `secret/${n}/too-big`, 'vault-sync.io/secrets': '[{"name":"big-a"},{"name":"big-b"}]' }), secrets: [], event: 'SyncFailed', says: /is \d+ bytes, over the limit of 4096 bytes/ },
];

test('every bad input gets an Event naming the object and the problem, no write, and the rest keeps syncing', async () => {
  await createSecret(ns, 'good', { token: 'value-of-good-7f3a' });
  await createSecret(ns, 'good-twin', { token: 'value-of-twin-9c1b' });
  await createSecret(ns, 'big-a', { blob: 'a'.repeat(3000) });
  await createSecret(ns, 'big-b', { blob2: 'b'.repeat(3000) });
  for (const c of cases) await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, c.name, c.annotations(ns), c.secrets) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'healthy', { 'vault-sync.io/path': `secret/${ns}/healthy` }, ['good']) });

  await waitForVault(`${ns}/healthy/good`); // the good one syncs beside the bad ones
  for (const c of cases) {
    const event = await waitForEvent(ns, c.name, c.event);
    expect({ case: c.reason, message: event.message }).toEqual({ case: c.reason, message: expect.stringMatching(c.says) });
    expect(event.type).toBe('Warning');
    expect(event.involvedObject).toMatchObject({ kind: 'Deployment', name: c.name, namespace: ns });
    expect(event.message).not.toMatch(/value-of-|aaaa|bbbb/); // names and paths only, never values
  }
  const written = kvRequestsSince(mark, ns).filter(isWrite).map((r) => r.path);
  expect(written.every((p) => p.includes(`${ns}/healthy/`))).toBe(true);
  for (const c of cases) expect(await vaultExists(`${ns}/${c.name}`)).toBe(false);
});

test('fixing the input (creating the missing Secret) syncs without any other nudge', async () => {
  await createSecret(ns, 'nope', { late: 'arrival' });
  await waitForVault(`${ns}/missing-secret`, (d) => d.data.late === 'arrival');
});

test('a Deployment annotated in a namespace that is being deleted: nothing written, no finalizer added', async () => {
  await createSecret(terminating, 'doomed', { k: 'v' });
  await apps.createNamespacedDeployment({ namespace: terminating, body: deploymentUsing(terminating, 'doomed', {}, ['doomed']) });
  await core.deleteNamespace({ name: terminating }); // stays Terminating: no namespace controller runs here
  await waitFor(async () => (await core.readNamespace({ name: terminating })).status?.phase === 'Terminating', { timeoutMs: 10000, description: 'the namespace to be Terminating' });
  await apps.patchNamespacedDeployment({ namespace: terminating, name: 'doomed', body: { metadata: { annotations: { 'vault-sync.io/path': `secret/${terminating}/doomed` } } } }, mergePatch);
  await waitFor(async () => (await operator.metrics.refusals.get()).values.some((v) => v.labels.reason === 'NamespaceTerminating' && v.value > 0), { timeoutMs: 20000, description: 'the refusal counted' });

  const live = await apps.readNamespacedDeployment({ namespace: terminating, name: 'doomed' });
  expect(live.metadata?.finalizers ?? []).not.toContain('vault-sync.io/finalizer');
  expect(await vaultExists(`${terminating}/doomed/doomed`)).toBe(false);
  // Events cannot be created in a terminating namespace; when the apiserver allows it, it names the problem.
  const events = await eventsOf(terminating, 'doomed', 'Refused');
  for (const e of events) expect(e.message).toContain('is being deleted');

  await createSecret(ns, 'after-terminating', { k: 'v' }, { 'vault-sync.io/path': `secret/${ns}/after-terminating` });
  await waitForVault(`${ns}/after-terminating`);
});

// Bad annotation values: reported by the operator itself (the admission policy may be off, Warn only, or younger
// than the object), one InvalidAnnotation Warning per source, and the sync goes on with the safe reading.
const invalidAnnotationCount = async () => (await operator.metrics.refusals.get()).values.find((v) => v.labels.reason === 'InvalidAnnotation')?.value ?? 0;

test('a bad preserve-on-delete gets one InvalidAnnotation Warning, still syncs, and keeps its Vault data when the Deployment is deleted', async () => {
  const before = await invalidAnnotationCount();
  await createSecret(ns, 'unsure-db', { k: 'value-of-unsure-2b8e' });
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: deploymentUsing(ns, 'unsure-keeper', { 'vault-sync.io/path': `secret/${ns}/unsure-keeper`, 'vault-sync.io/preserve-on-delete': 'yes please', 'vault-sync.io/typo': 'x' }, ['unsure-db']),
  });
  await waitForVault(`${ns}/unsure-keeper/unsure-db`);
  await waitForEvent(ns, 'unsure-keeper', 'Synced');

  const warnings = await eventsOf(ns, 'unsure-keeper', 'InvalidAnnotation');
  expect(warnings.map((e) => ({ type: e.type, count: e.count, kind: e.involvedObject.kind }))).toEqual([{ type: 'Warning', count: 1, kind: 'Deployment' }]);
  expect(warnings[0].message).toBe(
    'vault-sync.io/preserve-on-delete: "yes please" must be "true" or "false" (read as "true": the Vault data is kept when the Deployment is deleted); ' +
      `vault-sync.io/typo: "x" unknown annotation (known: ${KNOWN_ANNOTATIONS.join(', ')}) (ignored)`,
  );
  expect(await invalidAnnotationCount()).toBe(before + 1);

  await apps.deleteNamespacedDeployment({ namespace: ns, name: 'unsure-keeper' });
  await waitFor(async () => apps.readNamespacedDeployment({ namespace: ns, name: 'unsure-keeper' }).then(() => false, (e) => e.code === 404), { timeoutMs: 20000, description: 'the Deployment to be gone (finalizer released)' });
  expect((await vaultRead(`${ns}/unsure-keeper/unsure-db`))?.data).toEqual({ k: 'value-of-unsure-2b8e' });
  const preserved = await eventsOf(ns, 'unsure-keeper', 'Preserved');
  expect(preserved.map((e) => e.type)).toEqual(['Warning']);
  expect(preserved[0].message).toContain('vault-sync.io/preserve-on-delete: "yes please" is not "true" or "false" and is read as "true"');
  expect(kvRequestsSince(mark, ns).filter((r) => r.path.includes('unsure-keeper') && r.operation === 'delete')).toEqual([]);
});

test('a bad reconcile duration gets the Warning once, and the source still syncs each change (the repeat is de-duplicated)', async () => {
  const before = await invalidAnnotationCount();
  await createSecret(ns, 'vague-db', { k: 'first' });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'vague-drift', { 'vault-sync.io/path': `secret/${ns}/vague-drift`, 'vault-sync.io/reconcile': '5 minutes' }, ['vague-db']) });
  await waitForVault(`${ns}/vague-drift/vague-db`, (d) => d.data.k === 'first');
  const warning = await waitForEvent(ns, 'vague-drift', 'InvalidAnnotation');
  expect(warning.type).toBe('Warning');
  expect(warning.message).toBe('vault-sync.io/reconcile: "5 minutes" must be a duration like 30s, 5m or 1h (ignored: no periodic drift check)');

  // A change reconciles the source again (its Warning is reported before its write): it syncs, and the same
  // Warning is not repeated.
  await core.patchNamespacedSecret({ namespace: ns, name: 'vague-db', body: { stringData: { k: 'second' } } }, mergePatch);
  await waitForVault(`${ns}/vague-drift/vague-db`, (d) => d.data.k === 'second');
  expect((await eventsOf(ns, 'vague-drift', 'InvalidAnnotation')).map((e) => e.count)).toEqual([1]);
  expect(await invalidAnnotationCount()).toBe(before + 1);
});
