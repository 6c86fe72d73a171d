// Issue 15, item 6: a bound that protects the operator's resources, not one that refuses real workloads. A
// Deployment whose pod template uses 80 Secrets, and one using 500, sync against the real apiserver and
// OpenBao: every Secret at its own path with its own data, the VaultSync status recording each path once, in
// byte order. Beyond --max-secrets-per-source a source is refused with a SyncFailed Event naming the setting.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, eventsOf } from './helpers/objects.js';
import { runOperator, type TestOperator } from './helpers/operator.js';

const { kc, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);
let ns: string;
let operator: TestOperator;

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
/** Each Secret's data names it, so a value at the wrong path is seen. */
const dataOf = (name: string) => ({ user: `user-of-${name}`, password: `pw-of-${name}` });

beforeAll(async () => {
  ns = await freshNamespace('many-secrets');
  for (const name of [...names('s80', 80), ...names('s500', 500), ...names('over', 11)]) await createSecret(ns, name, dataOf(name));
  // A rate that lets 580 paths land in seconds; the limiter and the fair queue are tested elsewhere.
  operator = await runOperator([ns], ['--vault-rate-limit=200', '--vault-rate-burst=50', '--max-secrets-per-source=600']);
}, 300_000);
afterAll(() => operator?.stop());

/** The keys below a folder in Vault (one LIST), sorted. */
async function listed(folder: string): Promise<string[]> {
  const res = await vaultHttp(`secret/metadata/${folder}/`, { method: 'LIST' });
  return res.status === 200 ? [...(res.json.data.keys as string[])].sort() : [];
}

async function status(name: string) {
  const object = (await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace: ns, plural: 'vaultsyncs', name: `deployment-${name}` }).catch(() => undefined)) as any;
  return object?.status;
}

test.each([
  { name: 'uses-80', prefix: 's80', count: 80 },
  { name: 'uses-500', prefix: 's500', count: 500 },
])('a Deployment whose pod template uses $count Secrets syncs every one of them', async ({ name, prefix, count }) => {
  const secrets = names(prefix, count);
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, name, { 'vault-sync.io/path': `secret/${ns}/${name}` }, secrets) });

  const ready = await waitFor(async () => {
    const s = await status(name);
    return s?.conditions?.find((c: any) => c.type === 'Ready' && c.status === 'True' && c.reason === 'Synced') ? s : undefined;
  }, { timeoutMs: 300_000, description: `${name} Synced` });

  // Every path is in Vault, and nothing else under the source's folder.
  expect(await listed(`${ns}/${name}`)).toEqual(secrets);
  // Each with its own Secret's data (read back one by one: 580 reads of the real store).
  const wrong: string[] = [];
  for (const secret of secrets) {
    const read = await vaultHttp(`secret/data/${ns}/${name}/${secret}`);
    const sorted = (data: Record<string, string>) => JSON.stringify(Object.entries(data).sort());
    if (read.status !== 200 || sorted(read.json.data.data) !== sorted(dataOf(secret))) wrong.push(secret);
  }
  expect(wrong).toEqual([]);
  // The status records each path once, sorted; nothing left in flight.
  expect(ready.entries.map((e: { path: string }) => e.path)).toEqual(secrets.map((s) => `secret/${ns}/${name}/${s}`));
  expect([ready.intents, ready.failures]).toEqual([[], []]);
  expect((await eventsOf(ns, name, 'SyncFailed')).length).toBe(0);
}, 600_000);

test('a Deployment using more Secrets than --max-secrets-per-source is refused with an Event naming the setting, and nothing is written', async () => {
  // The setting is 600 here: 601 distinct Secrets used (a Secret used twice counts once).
  const used = [...names('s500', 500), ...names('s80', 80), ...names('over', 11), ...names('s500', 10)];
  const distinct = new Set(used).size;
  expect(distinct).toBe(591);
  const tooMany = [...used, ...Array.from({ length: 10 }, (_, i) => `absent-${i}`)];
  await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'too-many', { 'vault-sync.io/path': `secret/${ns}/too-many` }, tooMany) });
  const event = await waitFor(async () => (await eventsOf(ns, 'too-many', 'SyncFailed'))[0], { timeoutMs: 120_000, description: 'the SyncFailed Event of too-many' });
  expect(event.message).toBe("the pod template uses 601 Secrets, more than the 600 one source may sync (the operator's --max-secrets-per-source); list the ones to sync in vault-sync.io/secrets");
  expect(await listed(`${ns}/too-many`)).toEqual([]);
});
