// One installation's Vault budget shared by its shard holders, measured with real operator processes: 3 replicas
// with --shards 3 (one shard each), each behind its OWN proxy in front of the real OpenBao, connecting from its own
// loopback address, so OpenBao's audit log tells the replicas apart. One shard gets a backlog (Deployments using
// many new Secrets in one namespace); the others stay idle. Measured: how soon the busy holder's published share
// reaches 90 % of the installation's rate, how fast its backlog drains, and whether the merged audit log of all
// replicas fits one bucket of the installation's rate and burst. Used by test/e2e/budget-shared.test.ts and by
// `npm run bench` (shared against static).
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { parseRecord, BUDGET_ANNOTATION, type BudgetRecord } from '../../../src/budget/record.js';
import { withinBudget } from '../../../src/budget/protocol.js';
import { shardOf } from '../../../src/kube/leader-election.js';
import { freshNamespace, kubeClients, loadTestEnv, waitFor } from './env.js';
import { startFaultProxy, tokenBucketExcess, type FaultProxy } from './fault-proxy.js';
import { createSecret, deploymentUsing } from './objects.js';
import { operatorArgs } from './operator.js';
import { startOperatorProcess, type OperatorProcess } from './ops.js';
import { requestsSince, auditMark, type AuditedRequest } from './vault-audit.js';

export const SHARDS = 3;
export const BUDGET = { rate: 10, burst: 20 } as const;
/** The audit-log replay's clock tolerance (test/e2e/vault-limiter.test.ts, chaos.ts): OpenBao stamps requests it queued together on a busy machine. */
export const REPLAY_TOLERANCE_MS = 250;

export interface SharedBudgetRunOptions {
  sharing: 'shared' | 'static';
  deployments: number;
  secretsPerDeployment: number;
  /**
   * Once the busy holder has its 90 % share, SIGSTOP it for this long (longer than the reclaim time: lease
   * duration + takeover margin = 8 s here), then SIGCONT it: a paused process with a big share.
   */
  pauseBusyForMs?: number;
  say: (message: string) => void;
}

export interface SharedBudgetFigures {
  sharing: 'shared' | 'static';
  shards: number;
  rate: number;
  burst: number;
  paths: number;
  /** Requests of the busy holder from the backlog to its last one. */
  busyRequests: number;
  /** Seconds on Vault's clock from the busy holder's first to last request of the backlog. */
  drainSeconds: number;
  /** busyRequests / drainSeconds. */
  achievedRate: number;
  /** Seconds from the backlog's Deployments created to the busy holder's published share >= 90 % of the rate (shared only). */
  secondsToShare90?: number;
  /** Seconds from the busy holder first publishing a demand to its share >= 90 % (shared only): the rebalance itself. */
  rebalanceSeconds?: number;
  /** The busy holder's largest published share. */
  busyShare?: { rate: number; burst: number };
  /** The largest value of the busy holder's share gauge (vault_sync_budget_share, rate) seen while its backlog drained. */
  busyShareGauge: number;
  /** Requests of all replicas, merged, over one bucket of the installation's rate and burst (ceil; 0 = none). */
  requestsOverBucket: number;
  mergedRequests: number;
  /** Polls of the budget Lease, and how many showed the published shares summing above the budget. */
  budgetPolls: number;
  budgetPollsOver: number;
  /** Shares the other holders removed because the busy one stopped renewing (vault_sync_budget_reclaimed_total). */
  reclaimedByOthers: number;
  /** Whether the busy holder was paused. */
  paused: boolean;
  /** From the SIGSTOP to the first poll that found the busy holder's entry removed (ms, this process's clock). */
  reclaimedAfterPauseMs?: number;
}

const leaseApi = () => kubeClients().kc.makeApiClient(CoordinationV1Api);

/** Namespaces, one per shard, fresh; the first one is the busy one. */
async function namespacesPerShard(): Promise<string[]> {
  const byShard = new Map<number, string>();
  while (byShard.size < SHARDS) {
    const ns = await freshNamespace('budget');
    if (!byShard.has(shardOf(ns, SHARDS))) byShard.set(shardOf(ns, SHARDS), ns);
  }
  return [...byShard.values()];
}

export async function runSharedBudget(options: SharedBudgetRunOptions): Promise<SharedBudgetFigures> {
  const { say } = options;
  const env = loadTestEnv();
  const namespaces = await namespacesPerShard();
  const busyNs = namespaces[0];
  const leaseNamespace = await freshNamespace('budget-lease');
  const leaseName = 'vso';
  const secretNames = Array.from({ length: options.secretsPerDeployment }, (_, i) => `s${i}`);
  for (const name of secretNames) await createSecret(busyNs, name, { value: `${name}-value` });

  const prefix = `127.${10 + (randomBytes(1)[0] % 240)}.${1 + (randomBytes(1)[0] % 250)}`;
  const proxies: FaultProxy[] = [];
  const replicas: OperatorProcess[] = [];
  const addresses = new Set<string>();
  let poller: Promise<void> | undefined;
  let polling = true;
  try {
    for (let slot = 0; slot < SHARDS; slot++) {
      const address = `${prefix}.${slot + 1}`;
      addresses.add(address);
      const proxy = await startFaultProxy({ upstream: env.vaultAddr, localAddress: address });
      proxies.push(proxy);
      replicas.push(
        await startOperatorProcess(
          `budget-${options.sharing}-${String.fromCharCode(97 + slot)}`,
          [
            ...(await operatorArgs(namespaces)),
            `--vault-addr=${proxy.url}`,
            '--leader-elect=true',
            `--leader-election-namespace=${leaseNamespace}`,
            `--leader-election-id=${leaseName}`,
            '--leader-election-lease-duration=6s',
            '--leader-election-renew-deadline=4s',
            '--leader-election-retry-period=1s',
            `--shards=${SHARDS}`,
            `--vault-rate-limit=${BUDGET.rate}`,
            `--vault-rate-burst=${BUDGET.burst}`,
            `--vault-budget-sharing=${options.sharing}`,
            '--vault-budget-period=1s',
            '--log-level=info',
          ],
          { KUBECONFIG: env.kubeconfigPath },
        ),
      );
    }
    const shardOfReplica = await waitFor(
      async () => {
        const shards = await Promise.all(replicas.map(async (op) => ((await op.health()) as { leader_election: { shard: number | null } }).leader_election.shard));
        return shards.every((s) => s !== null) && new Set(shards).size === SHARDS ? shards : undefined;
      },
      { timeoutMs: 30_000, description: `${SHARDS} replicas holding one shard each` },
    );
    const busy = replicas[shardOfReplica.indexOf(shardOf(busyNs, SHARDS))];
    say(`shards held; ${busy.name} holds the busy namespace's shard`);

    const readRecord = async (): Promise<BudgetRecord | undefined> => {
      try {
        const lease = await leaseApi().readNamespacedLease({ namespace: leaseNamespace, name: `${leaseName}-budget` });
        return parseRecord(lease.metadata?.annotations?.[BUDGET_ANNOTATION]);
      } catch {
        return undefined;
      }
    };
    if (options.sharing === 'shared') {
      await waitFor(async () => (await readRecord())?.entries.size === SHARDS, { timeoutMs: 20_000, description: 'every holder in the budget record' });
    } else {
      // Static: every holder is ready (logged in) before the backlog, as the shared run waits for the record.
      await waitFor(async () => (await Promise.all(replicas.map(async (op) => (await op.health()).status))).every((s) => s === 'leader'), { timeoutMs: 30_000, description: 'every holder ready' });
    }

    // The budget Lease, polled through the run: every version must keep the sum within the budget.
    let polls = 0;
    let pollsOver = 0;
    let demandSeenAt: number | undefined;
    let share90At: number | undefined;
    let busyShare: { rate: number; burst: number } | undefined;
    let busyShareGauge = 0;
    let stoppedAt: number | undefined;
    let sigstopped = false;
    let goneAt: number | undefined;
    poller = (async () => {
      while (polling && options.sharing === 'shared') {
        // A stopped process does not answer: its gauge is read only while it runs (the Lease is read throughout).
        if (!sigstopped) busyShareGauge = Math.max(busyShareGauge, await busy.metric('vault_sync_budget_share', { dimension: 'rate' }).catch(() => 0));
        const record = await readRecord();
        const at = Date.now();
        if (record) {
          polls++;
          if (!withinBudget(record, BUDGET)) pollsOver++;
          const entry = record.entries.get(busy.name);
          if (!entry && stoppedAt !== undefined && goneAt === undefined) goneAt = at;
          if (entry && entry.demand > 0 && demandSeenAt === undefined) demandSeenAt = at;
          if (entry && (!busyShare || entry.rate > busyShare.rate)) busyShare = { rate: entry.rate, burst: entry.burst };
          if (entry && entry.rate >= 0.9 * BUDGET.rate && share90At === undefined) share90At = at;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const mark = auditMark();
    const createdAt = Date.now();
    for (let d = 0; d < options.deployments; d++) {
      await kubeClients().apps.createNamespacedDeployment({ namespace: busyNs, body: deploymentUsing(busyNs, `big${d}`, { 'vault-sync.io/path': `secret/${busyNs}/big${d}` }, secretNames) });
    }
    const paths = options.deployments * options.secretsPerDeployment;
    say(`backlog: ${options.deployments} Deployments x ${options.secretsPerDeployment} new Secrets = ${paths} new paths in ${busyNs}`);
    let paused = false;
    if (options.pauseBusyForMs !== undefined) {
      await waitFor(() => share90At !== undefined, { timeoutMs: 60_000, intervalMs: 100, description: 'the busy holder with 90 % of the rate' });
      say(`SIGSTOP ${busy.name} for ${options.pauseBusyForMs} ms with its share of ${JSON.stringify(busyShare)}`);
      sigstopped = true;
      await new Promise((r) => setTimeout(r, 150)); // the poller is not inside a request to it
      stoppedAt = Date.now();
      busy.proc.kill('SIGSTOP');
      paused = true;
      await new Promise((r) => setTimeout(r, options.pauseBusyForMs));
      busy.proc.kill('SIGCONT');
      sigstopped = false;
      say(`SIGCONT ${busy.name}`);
    }
    const isWrite = (r: AuditedRequest) => r.operation === 'create' || r.operation === 'update';
    const busyWrites = () => {
      const seen = requestsSince(mark, (p) => p.startsWith(`secret/data/${busyNs}/`) || p.startsWith(`secret/metadata/${busyNs}/`)).filter((r) => !r.byRoot && isWrite(r));
      return { data: new Set(seen.filter((r) => r.path.startsWith('secret/data/')).map((r) => r.path)).size, marks: new Set(seen.filter((r) => r.path.startsWith('secret/metadata/')).map((r) => r.path)).size };
    };
    // At most 2 requests per new path (data, then marks) at the static share, with room for a loaded machine.
    const worstSeconds = (2 * paths) / (BUDGET.rate / SHARDS);
    await waitFor(
      () => {
        const w = busyWrites();
        return w.data >= paths && w.marks >= paths;
      },
      { timeoutMs: (worstSeconds * 2 + 60) * 1000, intervalMs: 500, description: `the ${paths} new paths written and marked` },
    );
    polling = false;
    await poller;
    const others = replicas.filter((op) => op !== busy);
    const reclaimedByOthers = (await Promise.all(others.map((op) => op.metric('vault_sync_budget_reclaimed_total')))).reduce((a, b) => a + b, 0);

    const merged = requestsSince(mark).filter((r) => r.remoteAddress !== undefined && addresses.has(r.remoteAddress));
    const busyAddress = `${prefix}.${replicas.indexOf(busy) + 1}`;
    const busyRequests = merged.filter((r) => r.remoteAddress === busyAddress && (r.path.startsWith(`secret/data/${busyNs}/`) || r.path.startsWith(`secret/metadata/${busyNs}/`)));
    const times = busyRequests.map((r) => r.at).sort((a, b) => a - b);
    const drainSeconds = times.length > 1 ? (times[times.length - 1] - times[0]) / 1000 : 0;
    const bucket = tokenBucketExcess(
      merged.map((r) => r.at),
      BUDGET.rate,
      BUDGET.burst,
      REPLAY_TOLERANCE_MS,
    );
    const figures: SharedBudgetFigures = {
      sharing: options.sharing,
      shards: SHARDS,
      ...BUDGET,
      paths,
      busyRequests: busyRequests.length,
      drainSeconds: Math.round(drainSeconds * 10) / 10,
      achievedRate: drainSeconds > 0 ? Math.round((busyRequests.length / drainSeconds) * 100) / 100 : 0,
      secondsToShare90: share90At === undefined ? undefined : Math.round((share90At - createdAt) / 100) / 10,
      rebalanceSeconds: share90At === undefined || demandSeenAt === undefined ? undefined : Math.round((share90At - demandSeenAt) / 100) / 10,
      busyShare,
      busyShareGauge,
      requestsOverBucket: Math.max(0, Math.ceil(bucket.excess)),
      mergedRequests: merged.length,
      budgetPolls: polls,
      budgetPollsOver: pollsOver,
      reclaimedByOthers,
      paused,
      reclaimedAfterPauseMs: goneAt === undefined || stoppedAt === undefined ? undefined : goneAt - stoppedAt,
    };
    say(`figures: ${JSON.stringify(figures)}`);
    if (figures.requestsOverBucket > 0) say(`over the bucket at ${JSON.stringify(bucket.at)}`);
    return figures;
  } finally {
    polling = false;
    await poller?.catch(() => undefined);
    for (const op of replicas) op.kill('SIGTERM');
    await Promise.all(replicas.map((op) => Promise.race([op.exited, new Promise((r) => setTimeout(r, 20_000))])));
    for (const op of replicas) op.kill('SIGKILL');
    await Promise.all(proxies.map((p) => p.close()));
  }
}
