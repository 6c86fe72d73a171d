// Isolation at deletion and in records, against the real apiserver and OpenBao: a tenant ("team-a") that
// re-points a synced source at another tenant's prefix and deletes it, or edits its VaultSync status to list
// another tenant's path and a sys/ path, cannot make the operator (nor `plan`) send a single request outside
// team-a's grant; the same on a KV version 1 mount (where a read would return the data). OpenBao's audit log
// is the witness. No Event in team-a says anything of team-b's paths beyond echoing the annotation team-a
// wrote itself. The adoption grant matches like the tenancy grants, in both path forms.
import { randomBytes } from 'node:crypto';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startOperator, type RunningOperator } from '../../src/operator.js';
import { makePlan } from '../../src/plan/command.js';
import type { SourcePlan } from '../../src/plan/report.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, vaultExists, vaultRead, waitForEvent, waitForVault } from './helpers/objects.js';
import { auditMark, requestsSince, type AuditedRequest } from './helpers/vault-audit.js';

const { kc, core, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);
const env = loadTestEnv();
const suffix = randomBytes(3).toString('hex');
/** The token's display name in the audit log: this file's operator (and plan), not other test files'. */
const displayName = `scope-${suffix}`;
const kv1 = `kv1-scope-${suffix}`;
const policyName = `scope-${suffix}`;

let ns: string; // the tenant ("team-a")
let victim: string; // another tenant ("team-b")
let config: Config;
let operator: RunningOperator | undefined;
let mark: number;

const GROUP = { group: 'vault-sync.io', version: 'v1alpha1' };

async function kv1Read(key: string): Promise<Record<string, unknown> | undefined> {
  const res = await vaultHttp(`${kv1}/${key}`);
  return res.status === 200 ? res.json.data : undefined;
}

function start(): Promise<RunningOperator> {
  const started = startOperator(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  return started.ready.then(
    () => started,
    async (error) => {
      await started.stop();
      throw error;
    },
  );
}

/** This file's requests (operator and plan: the same token) since the mark. */
function ours(): AuditedRequest[] {
  return requestsSince(mark).filter((r) => r.displayName === `token-${displayName}`);
}

async function vaultSyncEntries(name: string): Promise<Array<{ path: string; hash: string; version?: number }>> {
  const vs = (await custom.getNamespacedCustomObject({ ...GROUP, namespace: ns, plural: 'vaultsyncs', name: `deployment-${name}` })) as { status?: { entries?: Array<{ path: string; hash: string; version?: number }> } };
  return vs.status?.entries ?? [];
}

beforeAll(async () => {
  ns = await freshNamespace('team-a');
  victim = await freshNamespace('team-b');
  expect((await vaultHttp(`sys/mounts/${kv1}`, { body: { type: 'kv', options: { version: '1' } } })).status).toBe(204);
  // team-b's data, written by someone else, unmarked: a read on the KV v1 mount would return it.
  expect((await vaultHttp(`secret/data/${victim}/p/good`, { body: { data: { owner: 'team-b' } } })).status).toBe(200);
  expect((await vaultHttp(`secret/data/${victim}/x`, { body: { data: { owner: 'team-b' } } })).status).toBe(200);
  expect((await vaultHttp(`${kv1}/${victim}/p/good`, { body: { owner: 'team-b' } })).status).toBe(204);
  // Unmarked data that team-a may adopt, one for each path form.
  expect((await vaultHttp(`secret/data/legacy-${ns}/app/good`, { body: { data: { old: 'yes' } } })).status).toBe(200);
  expect((await vaultHttp(`secret/data/legacy2-${ns}/app/good`, { body: { data: { old: 'yes' } } })).status).toBe(200);

  await custom.createClusterCustomObject({
    ...GROUP,
    plural: 'vaultsyncpolicies',
    body: {
      apiVersion: 'vault-sync.io/v1alpha1',
      kind: 'VaultSyncPolicy',
      metadata: { name: `scope-${ns}` },
      spec: {
        namespaces: [ns],
        allowedPathPrefixes: [`secret/legacy-${ns}/`, `secret/data/legacy2-${ns}/`, `${kv1}/{namespace}/`],
        // The API form covers the plain path, and the plain form the API path, as in allowedPathPrefixes.
        adoptPathPrefixes: [`secret/data/legacy-${ns}/`, `secret/legacy2-${ns}/`],
      },
    },
  });

  const policy = `${env.vaultKubernetesAuth.policy}`;
  const kv1Policy = `path "${kv1}/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n`;
  expect((await vaultHttp(`sys/policies/acl/${policyName}`, { method: 'PUT', body: { policy: kv1Policy } })).status).toBe(204);
  const created = await vaultHttp('auth/token/create', { body: { policies: [policy, policyName], display_name: displayName, ttl: '2h' } });
  const token = created.json?.auth?.client_token;
  if (typeof token !== 'string') throw new Error(`could not create the operator's token: HTTP ${created.status}`);
  config = loadConfig([`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=token', `--vault-token=${token}`, `--watch-namespaces=${ns},${victim}`, '--cluster-name=e2e', `--vault-kv-mounts=secret,${kv1}`], { KUBECONFIG: env.kubeconfigPath });
  process.env.KUBECONFIG = env.kubeconfigPath;

  mark = auditMark();
  operator = await start();
  await createSecret(ns, 'good', { token: 'value-of-good' });
  for (const [name, path] of [
    ['repoint', `secret/${ns}/repoint`],
    ['tampered', `secret/${ns}/tampered`],
    ['on-kv1', `${kv1}/${ns}/on-kv1`],
    ['adopt-api-prefix', `secret/legacy-${ns}/app`],
    ['adopt-api-path', `secret/data/legacy2-${ns}/app`],
  ]) {
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, name, { 'vault-sync.io/path': path }, ['good']) });
  }
  await waitForVault(`${ns}/repoint/good`);
  await waitForVault(`${ns}/tampered/good`);
  await waitFor(async () => (await kv1Read(`${ns}/on-kv1/good`))?.token === 'value-of-good', { timeoutMs: 20_000, description: 'the source on the KV v1 mount' });
});

afterAll(async () => {
  await operator?.stop();
  await custom.deleteClusterCustomObject({ ...GROUP, plural: 'vaultsyncpolicies', name: `scope-${ns}` }).catch(() => undefined);
});

test('adoptPathPrefixes in the API form (secret/data/legacy-…/) covers the plain path, and the plain form covers the API path', async () => {
  for (const [name, key] of [['adopt-api-prefix', `legacy-${ns}/app/good`], ['adopt-api-path', `legacy2-${ns}/app/good`]]) {
    const event = await waitForEvent(ns, name, 'Adopted');
    expect(event.message).toContain(`took over secret/${key}`);
    expect((await vaultRead(key))?.data).toEqual({ token: 'value-of-good' });
  }
});

test('a source re-pointed at another tenant\'s prefix is refused; on a KV v1 mount too', async () => {
  await apps.patchNamespacedDeployment({ namespace: ns, name: 'repoint', body: { metadata: { annotations: { 'vault-sync.io/path': `secret/${victim}/p` } } } }, mergePatch);
  await apps.patchNamespacedDeployment({ namespace: ns, name: 'on-kv1', body: { metadata: { annotations: { 'vault-sync.io/path': `${kv1}/${victim}/p` } } } }, mergePatch);
  expect((await waitForEvent(ns, 'repoint', 'Refused')).message).toContain(`the Vault path "secret/${victim}/p/good" is outside what namespace "${ns}" may write to`);
  expect((await waitForEvent(ns, 'on-kv1', 'Refused')).message).toContain(`the Vault path "${kv1}/${victim}/p/good" is outside what namespace "${ns}" may write to`);
});

test('deleting a re-pointed source on the KV v1 mount deletes its own path and never reads team-b\'s', async () => {
  await waitForEvent(ns, 'on-kv1', 'Refused');
  await apps.deleteNamespacedDeployment({ namespace: ns, name: 'on-kv1' });
  const deleted = await waitForEvent(ns, 'on-kv1', 'Deleted');
  expect(deleted.message).toBe(`source deleted; deleted from Vault: ${kv1}/${ns}/on-kv1/good`);
  const outside = await waitForEvent(ns, 'on-kv1', 'OutsideGrant');
  expect(outside.message).toBe(`not touching 1 path(s) this source names or recorded: they are outside what namespace "${ns}" (secret/${ns}/, secret/legacy-${ns}/, secret/legacy2-${ns}/, ${kv1}/${ns}/) may reach`);
  expect(await kv1Read(`${ns}/on-kv1/good`)).toBeUndefined();
  expect(await kv1Read(`${victim}/p/good`)).toEqual({ owner: 'team-b' });
});

describe('a tampered VaultSync status and a re-pointed source, deleted while the operator is down, then planned and cleaned up', () => {
  let plans: Map<string, SourcePlan>;

  beforeAll(async () => {
    await waitForEvent(ns, 'repoint', 'Refused');
    await waitForEvent(ns, 'tampered', 'Synced'); // recorded in its status before the Event
    await operator!.stop();
    operator = undefined;
    // Anyone with write on vaultsyncs/status in team-a can do this.
    const entries = await vaultSyncEntries('tampered');
    expect(entries.map((e) => e.path)).toEqual([`secret/${ns}/tampered/good`]);
    const forged = [...entries, { path: `secret/${victim}/x`, hash: entries[0].hash, version: 1 }, { path: 'sys/policy/x', hash: entries[0].hash, version: 1 }];
    await custom.patchNamespacedCustomObjectStatus({ ...GROUP, namespace: ns, plural: 'vaultsyncs', name: 'deployment-tampered', body: { status: { entries: forged } } }, mergePatch);
    expect((await vaultSyncEntries('tampered')).map((e) => e.path)).toEqual([`secret/${ns}/tampered/good`, `secret/${victim}/x`, 'sys/policy/x']);
    // The finalizer holds both while the operator is down.
    await apps.deleteNamespacedDeployment({ namespace: ns, name: 'tampered' });
    await apps.deleteNamespacedDeployment({ namespace: ns, name: 'repoint' });

    const report = await makePlan(config, createLogger('silent'), kc);
    plans = new Map(report.sources.map((s) => [s.name, s]));
    operator = await start();
  });

  test('plan: the paths inside the grant are deleted, the rest listed as never touched, without a word on what is there; sys/ is dropped at load', () => {
    expect(plans.get('tampered')?.paths).toEqual([
      { path: `secret/${ns}/tampered/good`, action: 'delete', reason: 'source deleted (every version and the metadata)' },
      { path: `secret/${victim}/x`, action: 'refuse', reason: `outside what namespace "${ns}" (secret/${ns}/, secret/legacy-${ns}/, secret/legacy2-${ns}/, ${kv1}/${ns}/) may reach: never touched` },
    ]);
    expect(plans.get('repoint')?.paths).toEqual([
      { path: `secret/${ns}/repoint/good`, action: 'delete', reason: 'source deleted (every version and the metadata)' },
      { path: `secret/${victim}/p/good`, action: 'refuse', reason: expect.stringMatching(/may reach: never touched$/) },
    ]);
  });

  test('the operator restarted: the sys/ entry is dropped at load with an Event naming no path; each source deletes its own path only', async () => {
    const invalid = await waitForEvent(ns, 'tampered', 'InvalidRecord');
    expect(invalid.type).toBe('Warning');
    expect(invalid.message).toBe('the VaultSync status of this Deployment listed 1 path(s) that are not Vault paths under the allowed KV mounts; they were dropped from its record and nothing is done with them');
    for (const name of ['tampered', 'repoint']) {
      expect((await waitForEvent(ns, name, 'Deleted')).message).toBe(`source deleted; deleted from Vault: secret/${ns}/${name}/good`);
      expect((await waitForEvent(ns, name, 'OutsideGrant')).message).toMatch(/^not touching 1 path\(s\) this source names or recorded: they are outside what namespace "[^"]+" \(.*\) may reach$/);
      expect(await vaultExists(`${ns}/${name}/good`)).toBe(false);
    }
    expect(await vaultRead(`${victim}/x`)).toMatchObject({ data: { owner: 'team-b' }, metadata: { version: 1 } });
    expect(await vaultRead(`${victim}/p/good`)).toMatchObject({ data: { owner: 'team-b' }, metadata: { version: 1 } });
  });
});

test('OpenBao\'s audit log: zero requests of the operator or of plan outside team-a\'s grant (deletes and tampered records included); sys/ only for its own mount lookup', async () => {
  await waitForEvent(ns, 'tampered', 'Deleted');
  await waitForEvent(ns, 'repoint', 'Deleted');
  await waitForEvent(ns, 'on-kv1', 'Deleted');
  const mine = ours();
  const operatorOwn = new Set(['auth/token/lookup-self', 'sys/internal/ui/mounts/secret', `sys/internal/ui/mounts/${kv1}`]);
  const grant = [`${kv1}/${ns}/`, ...[ns, `legacy-${ns}`, `legacy2-${ns}`].flatMap((prefix) => ['data', 'metadata', 'detailed-metadata'].map((api) => `secret/${api}/${prefix}/`))];
  const outside = mine.filter((r) => !operatorOwn.has(r.path) && !grant.some((prefix) => r.path.startsWith(prefix)));
  expect(outside).toEqual([]);
  expect(mine.filter((r) => r.path.includes(victim))).toEqual([]);
  expect(mine.filter((r) => r.path.startsWith('sys/') && !operatorOwn.has(r.path))).toEqual([]);
  // The filter saw the traffic that matters: the deletes of team-a's own paths, on both mounts.
  expect([...new Set(mine.filter((r) => r.operation === 'delete').map((r) => r.path))].sort()).toEqual([`${kv1}/${ns}/on-kv1/good`, `secret/metadata/${ns}/repoint/good`, `secret/metadata/${ns}/tampered/good`]);
});

test('no Event in team-a names team-b\'s paths, except the refusal echoing the annotation team-a wrote; none says whose a path is or whether it exists', async () => {
  await waitForEvent(ns, 'tampered', 'Deleted');
  const events = (await core.listNamespacedEvent({ namespace: ns })).items;
  const naming = events.filter((e) => e.message?.includes(victim));
  expect(naming.map((e) => e.reason)).toEqual(naming.map(() => 'Refused'));
  for (const event of naming) expect(event.message).toMatch(new RegExp(`^the Vault path "[^"]*${victim}[^"]*" is outside what namespace "${ns}" may write to`));
  expect(events.filter((e) => /not deleting|managed by|not managed|owned by/.test(e.message ?? ''))).toEqual([]);
  expect(await eventsOf(ns, 'tampered', 'Refused')).toEqual([]);
});
