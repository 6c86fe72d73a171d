// The record is written compare-and-swap, and what it names is checked against the source's scope (ADR 0007):
// a VaultSync status edited while the operator runs is never overwritten from the operator's stale copy, and
// the paths it was edited to name outside the namespace's prefix are never requested (OpenBao's audit log).
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { createSecret, deploymentUsing, eventsOf, mergePatch, waitForEvent, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';
import { auditMark, requestsSince } from './helpers/vault-audit.js';

const { kc, core, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);
const vaultSync = { group: 'vault-sync.io', version: 'v1alpha1', plural: 'vaultsyncs' };

test("a status edited to name another tenant's path and sys/: the operator's stale write is refused (409), it decides again from the edited record, and never requests those paths", async () => {
  const ns = await freshNamespace('fence');
  const other = await freshNamespace('fence-other');
  expect((await vaultHttp(`secret/data/${other}/x`, { body: { data: { theirs: 'x' } } })).status).toBe(200);
  const log: string[] = [];
  const operator = await runOperator([ns], [], (line) => void log.push(line));
  try {
    await createSecret(ns, 'db', { value: 'v1' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web` }, ['db']) });
    await waitForVault(`${ns}/web/db`, (d) => d.data.value === 'v1');
    await waitFor(() => operator.queue.depth === 0 && operator.queue.inFlight === 0, { description: 'the work queue idle' });

    // The edit: anyone with write on vaultsyncs/status can make it.
    const current = (await custom.getNamespacedCustomObject({ ...vaultSync, namespace: ns, name: 'deployment-web' })) as { status: { entries: unknown[] } };
    const tampered = [
      { path: `secret/${other}/x`, hash: 'h', version: 1 },
      { path: 'sys/policies/acl/default', hash: 'h', version: 1 },
    ];
    await custom.patchNamespacedCustomObjectStatus(
      { ...vaultSync, namespace: ns, name: 'deployment-web', body: { status: { entries: [...current.status.entries, ...tampered], intents: [{ path: `secret/${other}/y`, version: 1, hash: 'h' }] } } },
      mergePatch,
    );
    const mark = auditMark();
    await core.patchNamespacedSecret({ namespace: ns, name: 'db', body: { stringData: { value: 'v2' } } }, mergePatch);
    await waitForVault(`${ns}/web/db`, (d) => d.data.value === 'v2');
    await waitForEvent(ns, 'web', 'OutsideGrant');
    expect(log.filter((line) => line.includes('changed since it was read')).length).toBeGreaterThanOrEqual(1);

    await apps.deleteNamespacedDeployment({ namespace: ns, name: 'web' });
    await waitFor(() => apps.readNamespacedDeployment({ namespace: ns, name: 'web' }).then(() => false, (e) => e.code === 404), { description: 'the Deployment gone' });

    const operatorRequests = requestsSince(mark).filter((r) => !r.byRoot);
    expect(operatorRequests.filter((r) => r.path.includes(other) || r.path.startsWith('sys/policies'))).toEqual([]);
    expect(operatorRequests.filter((r) => r.path === `secret/data/${ns}/web/db` && r.operation === 'update').length).toBe(1); // v2, once
    expect((await vaultHttp(`secret/data/${other}/x`)).json.data.data).toEqual({ theirs: 'x' });
    expect((await vaultHttp(`secret/metadata/${ns}/web/db`)).status).toBe(404); // its own path cleaned up
    const messages = (await eventsOf(ns, 'web')).map((e) => e.message ?? '');
    expect(messages.filter((m) => m.includes(other))).toEqual([]);
    expect(messages).toContain(`not touching 3 path(s) this source names or recorded: they are outside what namespace "${ns}" (secret/${ns}/) may reach`);
  } finally {
    await operator.stop();
  }
});

test('data that landed before its marks (marks refused by a proxy) is still the source\'s: a moved path and a deleted source leave nothing behind', async () => {
  const ns = await freshNamespace('fence-intents');
  const proxy = await startFaultProxy({ upstream: loadTestEnv().vaultAddr });
  // Every ownership-marks write fails (5xx) while the data writes pass: the paths land unmarked.
  proxy.setFaults({ serverError: { ratio: 1 }, match: (method, path) => (method === 'POST' || method === 'PUT') && path.startsWith(`/v1/secret/metadata/${ns}/`) });
  const operator = await runOperator([ns], [`--vault-addr=${proxy.url}`, '--vault-max-retries=1']);
  try {
    const recordOf = async (name: string) => ((await custom.getNamespacedCustomObject({ ...vaultSync, namespace: ns, name }).catch(() => undefined)) as { status?: { entries?: Array<{ path: string; marksPending?: boolean }> } } | undefined)?.status;
    const unmarked = async (key: string) => {
      const answer = await vaultHttp(`secret/metadata/${ns}/${key}`);
      return answer.status === 200 && Object.keys(answer.json.data.custom_metadata ?? {}).length === 0;
    };
    await createSecret(ns, 'moving', { k: 'v' }, { 'vault-sync.io/path': `secret/${ns}/before` });
    await createSecret(ns, 'leaving', { k: 'v' }, { 'vault-sync.io/path': `secret/${ns}/leaving` });
    for (const [object, key] of [['secret-moving', 'before'], ['secret-leaving', 'leaving']]) {
      await waitFor(async () => (await recordOf(object))?.entries?.some((e) => e.path === `secret/${ns}/${key}` && e.marksPending) === true, { description: `${key} recorded as landed, marks pending` });
      expect(await unmarked(key)).toBe(true);
    }

    await core.patchNamespacedSecret({ namespace: ns, name: 'moving', body: { metadata: { annotations: { 'vault-sync.io/path': `secret/${ns}/after` } } } }, mergePatch);
    await core.deleteNamespacedSecret({ namespace: ns, name: 'leaving' });
    await waitFor(async () => (await vaultHttp(`secret/metadata/${ns}/before`)).status === 404, { description: 'the moved-away path deleted (unmarked, proved ours by the record)' });
    await waitFor(() => core.readNamespacedSecret({ namespace: ns, name: 'leaving' }).then(() => false, (e) => e.code === 404), { description: 'the deleted source gone' });
    expect((await vaultHttp(`secret/metadata/${ns}/leaving`)).status).toBe(404);
    expect(await eventsOf(ns, 'moving', 'Refused')).toEqual([]);
  } finally {
    await operator.stop();
    await proxy.close();
  }
});
