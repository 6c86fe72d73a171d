// The write path's cost floor and its guards, counted in OpenBao's audit log (docs/adr/0003): a new path is
// claimed by its data write (cas=0) and marked after; an update is one check-and-set write; nothing at rest or
// on restart. A foreign path is refused before any write reaches it (also one with metadata but no version);
// an unmarked path is adopted only on purpose; a terminal Vault answer is reported, not retried in a loop.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, vaultRead, waitForEvent, waitForVault, readyCondition as ready, vaultSyncStatus } from './helpers/objects.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { runOperator, type TestOperator } from './helpers/operator.js';
import { auditMark, isWrite, kvRequestsSince, requestsSince } from './helpers/vault-audit.js';

const { kc, core, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);


/** Waits until the operator has nothing queued or running (so "no more requests" is a fact, not a hope). */
async function settled(operator: TestOperator) {
  await waitFor(() => operator.queue.depth === 0 && operator.queue.inFlight === 0, { description: 'the work queue idle' });
}

describe('requests per change (OpenBao audit log)', () => {
  let ns: string;
  let operator: TestOperator;
  beforeAll(async () => {
    ns = await freshNamespace('claims');
    operator = await runOperator([ns]);
  });
  afterAll(async () => operator?.stop());

  test('N new paths of one source: N data writes with cas=0, N marks, one LIST of their folder (detailed where the server has it); an update: one write; at rest: nothing', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `s${i}`);
    for (const name of names) await createSecret(ns, name, { value: `${name}-1` });
    const mark = auditMark();
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'app', { 'vault-sync.io/path': `secret/${ns}/app` }, names) });
    for (const name of names) await waitFor(async () => (await vaultHttp(`secret/metadata/${ns}/app/${name}`)).json?.data?.custom_metadata?.['managed-by'] === 'vault-sync-operator', { description: `${name} marked` });
    await settled(operator);
    const created = kvRequestsSince(mark, ns);
    // OpenBao lists the folder's detailed metadata; HashiCorp Vault has no such call (learned from its 404), so a plain LIST follows.
    const lists = loadTestEnv().vaultServer.product === 'openbao' ? [`secret/detailed-metadata/${ns}/app/`] : [`secret/detailed-metadata/${ns}/app/`, `secret/metadata/${ns}/app/`];
    expect(created.filter((r) => r.operation === 'list').map((r) => r.path)).toEqual(lists);
    expect(created.filter((r) => r.path.startsWith('secret/data/') && isWrite(r)).length).toBe(names.length);
    expect(created.filter((r) => r.path.startsWith('secret/metadata/') && isWrite(r)).length).toBe(names.length);
    expect(created.filter((r) => r.operation === 'read')).toEqual([]); // no metadata read, no data read
    // Values first: every data write is issued at once, each path's marks only after its data landed.
    expect(created.filter(isWrite).slice(0, names.length).every((r) => r.path.startsWith('secret/data/'))).toBe(true);
    for (const name of names) expect((await vaultRead(`${ns}/app/${name}`))?.metadata.version).toBe(1);

    const update = auditMark();
    await core.patchNamespacedSecret({ namespace: ns, name: 's3', body: { stringData: { value: 's3-2' } } }, mergePatch);
    await waitForVault(`${ns}/app/s3`, (d) => d.data.value === 's3-2');
    await settled(operator);
    expect(kvRequestsSince(update, ns).map((r) => `${r.operation} ${r.path}`)).toEqual([`update secret/data/${ns}/app/s3`]);

    const rest = auditMark();
    operator.resync();
    await settled(operator);
    expect(kvRequestsSince(rest, ns)).toEqual([]);
    expect(ready(await vaultSyncStatus(ns, 'deployment-app'))).toMatchObject({ status: 'True', reason: 'Synced' });
    expect((await vaultSyncStatus(ns, 'deployment-app')).intents).toEqual([]);
  });

  test('one new path alone: its metadata read, the data write, the marks (a LIST would cost the same one request)', async () => {
    await createSecret(ns, 'lone', { k: 'v' }, { 'vault-sync.io/path': `secret/${ns}/lone` });
    const mark = auditMark();
    await waitForVault(`${ns}/lone`);
    await waitFor(async () => (await vaultHttp(`secret/metadata/${ns}/lone`)).json?.data?.custom_metadata?.['source-name'] === 'lone', { description: 'marks' });
    await settled(operator);
    expect(kvRequestsSince(mark, `${ns}/lone`).map((r) => `${r.operation} ${r.path.split('/')[1]}`)).toEqual(['read metadata', 'create data', 'update metadata']);
  });

  test('a path with foreign metadata but no version yet (cas=0 would succeed there) is refused with no write reaching it; its siblings land', async () => {
    await vaultHttp(`secret/metadata/${ns}/mixed/claimed`, { body: { custom_metadata: { 'managed-by': 'external-secrets' } } });
    await vaultHttp(`secret/metadata/${ns}/mixed/bare`, { body: { custom_metadata: { note: 'reserved by hand' } } });
    for (const name of ['claimed', 'bare', 'free']) await createSecret(ns, name, { k: name });
    const mark = auditMark();
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'mixed', { 'vault-sync.io/path': `secret/${ns}/mixed` }, ['claimed', 'bare', 'free']) });
    await waitForVault(`${ns}/mixed/free`);
    const event = await waitForEvent(ns, 'mixed', 'Refused');
    expect(event.message).toContain(`secret/${ns}/mixed/claimed: it is managed by "external-secrets"`);
    expect(event.message).toContain(`secret/${ns}/mixed/bare: it is not managed by this operator`);
    await settled(operator);
    const requests = kvRequestsSince(mark, `${ns}/mixed/`);
    expect(requests.filter((r) => isWrite(r) && (r.path.endsWith('/claimed') || r.path.endsWith('/bare')))).toEqual([]);
    for (const name of ['claimed', 'bare']) expect((await vaultHttp(`secret/metadata/${ns}/mixed/${name}`)).json.data.current_version).toBe(0);
    expect(ready(await vaultSyncStatus(ns, 'deployment-mixed'))).toMatchObject({ status: 'False', reason: 'Refused' });
  });
});

describe('adopt, on purpose', () => {
  let ns: string;
  let operator: TestOperator;
  const policyName = () => `adopt-${ns}`;
  beforeAll(async () => {
    ns = await freshNamespace('adopt');
    operator = await runOperator([ns]);
  });
  afterAll(async () => {
    await custom.deleteClusterCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', plural: 'vaultsyncpolicies', name: policyName() }).catch(() => undefined);
    await operator?.stop();
  });

  test('an unmarked path is refused until the source says vault-sync.io/adopt: "true"; then one Adopted Event and the old custom_metadata kept as previous-*', async () => {
    await vaultHttp(`secret/data/${ns}/legacy`, { body: { data: { password: 'old' } } });
    await vaultHttp(`secret/metadata/${ns}/legacy`, { body: { custom_metadata: { owner: 'go-operator-era' } } });
    await createSecret(ns, 'legacy', { password: 'new' }, { 'vault-sync.io/path': `secret/${ns}/legacy` });
    const refused = await waitForEvent(ns, 'legacy', 'Refused');
    expect(refused.message).toContain('vault-sync.io/adopt');
    expect((await vaultRead(`${ns}/legacy`))?.data).toEqual({ password: 'old' });

    await core.patchNamespacedSecret({ namespace: ns, name: 'legacy', body: { metadata: { annotations: { 'vault-sync.io/adopt': 'true' } } } }, mergePatch);
    await waitForVault(`${ns}/legacy`, (d) => d.data.password === 'new' && d.metadata.version === 2, 'the adopted value');
    await waitForEvent(ns, 'legacy', 'Adopted');
    await waitFor(async () => (await vaultHttp(`secret/metadata/${ns}/legacy`)).json.data.custom_metadata['managed-by'] === 'vault-sync-operator', { description: 'our marks' });
    const marks = (await vaultHttp(`secret/metadata/${ns}/legacy`)).json.data.custom_metadata;
    expect(marks).toMatchObject({ 'previous-owner': 'go-operator-era', 'source-kind': 'Secret', 'source-name': 'legacy' });
    expect(await eventsOf(ns, 'legacy', 'Adopted')).toHaveLength(1);
  });

  test('a path marked by another manager or another cluster is never adopted, whatever the source says', async () => {
    await vaultHttp(`secret/data/${ns}/foreign`, { body: { data: { k: 'theirs' } } });
    await vaultHttp(`secret/metadata/${ns}/foreign`, { body: { custom_metadata: { 'managed-by': 'external-secrets' } } });
    await vaultHttp(`secret/data/${ns}/other-cluster`, { body: { data: { k: 'theirs' } } });
    await vaultHttp(`secret/metadata/${ns}/other-cluster`, { body: { custom_metadata: { 'managed-by': 'vault-sync-operator', cluster: 'elsewhere', 'source-kind': 'Secret', 'source-namespace': ns, 'source-name': 'other-cluster' } } });
    const mark = auditMark();
    await createSecret(ns, 'foreign', { k: 'ours' }, { 'vault-sync.io/path': `secret/${ns}/foreign`, 'vault-sync.io/adopt': 'true' });
    await createSecret(ns, 'other-cluster', { k: 'ours' }, { 'vault-sync.io/path': `secret/${ns}/other-cluster`, 'vault-sync.io/adopt': 'true' });
    expect((await waitForEvent(ns, 'foreign', 'Refused')).message).toContain('managed by "external-secrets"');
    expect((await waitForEvent(ns, 'other-cluster', 'Refused')).message).toContain('in cluster "elsewhere"');
    await settled(operator);
    expect(kvRequestsSince(mark, ns).filter(isWrite)).toEqual([]);
    expect((await vaultRead(`${ns}/foreign`))?.data).toEqual({ k: 'theirs' });
    expect((await vaultRead(`${ns}/other-cluster`))?.data).toEqual({ k: 'theirs' });
  });

  test('a VaultSyncPolicy with adoptPathPrefixes allows the takeover for its prefix only', async () => {
    await vaultHttp(`secret/data/${ns}/migrated/app`, { body: { data: { k: 'old' } } });
    await vaultHttp(`secret/data/${ns}/kept/app`, { body: { data: { k: 'old' } } });
    await custom.createClusterCustomObject({
      group: 'vault-sync.io', version: 'v1alpha1', plural: 'vaultsyncpolicies',
      body: { apiVersion: 'vault-sync.io/v1alpha1', kind: 'VaultSyncPolicy', metadata: { name: policyName() }, spec: { namespaces: [ns], allowedPathPrefixes: [], adoptPathPrefixes: [`secret/${ns}/migrated/`] } },
    });
    await createSecret(ns, 'migrated', { k: 'new' }, { 'vault-sync.io/path': `secret/${ns}/migrated/app` });
    await createSecret(ns, 'kept', { k: 'new' }, { 'vault-sync.io/path': `secret/${ns}/kept/app` });
    await waitForVault(`${ns}/migrated/app`, (d) => d.data.k === 'new', 'adopted under the policy prefix');
    await waitForEvent(ns, 'migrated', 'Adopted');
    await waitForEvent(ns, 'kept', 'Refused');
    expect((await vaultRead(`${ns}/kept/app`))?.data).toEqual({ k: 'old' });
  });
});

describe('terminal Vault answers are terminal', () => {
  let ns: string;
  let operator: TestOperator;
  let originalPolicy: string;
  const env = () => loadTestEnv();
  beforeAll(async () => {
    ns = await freshNamespace('terminal');
    // The operator's own policy denies one path of this namespace (and nothing else changes for anyone).
    originalPolicy = (await vaultHttp(`sys/policies/acl/${env().vaultKubernetesAuth.policy}`)).json.data.policy;
    const denied = `${originalPolicy}\npath "secret/data/${ns}/denied/blocked" { capabilities = ["deny"] }\n`;
    expect((await vaultHttp(`sys/policies/acl/${env().vaultKubernetesAuth.policy}`, { method: 'PUT', body: { policy: denied } })).status).toBe(204);
    operator = await runOperator([ns]);
  });
  afterAll(async () => {
    await operator?.stop();
    const current = (await vaultHttp(`sys/policies/acl/${env().vaultKubernetesAuth.policy}`)).json.data.policy as string;
    await vaultHttp(`sys/policies/acl/${env().vaultKubernetesAuth.policy}`, { method: 'PUT', body: { policy: current.replace(`\npath "secret/data/${ns}/denied/blocked" { capabilities = ["deny"] }\n`, '') } });
  });

  test('403 on one path: Warning Event and Ready=False naming it, its siblings land, no empty claim, no retry until the source changes', async () => {
    await createSecret(ns, 'ok', { k: 'fine' });
    await createSecret(ns, 'blocked', { k: 'nope' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'denied', { 'vault-sync.io/path': `secret/${ns}/denied` }, ['ok', 'blocked']) });
    await waitForVault(`${ns}/denied/ok`);
    const event = await waitForEvent(ns, 'denied', 'VaultRejected');
    expect(event.type).toBe('Warning');
    expect(event.message).toContain(`secret/${ns}/denied/blocked`);
    expect(event.message).toContain('HTTP 403');
    expect(event.message).toContain('permission denied');
    expect(event.message).not.toContain('nope');
    await waitFor(async () => ready(await vaultSyncStatus(ns, 'deployment-denied'))?.reason === 'VaultRejected', { description: 'Ready=False VaultRejected' });
    const status = await vaultSyncStatus(ns, 'deployment-denied');
    expect(ready(status)).toMatchObject({ status: 'False' });
    expect(status.failures).toEqual([expect.objectContaining({ path: `secret/${ns}/denied/blocked`, kind: 'forbidden' })]);
    expect(Date.parse(status.failures[0].retryAt)).toBeGreaterThan(Date.now() + 60_000); // the slow retry
    // The data write was the claim: nothing at all is left at the refused path.
    expect((await vaultHttp(`secret/metadata/${ns}/denied/blocked`)).status).toBe(404);

    await settled(operator);
    const quiet = auditMark();
    operator.resync();
    operator.resync();
    await settled(operator);
    expect(requestsSince(quiet, (p) => p.includes(`${ns}/denied`)).filter((r) => !r.byRoot)).toEqual([]);

    // A change of the source is a new attempt, refused again: one write, and the client's one retry after a
    // fresh login (a 403 may be an expired token), then nothing more.
    await core.patchNamespacedSecret({ namespace: ns, name: 'blocked', body: { stringData: { k: 'nope-2' } } }, mergePatch);
    const attempts = () => requestsSince(quiet, (p) => p === `secret/data/${ns}/denied/blocked`).filter((r) => !r.byRoot);
    await waitFor(async () => attempts().length >= 1 && (await vaultSyncStatus(ns, 'deployment-denied')).failures?.[0]?.retryAt !== status.failures[0].retryAt, { description: 'a new attempt after the change, recorded' });
    await settled(operator);
    operator.resync();
    await settled(operator);
    expect(attempts()).toHaveLength(2);
  });
});

describe('terminal Vault answers: 400, 404 on a write, 413 (answered by a proxy in front of OpenBao)', () => {
  let ns: string;
  let operator: TestOperator;
  let proxy: FaultProxy;
  beforeAll(async () => {
    ns = await freshNamespace('answers');
    proxy = await startFaultProxy({ upstream: loadTestEnv().vaultAddr });
    operator = await runOperator([ns], [`--vault-addr=${proxy.url}`]);
  });
  afterAll(async () => {
    await operator?.stop();
    await proxy?.close();
  });

  test.each([
    { status: 400, kind: 'bad-request', said: 'invalid value "CANARY-4f1d" for key k' },
    { status: 404, kind: 'not-found', said: 'no handler for route "CANARY-4f1d"' },
    { status: 413, kind: 'too-large', said: 'http: request body too large' },
  ])('$status: one Warning Event and Ready=False with Vault\'s message (echoed input redacted); no retry, nothing left at the path', async ({ status, kind, said }) => {
    const name = `answer-${status}`;
    const wire = `/v1/secret/data/${ns}/${name}`;
    proxy.setFaults({ answer: { status, errors: [said], ratio: 1 }, match: (method, path) => method !== 'GET' && path === wire });
    await createSecret(ns, name, { k: 'CANARY-4f1d' }, { 'vault-sync.io/path': `secret/${ns}/${name}` });
    const event = await waitForEvent(ns, name, 'VaultRejected');
    expect(event.type).toBe('Warning');
    expect(event.message).toContain(`secret/${ns}/${name}: Vault refused the write (HTTP ${status}`);
    expect(event.message).not.toContain('CANARY');
    await waitFor(async () => ready(await vaultSyncStatus(ns, `secret-${name}`))?.reason === 'VaultRejected', { description: 'Ready=False VaultRejected' });
    const recorded = await vaultSyncStatus(ns, `secret-${name}`);
    expect(recorded.failures).toEqual([expect.objectContaining({ path: `secret/${ns}/${name}`, kind })]);
    expect(recorded.failures[0].retryAt).toBeUndefined(); // only a change of the source retries it
    expect(JSON.stringify(recorded)).not.toContain('CANARY');
    expect((await vaultHttp(`secret/metadata/${ns}/${name}`)).status).toBe(404); // no empty marked path

    await settled(operator);
    const before = proxy.requests.filter((r) => r.path === wire).length;
    expect(before).toBe(1);
    operator.resync();
    await settled(operator);
    expect(proxy.requests.filter((r) => r.path === wire).length).toBe(before);
    expect(await eventsOf(ns, name, 'VaultRejected')).toHaveLength(1);
  });

  test('a claim that appears between the ownership check and the data write: the write answer shows it, our version is deleted again, the path is refused', async () => {
    await vaultHttp(`secret/metadata/${ns}/race`, { body: { custom_metadata: { 'managed-by': 'someone-else' } } });
    // The check is made to miss it (as if the claim came right after it): the proxy answers its read with 404.
    proxy.setFaults({ answer: { status: 404, errors: [], ratio: 1 }, match: (method, path) => method === 'GET' && path === `/v1/secret/metadata/${ns}/race` });
    await createSecret(ns, 'race', { k: 'ours' }, { 'vault-sync.io/path': `secret/${ns}/race` });
    const event = await waitForEvent(ns, 'race', 'Refused');
    proxy.setFaults({});
    expect(event.message).toContain('became managed by "someone-else" while it was being claimed; the version written (1) was deleted again');
    const metadata = (await vaultHttp(`secret/metadata/${ns}/race`)).json.data;
    expect(metadata.custom_metadata).toEqual({ 'managed-by': 'someone-else' }); // their marks untouched
    expect(metadata.versions['1'].deletion_time).not.toBe('');
    expect((await vaultHttp(`secret/data/${ns}/race`)).status).toBe(404);
  });
});
