// Drift checks by listing, against the real OpenBao: 3 Deployments of 8 Secrets each (24 paths in 3 folders)
// with `vault-sync.io/reconcile: 3s`. OpenBao's audit log is the witness: each drift check of a folder is one
// `LIST secret/detailed-metadata/<folder>` and no metadata read per path; an out-of-band `kv put` is restored by
// the first drift check after it (one LIST, then the write); deleting a source of 10 paths in one folder costs
// one LIST and 10 deletes. All counts, no clock: a loaded machine only makes the checks fewer, never more.
// Those run with drift scans off (--vault-drift-scan-max-bytes=0: as where no scan can be had). With scans (the
// default, the test policy grants `scan`), a second operator's 4 sources below one namespace cost one
// `SCAN secret/detailed-metadata/<namespace>` a period, and an out-of-band change is still restored.
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startOperator, type RunningOperator } from '../../src/operator.js';
import { freshNamespace, kubeClients, loadTestEnv, testExceptOn, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, vaultRead, waitForVault } from './helpers/objects.js';
import { auditMark, requestsSince, type AuditedRequest } from './helpers/vault-audit.js';

const { apps } = kubeClients();
const env = loadTestEnv();
/** The token's display name in the audit log: this file's operator, not other test files'. */
const displayName = `drift-list-${randomBytes(3).toString('hex')}`;
const PERIOD_MS = 3_000;
const SOURCES = ['app-0', 'app-1', 'app-2'];
const SECRETS = Array.from({ length: 8 }, (_, i) => `s${i}`);

let ns: string;
let config: Config;
let operator: RunningOperator | undefined;

/** The operator's requests since the mark on paths below the namespace's folders (any KV endpoint). */
function ours(mark: number): AuditedRequest[] {
  return requestsSince(mark).filter((r) => r.displayName === `token-${displayName}` && r.path.includes(`/${ns}/`));
}
const folderOf = (r: AuditedRequest) => r.path.replace(/\/$/, '').split('/').slice(-1)[0];
const isDetailedList = (r: AuditedRequest) => r.operation === 'list' && r.path.startsWith(`secret/detailed-metadata/${ns}/`);
const isMetadataRead = (r: AuditedRequest) => r.operation === 'read' && r.path.startsWith(`secret/metadata/${ns}/`);

/** The data and the operator's marks after it (the marks may trail the data). */
async function waitForMarks(path: string): Promise<void> {
  await waitForVault(path);
  await waitFor(async () => (await vaultHttp(`secret/metadata/${path}`)).json?.data?.custom_metadata?.['managed-by'], { timeoutMs: 20_000, description: `the marks of secret/${path}` });
}

beforeAll(async () => {
  ns = await freshNamespace('drift-list');
  const created = await vaultHttp('auth/token/create', { body: { policies: [env.vaultKubernetesAuth.policy], display_name: displayName, ttl: '2h' } });
  const token = created.json?.auth?.client_token;
  if (typeof token !== 'string') throw new Error(`could not create the operator's token: HTTP ${created.status}`);
  config = loadConfig([`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=token', `--vault-token=${token}`, `--watch-namespaces=${ns}`, '--cluster-name=e2e', '--vault-drift-scan-max-bytes=0'], { KUBECONFIG: env.kubeconfigPath });
  process.env.KUBECONFIG = env.kubeconfigPath;
  const started = startOperator(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  operator = await started.ready.then(
    () => started,
    async (error) => {
      await started.stop();
      throw error;
    },
  );
  for (const name of SECRETS) await createSecret(ns, name, { value: `value-of-${name}` });
});

afterAll(async () => {
  await operator?.stop();
});

testExceptOn('vault', 'HashiCorp Vault has no detailed listing (the operator reads each path there)')('each drift check of a folder is one detailed LIST and no metadata read per path; an out-of-band change is restored by the first check after it', async () => {
  for (const source of SOURCES) {
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, source, { 'vault-sync.io/path': `secret/${ns}/${source}`, 'vault-sync.io/reconcile': `${PERIOD_MS / 1000}s` }, SECRETS) });
  }
  for (const source of SOURCES) for (const name of SECRETS) await waitForMarks(`${ns}/${source}/${name}`);

  // Steady state: at least 3 drift checks of every folder.
  const mark = auditMark();
  const markedAt = Date.now();
  await waitFor(() => SOURCES.every((source) => ours(mark).filter((r) => isDetailedList(r) && folderOf(r) === source).length >= 3), { timeoutMs: 60_000, description: 'three drift checks of every folder' });
  const window = ours(mark);
  const lists = window.filter(isDetailedList);
  expect(window.filter(isMetadataRead)).toEqual([]);
  expect(window.filter((r) => r.operation !== 'list')).toEqual([]); // nothing read or written at rest but the listings
  // One LIST per folder per period: checks fall on each source's own slot, so a window of W holds at most W/P + 1 of them.
  const spanMs = Math.max(...lists.map((r) => r.at)) - markedAt;
  for (const source of SOURCES) expect(lists.filter((r) => folderOf(r) === source).length).toBeLessThanOrEqual(Math.floor(spanMs / PERIOD_MS) + 2);
  // Before: one metadata read per path per period. After: one LIST per folder per period.
  process.stderr.write(`[drift-listing] ${SOURCES.length * SECRETS.length} paths in ${SOURCES.length} folders: ${lists.length} detailed LISTs and 0 metadata reads in ${spanMs} ms (period ${PERIOD_MS} ms)\n`);

  // An out-of-band change (as `vault kv put` sends it) over the operator's value.
  const changedAt = auditMark();
  expect((await vaultHttp(`secret/data/${ns}/app-1/s3`, { body: { data: { value: 'changed by hand' } } })).status).toBe(200);
  await waitForVault(`${ns}/app-1/s3`, (d) => d.data.value === 'value-of-s3' && d.metadata.version === 3, 'the operator\'s value restored');
  // From the change as OpenBao logged it: a LIST logged before it (after the mark) saw the old version.
  const everything = requestsSince(changedAt);
  const put = everything.findIndex((r) => r.byRoot && r.path === `secret/data/${ns}/app-1/s3`);
  expect(put).toBeGreaterThanOrEqual(0);
  const after = everything.slice(put + 1).filter((r) => r.displayName === `token-${displayName}` && r.path.includes(`/${ns}/`));
  const restore = after.findIndex((r) => r.operation !== 'list' && r.path === `secret/data/${ns}/app-1/s3`);
  expect(restore).toBeGreaterThanOrEqual(0);
  // The first drift check of the folder after the change found it: one LIST, then the write (no metadata read).
  expect(after.slice(0, restore).filter((r) => isDetailedList(r) && folderOf(r) === 'app-1')).toHaveLength(1);
  expect(after.slice(0, restore + 1).filter((r) => r.path.includes(`/${ns}/app-1/`) && !isDetailedList(r)).map((r) => `${r.operation} ${r.path}`)).toEqual([`update secret/data/${ns}/app-1/s3`]);
  expect(after.filter(isMetadataRead)).toEqual([]);
});

testExceptOn('vault', 'HashiCorp Vault has no detailed listing (a delete reads each path\'s metadata there)')('deleting a source of 10 paths in one folder: one detailed LIST and 10 deletes (11 requests; 20 with a metadata read per path)', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `d${i}`);
  for (const name of names) await createSecret(ns, name, { value: `value-of-${name}` });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'gone', { 'vault-sync.io/path': `secret/${ns}/gone` }, names) });
  for (const name of names) await waitForMarks(`${ns}/gone/${name}`);
  await waitFor(async () => (await apps.readNamespacedDeployment({ namespace: ns, name: 'gone' })).metadata?.finalizers?.length, { timeoutMs: 20_000, description: 'the finalizer on the source' });

  const mark = auditMark();
  await apps.deleteNamespacedDeployment({ namespace: ns, name: 'gone' });
  await waitFor(async () => (await Promise.all(names.map((name) => vaultHttp(`secret/metadata/${ns}/gone/${name}`)))).every((res) => res.status === 404), { timeoutMs: 20_000, description: 'the 10 paths deleted' });
  await waitFor(async () => (await apps.readNamespacedDeployment({ namespace: ns, name: 'gone' }).then(() => false, () => true)), { timeoutMs: 20_000, description: 'the source gone' });
  const requests = ours(mark).filter((r) => r.path.includes(`/${ns}/gone`));
  expect(requests.filter(isDetailedList)).toHaveLength(1);
  expect(requests.filter((r) => r.operation === 'delete')).toHaveLength(10);
  expect(requests.map((r) => `${r.operation} ${r.path}`).filter((r) => !r.startsWith('delete ') && !r.startsWith('list '))).toEqual([]);
  expect(requests).toHaveLength(11);
  expect(await vaultRead(`${ns}/gone/d0`)).toBeUndefined();
});

testExceptOn('vault', 'HashiCorp Vault has no scan (the operator lists each folder there)')('with scans: 4 sources below one namespace cost one SCAN of the namespace a period (no listing, no metadata read); an out-of-band change is restored by the scans after it', async () => {
  const scanNs = await freshNamespace('drift-scan');
  const scanName = `drift-scan-${randomBytes(3).toString('hex')}`;
  const created = await vaultHttp('auth/token/create', { body: { policies: [env.vaultKubernetesAuth.policy], display_name: scanName, ttl: '2h' } });
  const token = created.json?.auth?.client_token;
  expect(typeof token).toBe('string');
  const scanConfig = loadConfig([`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=token', `--vault-token=${token}`, `--watch-namespaces=${scanNs}`, '--cluster-name=e2e-scan'], { KUBECONFIG: env.kubeconfigPath });
  const scanning = startOperator(scanConfig, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  try {
    await scanning.ready;
    const sources = ['app-0', 'app-1', 'app-2', 'app-3'];
    const secrets = ['s0', 's1', 's2', 's3'];
    for (const name of secrets) await createSecret(scanNs, name, { value: `value-of-${name}` });
    for (const source of sources) {
      await apps.createNamespacedDeployment({ namespace: scanNs, body: deploymentUsing(scanNs, source, { 'vault-sync.io/path': `secret/${scanNs}/${source}`, 'vault-sync.io/reconcile': `${PERIOD_MS / 1000}s` }, secrets) });
    }
    for (const source of sources) for (const name of secrets) await waitForMarks(`${scanNs}/${source}/${name}`);
    const theirs = (mark: number) => requestsSince(mark).filter((r) => r.displayName === `token-${scanName}` && r.path.includes(`/${scanNs}`));
    const isScan = (r: AuditedRequest) => r.operation === 'scan' && r.path.replace(/\/$/, '') === `secret/detailed-metadata/${scanNs}`;

    // Steady state: at least 3 scans of the namespace's root.
    const mark = auditMark();
    const markedAt = Date.now();
    await waitFor(() => theirs(mark).filter(isScan).length >= 3, { timeoutMs: 60_000, description: 'three drift scans of the namespace' });
    const window = theirs(mark);
    const scans = window.filter(isScan);
    expect(window.filter((r) => !isScan(r))).toEqual([]); // no listing, no metadata read, nothing written at rest
    // One scan per period for all 4 sources (their slots aligned on the root): a window of W holds at most W/P + 1.
    const spanMs = Math.max(...scans.map((r) => r.at)) - markedAt;
    expect(scans.length).toBeLessThanOrEqual(Math.floor(spanMs / PERIOD_MS) + 2);
    process.stderr.write(`[drift-scan] ${sources.length * secrets.length} paths in ${sources.length} folders below one namespace: ${scans.length} scans and nothing else in ${spanMs} ms (period ${PERIOD_MS} ms)\n`);

    const changedAt = auditMark();
    expect((await vaultHttp(`secret/data/${scanNs}/app-2/s1`, { body: { data: { value: 'changed by hand' } } })).status).toBe(200);
    await waitForVault(`${scanNs}/app-2/s1`, (d) => d.data.value === 'value-of-s1' && d.metadata.version === 3, "the operator's value restored");
    const everything = requestsSince(changedAt);
    const put = everything.findIndex((r) => r.byRoot && r.path === `secret/data/${scanNs}/app-2/s1`);
    expect(put).toBeGreaterThanOrEqual(0);
    const after = everything.slice(put + 1).filter((r) => r.displayName === `token-${scanName}` && r.path.includes(`/${scanNs}`));
    const restore = after.findIndex((r) => r.operation === 'update' && r.path === `secret/data/${scanNs}/app-2/s1`);
    expect(restore).toBeGreaterThanOrEqual(0);
    // Found by a scan after the change (a scan logged just after the write may have been answered before it: at most two).
    const scansBefore = after.slice(0, restore).filter(isScan).length;
    expect(scansBefore).toBeGreaterThanOrEqual(1);
    expect(scansBefore).toBeLessThanOrEqual(2);
    expect(after.slice(0, restore).filter((r) => !isScan(r))).toEqual([]);
  } finally {
    await scanning.stop();
  }
});
