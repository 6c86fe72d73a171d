// Leader election and sharding with real operator processes (`node main.js`, as in their pods) against the
// real apiserver and OpenBao: one writer; failover when the leader dies; a graceful stop releases the Lease
// at once; namespace shards, each synced by one replica with its share of the Vault budget.
import { CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { shardOf } from '../../src/kube/leader-election.js';
import { freshNamespace, kubeClients, loadTestEnv, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, mergePatch, waitForVault } from './helpers/objects.js';
import { operatorArgs } from './helpers/operator.js';
import { startOperatorProcess, type OperatorProcess } from './helpers/ops.js';

const LEASE_MS = 6000;
const RENEW_MS = 4000;
const RETRY_MS = 1000;
/** The default --leader-election-takeover-margin. */
const MARGIN_MS = 2000;

const { core, apps, kc } = kubeClients();
const leases = kc.makeApiClient(CoordinationV1Api);
const processes: OperatorProcess[] = [];
afterAll(async () => {
  for (const p of processes) p.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exited));
});
afterEach(() => {
  // On a failure, the operators' own logs say the most.
  for (const p of processes) if (process.env.VSO_TEST_SHOW_LOGS) process.stderr.write(`--- ${p.name}\n${p.logs()}\n`);
});

async function operator(name: string, leaseNamespace: string, leaseName: string, namespaces: string[], extra: string[] = []): Promise<OperatorProcess> {
  const env = loadTestEnv();
  const op = await startOperatorProcess(
    name,
    [
      ...(await operatorArgs(namespaces)),
      '--leader-elect=true',
      `--leader-election-namespace=${leaseNamespace}`,
      `--leader-election-id=${leaseName}`,
      `--leader-election-lease-duration=${LEASE_MS / 1000}s`,
      `--leader-election-renew-deadline=${RENEW_MS / 1000}s`,
      `--leader-election-retry-period=${RETRY_MS / 1000}s`,
      '--log-level=info',
      ...extra,
    ],
    { KUBECONFIG: env.kubeconfigPath },
  );
  processes.push(op);
  return op;
}

const status = async (op: OperatorProcess): Promise<string> => (await op.health()).status;
const waitForRole = (op: OperatorProcess, role: string | string[], timeoutMs = 20_000) =>
  waitFor(async () => [role].flat().includes(await status(op)), { timeoutMs, intervalMs: 100, description: `${op.name} to be ${role} (log: ${op.logPath})` });

async function lease(namespace: string, name: string): Promise<V1Lease> {
  return leases.readNamespacedLease({ namespace, name });
}

async function setSecret(namespace: string, name: string, value: string) {
  await core.patchNamespacedSecret({ namespace, name, body: { stringData: { value } } }, mergePatch);
}

test('two replicas: one writes, the standby makes no Vault call, takes over when the leader dies, and at once when it stops gracefully', async () => {
  const namespace = await freshNamespace('ops-le');
  const leaseNamespace = await freshNamespace('ops-le-lease');
  const leaseName = 'vault-sync-operator';
  const a = await operator('le-a', leaseNamespace, leaseName, [namespace]);
  await waitForRole(a, 'leader');
  const b = await operator('le-b', leaseNamespace, leaseName, [namespace]);
  await waitForRole(b, 'standby');
  expect((await fetch(`${b.url}/readyz`)).status).toBe(200); // a standby is ready: it must not block a rollout

  // One writer.
  await createSecret(namespace, 'db', { value: 'v1' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db']) });
  await waitForVault(`${namespace}/web/db`, (d) => d.data.value === 'v1');
  // The data lands before the reconcile ends (marks, the record): its count follows, waited for, not raced.
  await waitFor(async () => (await a.metric('vault_sync_operations_total', { result: 'synced' })) >= 1, { description: 'a counts its sync' });
  expect(await a.metric('vault_auth_total', { event: 'login', result: 'success' })).toBe(1);
  expect(await b.metric('vault_sync_operations_total')).toBe(0);
  expect(await b.metric('vault_rate_limit_requests_total')).toBe(0); // not even a login
  expect(await b.metric('vault_auth_total')).toBe(0);
  expect(await a.metric('vault_sync_leader', { shard: '0' })).toBe(1);
  expect(await b.metric('vault_sync_leader', { shard: '0' })).toBe(0);
  expect((await lease(leaseNamespace, leaseName)).spec?.holderIdentity).toBe('le-a');

  // The leader dies (no chance to release): the standby takes the Lease once it has expired, then waits out
  // the old lease plus the margin before it sends anything (a request of the old leader may still land).
  const killedAt = Date.now();
  a.kill('SIGKILL');
  await waitForRole(b, ['waiting-out', 'leader'], LEASE_MS + 10_000);
  const failoverMs = Date.now() - killedAt;
  process.stderr.write(`[ops-leader-election] failover after SIGKILL: ${failoverMs} ms (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)\n`);
  // Not before the lease could have expired (no second writer while the old one might still write)...
  expect(failoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 500);
  // ...and within the lease duration plus one polling period of the standby (it may see the last renewal up
  // to one retry period late; it then acts right when the lease expires).
  expect(failoverMs).toBeLessThanOrEqual(LEASE_MS + RETRY_MS * 1.2 + 500);
  expect((await lease(leaseNamespace, leaseName)).spec).toMatchObject({ holderIdentity: 'le-b', leaseTransitions: 1 });
  expect(b.logs()).toContain(`"waitMs":${LEASE_MS + MARGIN_MS}`);
  await waitForRole(b, 'leader', LEASE_MS + MARGIN_MS + 10_000);
  process.stderr.write(`[ops-leader-election] syncing after SIGKILL: ${Date.now() - killedAt} ms (failover plus the wait-out of ${LEASE_MS + MARGIN_MS} ms)\n`);
  await setSecret(namespace, 'db', 'v2');
  await waitForVault(`${namespace}/web/db`, (d) => d.data.value === 'v2', 'the new leader writes the change');
  // The data lands before the reconcile ends (marks, the record): its count follows, waited for, not raced.
  await waitFor(async () => (await b.metric('vault_sync_operations_total', { result: 'synced' })) >= 1, { description: 'b counts its sync' });

  // A graceful stop (SIGTERM: a rollout, a drain) releases the lease at once: no wait for the lease duration.
  const c = await operator('le-c', leaseNamespace, leaseName, [namespace]);
  await waitForRole(c, 'standby');
  const stoppedAt = Date.now();
  b.kill('SIGTERM');
  await waitForRole(c, 'leader', LEASE_MS + 10_000);
  const handoverMs = Date.now() - stoppedAt;
  process.stderr.write(`[ops-leader-election] handover after SIGTERM: ${handoverMs} ms\n`);
  expect(handoverMs).toBeLessThan(LEASE_MS / 2);
  expect(await b.exited).toEqual({ code: 0, signal: null });
  expect(b.logs()).toContain('released the lease');
  await setSecret(namespace, 'db', 'v3');
  await waitForVault(`${namespace}/web/db`, (d) => d.data.value === 'v3', 'the third leader writes the change');

  c.kill('SIGTERM');
  expect(await c.exited).toEqual({ code: 0, signal: null });
  // Released: nobody holds it now.
  expect((await lease(leaseNamespace, leaseName)).spec?.holderIdentity ?? '').toBe('');
});

test('shards: two shards over three replicas; each shard is synced by one replica with half the Vault budget while both are idle; a spare takes over a dead shard', async () => {
  // Two namespaces that fall into different shards.
  const byShard = new Map<number, string>();
  while (byShard.size < 2) {
    const ns = await freshNamespace('ops-shard');
    if (!byShard.has(shardOf(ns, 2))) byShard.set(shardOf(ns, 2), ns);
  }
  const namespaces = [byShard.get(0)!, byShard.get(1)!];
  const leaseNamespace = await freshNamespace('ops-shard-lease');
  const leaseName = 'vso';
  const replicas: OperatorProcess[] = [];
  for (const name of ['sh-a', 'sh-b', 'sh-c']) replicas.push(await operator(name, leaseNamespace, leaseName, namespaces, ['--shards=2', '--vault-rate-limit=10', '--vault-rate-burst=20']));

  const holders = await waitFor(
    async () => {
      const reports = await Promise.all(replicas.map(async (op) => ({ op, health: await op.health() })));
      const leaders = reports.filter((r) => r.health.status === 'leader');
      return leaders.length === 2 && reports.filter((r) => r.health.status === 'standby').length === 1 ? reports : undefined;
    },
    { timeoutMs: 20_000, description: 'two replicas holding one shard each, one standby' },
  );
  const holderOf = (shard: number) => holders.find((r) => r.health.leader_election.shard === shard)!.op;
  const spare = holders.find((r) => r.health.status === 'standby')!.op;
  // Both idle: the shared budget (10/s, burst 20) splits evenly, once each holder's first budget round is done.
  for (const r of holders.filter((h) => h.health.status === 'leader')) {
    const limit = await waitFor(
      async () => {
        const rateLimit = (await r.op.health()).rate_limit;
        return rateLimit.rate_per_second === 5 && rateLimit.burst === 10 ? rateLimit : undefined;
      },
      { timeoutMs: 20_000, description: `${r.op.name} spending half the budget` },
    );
    expect(limit).toMatchObject({ rate_per_second: 5, burst: 10 });
  }
  expect(new Set(holders.map((r) => r.health.leader_election.shard))).toEqual(new Set([0, 1, null]));

  for (const ns of namespaces) {
    await createSecret(ns, 'db', { value: 'one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `secret/${ns}/web` }, ['db']) });
  }
  for (const ns of namespaces) await waitForVault(`${ns}/web/db`, (d) => d.data.value === 'one');
  // Each namespace was written by the holder of its shard only. The data lands before the reconcile that wrote
  // it is counted: wait for both counts, then check them exactly.
  const syncedBy = (r: (typeof replicas)[number]) => r.metric('vault_sync_operations_total', { kind: 'Deployment', result: 'synced' });
  await waitFor(async () => (await syncedBy(holderOf(0))) >= 1 && (await syncedBy(holderOf(1))) >= 1, { description: 'both shard holders counting their sync' });
  expect(await holderOf(0).metric('vault_sync_operations_total', { kind: 'Deployment', result: 'synced' })).toBe(1);
  expect(await holderOf(1).metric('vault_sync_operations_total', { kind: 'Deployment', result: 'synced' })).toBe(1);
  expect(await spare.metric('vault_sync_operations_total')).toBe(0);

  // The holder of shard 0 dies: the spare takes shard 0; shard 1 keeps its holder.
  const dead = holderOf(0);
  const survivor = holderOf(1);
  const killedAt = Date.now();
  dead.kill('SIGKILL');
  await waitFor(async () => (await spare.health()).leader_election.shard === 0, { timeoutMs: LEASE_MS + 10_000, intervalMs: 100, description: 'the spare holding shard 0' });
  process.stderr.write(`[ops-leader-election] shard 0 taken over by the spare after ${Date.now() - killedAt} ms\n`);
  expect((await survivor.health()).leader_election.shard).toBe(1);
  await setSecret(namespaces[0], 'db', 'two');
  await setSecret(namespaces[1], 'db', 'two');
  for (const ns of namespaces) await waitForVault(`${ns}/web/db`, (d) => d.data.value === 'two');
  await waitFor(async () => (await syncedBy(spare)) >= 1, { description: 'the spare counting its sync of shard 0' });
  for (const op of [spare, survivor]) op.kill('SIGTERM');
  expect(await spare.exited).toEqual({ code: 0, signal: null });
  expect(await survivor.exited).toEqual({ code: 0, signal: null });
});

test('a leader that finds its Lease taken stops syncing at its next renewal, before anyone else may start', async () => {
  const namespace = await freshNamespace('ops-le-lost');
  const leaseNamespace = await freshNamespace('ops-le-lost-lease');
  const leaseName = 'vault-sync-operator';
  const a = await operator('lost-a', leaseNamespace, leaseName, [namespace]);
  await waitForRole(a, 'leader');
  // Someone else (a partitioned replica's successor, an admin) now holds the Lease.
  const current = await lease(leaseNamespace, leaseName);
  await leases.replaceNamespacedLease({
    namespace: leaseNamespace,
    name: leaseName,
    body: { ...current, spec: { ...current.spec, holderIdentity: 'intruder', renewTime: new Date().toISOString().replace('Z', '000Z') as unknown as Date } },
  });
  const takenAt = Date.now();
  await waitForRole(a, 'standby', 5000);
  const stoppedAfterMs = Date.now() - takenAt;
  process.stderr.write(`[ops-leader-election] leader stepped down ${stoppedAfterMs} ms after losing its Lease\n`);
  expect(stoppedAfterMs).toBeLessThan(RETRY_MS * 1.2 + 1000);
  expect(a.logs()).toContain('lost the lease');
  // The intruder never renews: once the lease expires, the replica takes it back and, after the wait-out, syncs again.
  await waitForRole(a, 'leader', 2 * LEASE_MS + MARGIN_MS + 10_000);
  await createSecret(namespace, 'db', { value: 'back' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db']) });
  await waitForVault(`${namespace}/web/db`, (d) => d.data.value === 'back');
  a.kill('SIGTERM');
  expect(await a.exited).toEqual({ code: 0, signal: null });
});
