// Hostile input, against the real apiserver and OpenBao: every annotation an attacker (a tenant who may
// annotate objects in their own namespace) was seen to use gets a Warning Event and a VaultSync condition
// naming the object and the problem; the good sources beside them keep syncing; and OpenBao's audit log shows
// that no request of this operator left the tenant's prefixes or touched sys/ (beyond its own token lookup
// and mount detection, listed below).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startOperator, type RunningOperator } from '../../src/operator.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, mergePatch, vaultExists, vaultRead, waitForEvent, waitForVault } from './helpers/objects.js';
import { auditMark, requestsSince, type AuditedRequest } from './helpers/vault-audit.js';

const { kc, core, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);
const suffix = randomBytes(3).toString('hex');
/** The token's display name in the audit log: this operator's requests, not those of other test files. */
const displayName = `hostile-${suffix}`;
const DATA_NS = 'data';
const JS_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty'];

let ns: string; // the tenant ("team-a")
let victim: string; // another tenant ("team-b"), whose Vault data must stay out of reach
let operator: RunningOperator;
let mark: number;

interface Case {
  reason: string;
  name: string;
  namespace: () => string;
  kind?: 'Deployment' | 'Secret';
  annotations: () => Record<string, string>;
  secrets?: string[];
  event: 'Refused' | 'SyncFailed';
  code: string;
  says: () => string | RegExp;
}

const absentNames = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ name: `absent-${i}` })));

const cases: Case[] = [
  { reason: 'traversal with backslashes into another tenant', name: 'bs-tenant', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/x\\..\\..\\${victim}/p` }), event: 'Refused', code: 'InvalidPath', says: () => 'contains the character "\\\\"' },
  { reason: 'traversal with backslashes into sys/', name: 'bs-sys', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/x\\..\\..\\..\\sys/policy/evil` }), event: 'Refused', code: 'InvalidPath', says: () => 'contains the character "\\\\"' },
  { reason: 'traversal with backslashes into another mount', name: 'bs-mount', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/x\\..\\..\\..\\cubbyhole/x` }), event: 'Refused', code: 'InvalidPath', says: () => 'contains the character "\\\\"' },
  { reason: 'percent-encoded dot segments', name: 'pct-dots', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/%2e%2e/%2e%2e/${victim}/p` }), event: 'Refused', code: 'InvalidPath', says: () => 'contains the character "%"' },
  { reason: 'plain dot segments', name: 'dot-dots', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/../${victim}/p` }), event: 'Refused', code: 'InvalidPath', says: () => 'path traversal' },
  { reason: 'a fullwidth solidus look-alike', name: 'fullwidth', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}\uFF0F..\uFF0F${victim}/p` }), event: 'Refused', code: 'InvalidPath', says: () => '\\u{FF0F}' },
  { reason: 'one-dot-leader look-alikes of ..', name: 'dot-leader', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/\u2024\u2024/${victim}` }), event: 'Refused', code: 'InvalidPath', says: () => '\\u{2024}' },
  { reason: 'a next-line character (U+0085)', name: 'nel', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/a\u0085b` }), event: 'Refused', code: 'InvalidPath', says: () => '\\u{0085}' },
  { reason: 'a right-to-left override (U+202E)', name: 'rlo', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/a\u202Eb` }), event: 'Refused', code: 'InvalidPath', says: () => '\\u{202E}' },
  { reason: 'a zero-width space (U+200B)', name: 'zwsp', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/a\u200Bb` }), event: 'Refused', code: 'InvalidPath', says: () => '\\u{200B}' },
  { reason: 'the KV metadata endpoint', name: 'metadata-api', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/metadata/${ns}/x` }), event: 'Refused', code: 'InvalidPath', says: () => 'KV API endpoint "metadata/"' },
  { reason: '10,000 Secret names in vault-sync.io/secrets', name: 'ten-thousand', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/ten-thousand`, 'vault-sync.io/secrets': absentNames(10_000) }), event: 'SyncFailed', code: 'TooManySecrets', says: () => "vault-sync.io/secrets: lists 10000 Secrets, more than the 1000 one source may sync (the operator's --max-secrets-per-source)" },
  { reason: '1,001 Secret names in vault-sync.io/secrets (one more than --max-secrets-per-source)', name: 'one-too-many', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/one-too-many`, 'vault-sync.io/secrets': absentNames(1001) }), event: 'SyncFailed', code: 'TooManySecrets', says: () => "vault-sync.io/secrets: lists 1001 Secrets, more than the 1000 one source may sync (the operator's --max-secrets-per-source)" },
  { reason: '1,000 absent Secrets (at the cap): one bounded message, in byte order', name: 'at-the-cap', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/at-the-cap`, 'vault-sync.io/secrets': absentNames(1000) }), event: 'SyncFailed', code: 'SecretNotFound', says: () => /^Secret "absent-0" does not exist; Secret "absent-1" does not exist; Secret "absent-10" does not exist; Secret "absent-100" does not exist; Secret "absent-101" does not exist; …and 995 more$/ },
  { reason: 'a Secret of 1,000 keys', name: 'many-keys', kind: 'Secret', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/${ns}/many-keys` }), event: 'SyncFailed', code: 'TooManyKeys', says: () => `the data for secret/${ns}/many-keys has 1000 keys, more than the 480 one Vault write may hold` },
  { reason: 'namespace "data" writing another tenant\'s path in the API form', name: `escape-${suffix}`, namespace: () => DATA_NS, annotations: () => ({ 'vault-sync.io/path': `secret/data/${victim}/p` }), secrets: ['good'], event: 'Refused', code: 'OutsideTenantPrefix', says: () => 'outside what namespace "data" may write to (secret/data/data/)' },
  { reason: 'a path beside a grant of secret/apps-<ns>/data/ (not inside it)', name: 'beside-grant', namespace: () => ns, annotations: () => ({ 'vault-sync.io/path': `secret/apps-${ns}/x` }), secrets: ['good'], event: 'Refused', code: 'OutsideTenantPrefix', says: () => `(secret/${ns}/, secret/apps-${ns}/data/)` },
];

/** POSTs a Secret as raw JSON: client-node's serializer would drop a `__proto__` key before it left. */
async function createSecretRaw(namespace: string, json: string): Promise<void> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const options: https.RequestOptions = { method: 'POST', hostname: server.hostname, port: server.port, path: `/api/v1/namespaces/${namespace}/secrets`, headers: { 'content-type': 'application/json' } };
  await kc.applyToHTTPSOptions(options);
  const status = await new Promise<number>((resolve, reject) => {
    const req = (server.protocol === 'https:' ? https : http).request(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(json);
  });
  if (status !== 201) throw new Error(`creating the Secret answered HTTP ${status}`);
}

async function startTokenOperator(namespaces: string[]): Promise<RunningOperator> {
  const env = loadTestEnv();
  const created = await vaultHttp('auth/token/create', { body: { policies: [env.vaultKubernetesAuth.policy], display_name: displayName, ttl: '2h' } });
  const token = created.json?.auth?.client_token;
  if (typeof token !== 'string') throw new Error(`could not create the operator's token: HTTP ${created.status}`);
  const config = loadConfig([`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=token', `--vault-token=${token}`, `--watch-namespaces=${namespaces.join(',')}`, '--cluster-name=e2e'], { KUBECONFIG: env.kubeconfigPath });
  process.env.KUBECONFIG = env.kubeconfigPath;
  const started = startOperator(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  try {
    await started.ready;
  } catch (error) {
    await started.stop();
    throw error;
  }
  return started;
}

async function vaultSyncOf(namespace: string, kind: string, name: string) {
  return (await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace, plural: 'vaultsyncs', name: `${kind.toLowerCase()}-${name}` }).catch(() => undefined)) as
    | { spec?: { path?: string }; status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } }
    | undefined;
}

beforeAll(async () => {
  ns = await freshNamespace('team-a');
  victim = await freshNamespace('team-b');
  await core.createNamespace({ body: { metadata: { name: DATA_NS, labels: { 'vso-e2e': 'true' } } } }).catch((error: { code?: number }) => {
    if (error.code !== 409) throw error; // "data" is a fixed name: it may exist from an earlier file or run
  });
  // The victim's data, written by someone else: it must stay untouched.
  expect((await vaultHttp(`secret/data/${victim}/p`, { body: { data: { owner: 'team-b' } } })).status).toBe(200);
  await custom.createClusterCustomObject({
    group: 'vault-sync.io',
    version: 'v1alpha1',
    plural: 'vaultsyncpolicies',
    body: { apiVersion: 'vault-sync.io/v1alpha1', kind: 'VaultSyncPolicy', metadata: { name: `apps-data-${ns}` }, spec: { namespaces: [ns], allowedPathPrefixes: [`secret/apps-${ns}/data/`] } },
  });
  mark = auditMark();
  operator = await startTokenOperator([ns, victim, DATA_NS]);

  await createSecret(ns, 'good', { token: 'value-of-good-1' });
  await createSecret(DATA_NS, 'good', { token: 'value-of-data-good' });
  const manyKeys = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, `v${i}`]));
  await createSecret(ns, 'many-keys', manyKeys, { 'vault-sync.io/path': `secret/${ns}/many-keys` });
  const data = JS_KEYS.map((k) => `${JSON.stringify(k)}:${JSON.stringify(Buffer.from(`value of ${k}`).toString('base64'))}`).join(',');
  await createSecretRaw(ns, `{"metadata":{"name":"js-keys","namespace":${JSON.stringify(ns)},"annotations":{"vault-sync.io/path":"secret/${ns}/js-keys"}},"data":{${data}}}`);

  for (const c of cases) {
    if (c.kind === 'Secret') continue;
    await apps.createNamespacedDeployment({ namespace: c.namespace(), body: deploymentUsing(c.namespace(), c.name, c.annotations(), c.secrets ?? []) });
  }
  // The good sources beside the hostile ones.
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'healthy', { 'vault-sync.io/path': `secret/${ns}/healthy` }, ['good']) });
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'granted', { 'vault-sync.io/path': `secret/apps-${ns}/data/x` }, ['good']) });
  await apps.createNamespacedDeployment({ namespace: DATA_NS, body: deploymentUsing(DATA_NS, `own-${suffix}`, { 'vault-sync.io/path': `secret/data/data/own-${suffix}` }, ['good']) });
});

afterAll(async () => {
  await operator?.stop();
  await custom.deleteClusterCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', plural: 'vaultsyncpolicies', name: `apps-data-${ns}` }).catch(() => undefined);
});

describe.each(cases)('$reason', (c) => {
  test('a Warning Event and a Ready=False condition name the object and the problem; nothing is written', async () => {
    const kind = c.kind ?? 'Deployment';
    const event = await waitForEvent(c.namespace(), c.name, c.event);
    expect(event.type).toBe('Warning');
    expect(event.involvedObject).toMatchObject({ kind, name: c.name, namespace: c.namespace() });
    expect(event.message).toEqual(expect.stringMatching(typeof c.says() === 'string' ? escapeRegExp(c.says() as string) : c.says()));
    expect(event.message!.length).toBeLessThanOrEqual(1024);
    expect(event.message).not.toMatch(/[\u0000-\u001f\u0085\u200b\u202e]/); // hostile characters are shown escaped, never raw
    expect(event.message).not.toMatch(/value-of-|value of /);

    const record = await waitFor(async () => {
      const vs = await vaultSyncOf(c.namespace(), kind, c.name);
      const ready = vs?.status?.conditions?.find((x) => x.type === 'Ready');
      return ready?.reason === c.code ? { vs, ready } : undefined;
    }, { timeoutMs: 20_000, description: `the VaultSync condition of ${c.name}` });
    expect(record.ready).toMatchObject({ status: 'False', reason: c.code, message: event.message });
    expect(record.vs?.spec?.path ?? '').not.toMatch(/[\u0000-\u001f\u0085\u200b\u202e]/);
  });
});

test('the good sources beside them sync, and keep syncing', async () => {
  await waitForVault(`${ns}/healthy/good`, (d) => d.data.token === 'value-of-good-1');
  await waitForVault(`apps-${ns}/data/x/good`, (d) => d.data.token === 'value-of-good-1');
  // Namespace "data" writes under its own key segment data/, reached through the API form secret/data/data/…
  await waitForVault(`data/own-${suffix}/good`, (d) => d.data.token === 'value-of-data-good');
  // The same string in the status, in the Event and (with its API segment) on the wire: secret/data/data/own-…
  const shown = `secret/data/data/own-${suffix}/good`;
  const status = (await waitFor(async () => {
    const vs = (await vaultSyncOf(DATA_NS, 'Deployment', `own-${suffix}`)) as { status?: { entries?: Array<{ path: string }> } } | undefined;
    return vs?.status?.entries?.length ? vs.status.entries : undefined;
  }, { description: 'the status entries of the data namespace source' }));
  expect(status.map((e) => e.path)).toEqual([shown]);
  expect((await waitForEvent(DATA_NS, `own-${suffix}`, 'Synced')).message).toContain(`wrote ${shown}`);
  await core.patchNamespacedSecret({ namespace: ns, name: 'good', body: { stringData: { token: 'value-of-good-2' } } }, mergePatch);
  await waitForVault(`${ns}/healthy/good`, (d) => d.data.token === 'value-of-good-2');
});

test('key names that are JavaScript object properties sync like any other key, and read back from OpenBao', async () => {
  const read = await waitForVault(`${ns}/js-keys`);
  expect(new Map(Object.entries(read.data))).toEqual(new Map(JS_KEYS.map((k) => [k, `value of ${k}`])));
  const vs = await vaultSyncOf(ns, 'Secret', 'js-keys');
  expect(vs?.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Synced' });
});

test('nothing was written for a refused source: no claimed path, and the victim\'s data is untouched', async () => {
  for (const c of cases) await waitForEvent(c.namespace(), c.name, c.event);
  expect(await vaultExists(`${ns}/many-keys`)).toBe(false); // refused before sending: no claimed, empty path
  expect(await vaultExists(`${ns}/ten-thousand`)).toBe(false);
  expect(await vaultExists(`${ns}/at-the-cap`)).toBe(false);
  expect(await vaultExists(`${ns}/one-too-many`)).toBe(false);
  expect((await vaultRead(`${victim}/p`))?.data).toEqual({ owner: 'team-b' });
  expect((await vaultRead(`${victim}/p`))?.metadata.version).toBe(1);
});

test('OpenBao\'s audit log: every request of this operator stayed inside its tenants\' prefixes; sys/ only for its own mount detection', async () => {
  await waitForVault(`${ns}/healthy/good`, (d) => d.data.token === 'value-of-good-2');
  const mine = await waitFor(() => {
    const requests = requestsSince(mark).filter((r) => r.displayName === `token-${displayName}`);
    return requests.length > 0 ? requests : undefined;
  }, { description: 'this operator\'s requests in the audit log' });
  // The operator's own requests outside KV, with its own token, listed explicitly.
  const operatorOwn = new Set(['auth/token/lookup-self', 'sys/internal/ui/mounts/secret']);
  const insideATenant = (r: AuditedRequest) =>
    [ns, `apps-${ns}/data`, `data/own-${suffix}`].flatMap((prefix) => ['data', 'metadata', 'detailed-metadata'].map((api) => `secret/${api}/${prefix}/`)).some((prefix) => r.path.startsWith(prefix));
  const outside = mine.filter((r) => !operatorOwn.has(r.path) && !insideATenant(r));
  expect(mine.some((r) => r.path === `secret/data/data/own-${suffix}/good`)).toBe(true); // the wire form of the status path
  expect(outside).toEqual([]);
  expect(mine.filter((r) => r.path.startsWith('sys/') && !operatorOwn.has(r.path))).toEqual([]);
  expect(mine.filter((r) => r.path.includes(victim))).toEqual([]);
  expect(mine.some((r) => r.path === `secret/data/${ns}/healthy/good`)).toBe(true); // the filter did see the operator's KV traffic
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
