// The lease fence with real operator processes (`node main.js`) against the real apiserver and OpenBao: a
// leader frozen (SIGSTOP) past its lease with work waiting, the other replica taking over and writing newer
// values, then the old leader thawed (SIGCONT). Each replica logs in with its own Vault token, so OpenBao's
// audit log tells their requests apart: the old leader must send nothing after it woke up.
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, mergePatch, vaultRead, waitForVault } from './helpers/objects.js';
import { startOperatorProcess, type OperatorProcess } from './helpers/ops.js';
import { auditMark, requestsSince } from './helpers/vault-audit.js';

const LEASE_MS = 4000;
const RENEW_MS = 2500;
const RETRY_MS = 500;
const MARGIN_MS = 1000;
const SECRETS = 6;

const { core, apps, kc } = kubeClients();
const leases = kc.makeApiClient(CoordinationV1Api);
const processes: OperatorProcess[] = [];
afterAll(async () => {
  for (const p of processes) {
    p.kill('SIGCONT');
    p.kill('SIGKILL');
  }
  await Promise.all(processes.map((p) => p.exited));
});

/** A Vault token of the operator's policy with its own display name: the audit log shows `token-<name>`. */
async function tokenNamed(displayName: string): Promise<string> {
  const created = await vaultHttp('auth/token/create', { body: { policies: [loadTestEnv().vaultKubernetesAuth.policy], display_name: displayName, ttl: '1h' } });
  const token = created.json?.auth?.client_token;
  if (typeof token !== 'string') throw new Error(`could not create a token: HTTP ${created.status}`);
  return token;
}

async function replica(name: string, token: string, namespace: string, leaseNamespace: string): Promise<OperatorProcess> {
  const env = loadTestEnv();
  const op = await startOperatorProcess(
    name,
    [
      `--vault-addr=${env.vaultAddr}`,
      '--vault-auth-method=token',
      `--vault-token=${token}`,
      `--watch-namespaces=${namespace}`,
      '--cluster-name=e2e',
      '--leader-elect=true',
      `--leader-election-namespace=${leaseNamespace}`,
      '--leader-election-id=vault-sync-operator',
      `--leader-election-lease-duration=${LEASE_MS / 1000}s`,
      `--leader-election-renew-deadline=${RENEW_MS / 1000}s`,
      `--leader-election-retry-period=${RETRY_MS / 1000}s`,
      `--leader-election-takeover-margin=${MARGIN_MS / 1000}s`,
      // A slow budget: the leader has a backlog waiting in its line when it freezes.
      '--vault-rate-limit=3',
      '--vault-rate-burst=1',
      '--log-level=info',
    ],
    { KUBECONFIG: env.kubeconfigPath },
  );
  processes.push(op);
  return op;
}

const role = async (op: OperatorProcess): Promise<string> => (await op.health()).status;
const waitForRole = (op: OperatorProcess, wanted: string, timeoutMs = 20_000) =>
  waitFor(async () => (await role(op)) === wanted, { timeoutMs, intervalMs: 100, description: `${op.name} to be ${wanted} (log: ${op.logPath})` });

test('a leader frozen past its lease wakes up and sends nothing to Vault; the new holder waits out the old lease, then writes the latest values', async () => {
  const namespace = await freshNamespace('ops-fence');
  const leaseNamespace = await freshNamespace('ops-fence-lease');
  const suffix = randomBytes(3).toString('hex');
  const names = { a: `fence-a-${suffix}`, b: `fence-b-${suffix}` };
  const a = await replica('fence-a', await tokenNamed(names.a), namespace, leaseNamespace);
  await waitForRole(a, 'leader');
  const b = await replica('fence-b', await tokenNamed(names.b), namespace, leaseNamespace);
  await waitForRole(b, 'standby');

  const start = auditMark();
  const secretNames = Array.from({ length: SECRETS }, (_, i) => `db${i}`);
  for (const name of secretNames) await createSecret(namespace, name, { value: 'v1' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, secretNames) });
  for (const name of secretNames) await waitForVault(`${namespace}/web/${name}`, (d) => d.data.value === 'v1');

  // New values; the leader freezes while their writes wait in its line (3 requests/s).
  for (const name of secretNames) await core.patchNamespacedSecret({ namespace, name, body: { stringData: { value: 'v2' } } }, mergePatch);
  await waitFor(async () => (await a.metric('vault_pending_operations')) > 0, { timeoutMs: 20_000, intervalMs: 20, description: 'writes waiting in the leader\'s line' });
  a.kill('SIGSTOP');
  const frozenAt = Date.now();
  const auditAtFreeze = auditMark();

  // The other replica takes the Lease once it has not changed for the lease duration, then waits out the
  // old lease plus the margin before it sends anything.
  await waitFor(async () => (await leases.readNamespacedLease({ namespace: leaseNamespace, name: 'vault-sync-operator' })).spec?.holderIdentity === 'fence-b', {
    timeoutMs: LEASE_MS + 10_000,
    intervalMs: 100,
    description: 'fence-b holding the Lease',
  });
  const acquiredAfterMs = Date.now() - frozenAt;
  expect(['waiting-out', 'leader']).toContain(await role(b));
  await waitForRole(b, 'leader', LEASE_MS + MARGIN_MS + 10_000);
  expect(b.logs()).toContain(`"waitMs":${LEASE_MS + MARGIN_MS}`);
  // Its first reconcile (from its own fresh caches) done, the values change again.
  await waitFor(async () => (await b.metric('vault_sync_operations_total', { kind: 'Deployment' })) >= 1, { timeoutMs: 30_000, description: 'fence-b reconciled the Deployment once' });
  for (const name of secretNames) await core.patchNamespacedSecret({ namespace, name, body: { stringData: { value: 'v3' } } }, mergePatch);
  for (const name of secretNames) await waitForVault(`${namespace}/web/${name}`, (d) => d.data.value === 'v3', `secret/${namespace}/web/${name} at v3, written by the new holder`);

  // The old leader wakes up with its line full of v2 writes and a Lease long expired.
  const woke = auditMark();
  const wokeAt = Date.now();
  a.kill('SIGCONT');
  await waitFor(async () => (await a.metric('vault_sync_leader_transitions_total', { event: 'lost' })) === 1, { timeoutMs: 10_000, intervalMs: 50, description: 'fence-a counting its loss' });
  await waitForRole(a, 'standby', 10_000);
  // Its engine is gone: nothing waits in its line, and it holds no shard.
  await waitFor(async () => (await a.metric('vault_pending_operations')) === 0, { timeoutMs: 10_000, description: 'fence-a with nothing waiting' });
  expect(await a.metric('vault_sync_leader', { shard: '0' })).toBe(0);
  expect(a.logs()).toContain('lost the lease');

  const byA = (mark: number) => requestsSince(mark).filter((r) => r.displayName === `token-${names.a}`);
  const byB = (mark: number) => requestsSince(mark).filter((r) => r.displayName === `token-${names.b}`);
  const fenced = await a.metric('vault_sync_fenced_requests_total');
  process.stderr.write(
    `[ops-fencing] lease taken over ${acquiredAfterMs} ms after the freeze; thawed after ${wokeAt - frozenAt} ms; ` +
      `requests by the old leader: ${byA(start).length - byA(auditAtFreeze).length} before the freeze, ${byA(woke).length} after waking (fenced: ${fenced}); by the new holder: ${byB(start).length}\n`,
  );
  expect(byA(start).length).toBeGreaterThanOrEqual(SECRETS); // the audit log does tell the old leader's requests apart (its v1 writes)
  expect(byA(woke)).toEqual([]); // and after waking it sent none: not a write, not a read, not a token renewal
  expect(byB(auditAtFreeze).length).toBeGreaterThan(0);
  for (const name of secretNames) expect((await vaultRead(`${namespace}/web/${name}`))?.data.value).toBe('v3');

  // A graceful stop of the new holder still hands over at once (released, no wait-out), to the old one.
  b.kill('SIGTERM');
  expect(await b.exited).toEqual({ code: 0, signal: null });
  await waitForRole(a, 'leader', LEASE_MS + 10_000);
  expect(a.logs()).not.toContain('waiting before sending anything');
  a.kill('SIGTERM');
  expect(await a.exited).toEqual({ code: 0, signal: null });
});
