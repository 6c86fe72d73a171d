import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { budgetLeaseName, SharedBudget } from './budget/shared-budget.js';
import { loadKubeConfig } from './kube/kube-config.js';
import { ALWAYS_HOLDS, type WriteFence } from './kube/lease-fence.js';
import { shardLeaseName, shardOf, shardRateLimit, ShardElector } from './kube/leader-election.js';
import { NOT_READY_ROWS } from './observability/dashboard.js';
import { buildHealthReport, Heartbeat, RateWindow, readinessText, snapshotOf, type LeadershipView, type ReadinessCheck, type Role } from './observability/health.js';
import { Metrics } from './observability/metrics.js';
import { ProblemTracker, RateHistory } from './observability/problems.js';
import { startOpsServer, type OpsServer } from './observability/server.js';
import { startOperator, type OperatorOverrides, type RunningOperator } from './operator.js';
import { EngineSlot } from './supervisor/engine-slot.js';
import { Leadership, type LeadershipState } from './supervisor/leadership.js';

/**
 * The operator's life cycle around the sync engine: the operations HTTP server (up first, so probes and
 * metrics answer while caches sync or while standing by), leader election / sharding, and the order of a
 * graceful stop: drain in-flight work while still renewing, release the Lease, close the server.
 *
 * Without leader election the engine starts at once. With it, the engine starts only while this replica
 * holds a shard's Lease (supervisor/leadership.ts: standby, waiting-out, leading, stopping), watching every
 * namespace but reconciling only those of its shard, with its share of the Vault budget (shared among the
 * holders through the budget Lease, or 1/shards with --vault-budget-sharing=static); a standby makes no
 * Vault call at all. Every Vault request and status write of the engine passes the Lease's fence; a lost
 * Lease aborts the engine at once (no drain).
 */
export interface SupervisorOptions {
  kubeConfig?: KubeConfig;
  /** Extra overrides for the engine (tests). */
  operatorOverrides?: Omit<OperatorOverrides, 'metrics' | 'kubeConfig'>;
  /** Something went wrong that a restart should fix (the engine could not start, a lost Lease would not drain). */
  onFatal?(reason: string): void;
}

export interface Supervisor {
  metrics: Metrics;
  /** Undefined when the HTTP server is disabled. */
  server?: OpsServer;
  /** Sources not Ready and the last refusals, as the dashboard shows them. */
  problems: ProblemTracker;
  /** The running engine, while there is one. */
  operator(): RunningOperator | undefined;
  leadership(): LeadershipView;
  /** Resolves when the engine is ready (single mode) or campaigning (leader election). */
  started: Promise<void>;
  stop(): Promise<void>;
}

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'vault-sync-operator' && pkg.version) return pkg.version;
      } catch {
        /* not ours */
      }
    }
    dir = dirname(dir);
  }
  return 'dev';
}

export async function startSupervisor(config: Config, log: Logger, options: SupervisorOptions = {}): Promise<Supervisor> {
  const startedAt = Date.now();
  const version = process.env.OPERATOR_VERSION ?? packageVersion();
  const metrics = new Metrics();
  const heartbeat = new Heartbeat();
  const vaultRequests = new RateWindow(60_000);
  const rateHistory = new RateHistory();
  const problems = new ProblemTracker();
  const shards = config.leaderElection.enabled ? config.shards : 1;
  const kubeConfig = options.kubeConfig ?? loadKubeConfig();
  const le = config.leaderElection;
  // Sharded with a shared budget: each holder's limiter follows its share of the installation's budget,
  // published in the budget Lease (src/budget/); statically: rate/shards each.
  const sharedBudget: SharedBudget | undefined =
    le.enabled && shards > 1 && config.budget.sharing === 'shared'
      ? new SharedBudget({
          kubeConfig,
          namespace: le.namespace,
          name: budgetLeaseName(le.leaseName),
          settings: {
            identity: le.identity,
            rate: config.rateLimit.rate,
            burst: config.rateLimit.burst,
            slots: shards,
            floorRate: config.budget.floorRate,
            // A share is trusted as long as the Lease after its last renewal, and taken back by others only after
            // the Lease's wait-out: the same reasoning, on the same settings.
            shareDeadlineMs: le.renewDeadlineMs,
            reclaimAfterMs: le.leaseDurationMs + le.takeoverMarginMs,
          },
          periodMs: config.budget.periodMs,
          demand: (): number => engines.current?.vaultDemand() ?? 0,
          log: log.child({ component: 'budget' }),
          registry: metrics.registry,
        })
      : undefined;
  const shardConfig: Config = sharedBudget ? config : { ...config, rateLimit: shardRateLimit(config.rateLimit, shards) };
  /** The limit this replica's Vault requests keep now. */
  const rateLimitNow = () => (sharedBudget ? sharedBudget.limit() : shardConfig.rateLimit);
  let stopping: Promise<void> | undefined;

  const fatal = (reason: string) => {
    log.fatal({ reason }, 'stopping the operator');
    if (options.onFatal) options.onFatal(reason);
  };

  // Set once the elector exists: the engine asks it before every Vault request and status write.
  let fence: WriteFence = ALWAYS_HOLDS;
  const engines = new EngineSlot({
    start: (shard) => {
      sharedBudget?.join();
      const accepts = shard === undefined || shards <= 1 ? undefined : (namespace: string) => shardOf(namespace, shards) === shard;
      return startOperator(shardConfig, shard === undefined ? log : log.child({ shard }), {
        ...options.operatorOverrides,
        kubeConfig,
        metrics,
        conditionListener: problems,
        fence,
        ...(sharedBudget ? { budget: sharedBudget } : {}),
        ...(accepts ? { accepts } : {}),
      });
    },
    onStartFailed: (reason) => {
      if (!stopping) fatal(reason);
    },
    onEnded: () => problems.reset(), // a standby has nothing of its own to show
    // Only once the engine's limiter is gone: a draining engine keeps its share until it is done.
    onStopped: () => void sharedBudget?.leave(),
  });

  const leadershipMachine = le.enabled
    ? new Leadership({
        engines,
        takeoverMarginMs: le.takeoverMarginMs,
        // Requests are fenced at once; this only bounds how long a hung call may keep the old engine around.
        abortGraceMs: Math.max(1000, le.leaseDurationMs),
        log: log.child({ component: 'leader-election' }),
        onFatal: fatal,
      })
    : undefined;
  const role = (): Role => (stopping ? 'stopping' : leadershipMachine ? roleOf(leadershipMachine.state) : 'single');

  const leadership = (): LeadershipView => {
    const shard = leadershipMachine?.shard;
    return {
      enabled: le.enabled,
      role: role(),
      identity: le.identity,
      shard,
      shards,
      lease: le.enabled && shard !== undefined ? shardLeaseName(le.leaseName, shard, shards) : undefined,
    };
  };
  const checks = (): ReadinessCheck[] => {
    const current = role();
    if (current === 'standby' || current === 'waiting-out') return [];
    const operator = engines.current;
    return [
      { name: 'caches-synced', ok: !!operator?.cachesSynced(), detail: operator ? 'listing' : 'not started' },
      {
        name: 'vault-authenticated',
        ok: engines.ready && !!operator?.vaultAuthenticated(),
        detail: !operator ? 'not started' : engines.ready ? 'no usable token: the last login failed or the token expired' : 'logging in',
      },
    ].map((c) => (c.ok ? { name: c.name, ok: true } : c));
  };

  // Sampling, every 5 s (or half the resync interval) and at every /health: the Vault request rate of the
  // last minute, and the heartbeat. The loop is alive when a reconcile finished since the last sample, or
  // when it has nothing to do.
  let lastReconciles = -1;
  const sample = async () => {
    const snapshot = await snapshotOf(metrics.registry);
    const requests = snapshot.sum('vault_rate_limit_requests_total');
    const now = Date.now();
    vaultRequests.add(now, requests);
    rateHistory.add(now, requests);
    const reconciles = snapshot.sum('vault_sync_operations_total');
    const operator = engines.current;
    const idle = !operator || (operator.queue.depth === 0 && operator.queue.inFlight === 0);
    if (reconciles !== lastReconciles || idle) heartbeat.beat();
    lastReconciles = reconciles;
    return snapshot;
  };
  const sampler = setInterval(() => void sample().catch(() => undefined), Math.min(5_000, Math.max(100, config.resyncIntervalMs / 2)));
  sampler.unref();
  void sample().catch(() => undefined);
  const resync = setInterval(() => {
    const queued = engines.current && engines.ready ? engines.current.resync() : 0;
    log.debug({ queued }, 'resync');
  }, config.resyncIntervalMs);
  resync.unref();

  const health = async () => {
    const snapshot = await sample();
    const operator = engines.current;
    return buildHealthReport({
      now: Date.now(),
      startedAt,
      metrics: snapshot,
      memory: process.memoryUsage(),
      leadership: leadership(),
      checks: checks(),
      heartbeatMs: heartbeat.lastBeatMs,
      resyncIntervalMs: config.resyncIntervalMs,
      rateLimit: { ...rateLimitNow(), usedPerSecond: vaultRequests.perSecond() },
      queue: operator ? { depth: operator.queue.depth, inFlight: operator.queue.inFlight } : undefined,
      version,
    });
  };

  const server = await startOpsServer({
    port: config.http.port,
    bindAddress: config.http.bindAddress,
    tls: config.http.tls,
    bearerTokenFile: config.http.bearerTokenFile,
    registry: metrics.registry,
    health,
    readiness: () => readinessText(leadership(), checks()),
    problems: () => {
      const { rows, total } = problems.notReadySources(NOT_READY_ROWS);
      return { notReady: rows, notReadyTotal: total, refusals: problems.lastRefusals(), rate: { points: rateHistory.points(), windowMs: rateHistory.windowMs, limitPerSecond: rateLimitNow().rate } };
    },
    log: log.child({ component: 'http' }),
  });

  let elector: ShardElector | undefined;
  let started: Promise<void>;
  if (!leadershipMachine) {
    started = engines.start(undefined).then((engine) => engine?.ready);
  } else {
    elector = new ShardElector({
      kubeConfig,
      namespace: le.namespace,
      leaseName: le.leaseName,
      identity: le.identity,
      shards,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      log: log.child({ component: 'leader-election' }),
      registry: metrics.registry,
      onStartedLeading: (shard, takeover) => {
        if (!stopping) leadershipMachine.acquired(shard, takeover);
      },
      onStoppedLeading: (shard, reason) => leadershipMachine.lost(shard, reason),
    });
    fence = elector.fence;
    elector.start();
    log.info({ lease: le.leaseName, namespace: le.namespace, identity: le.identity, shards }, 'leader election: campaigning');
    started = Promise.resolve();
  }

  return {
    metrics,
    server,
    problems,
    operator: () => engines.current,
    leadership,
    started,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(sampler);
        clearInterval(resync);
        // Drain first (still renewing), then release: releasing before the drain could let a standby write while we still do.
        if (leadershipMachine) await leadershipMachine.stop();
        else await engines.drain();
        await sharedBudget?.stop(); // drained: its share goes back before the Lease is released
        await elector?.stop();
        await server.close();
      })()),
  };
}

/** The role /health and the dashboard show for a state of the leadership machine. */
function roleOf(state: LeadershipState): Role {
  switch (state.name) {
    case 'standby':
      return 'standby';
    case 'waiting-out':
      return 'waiting-out';
    case 'leading':
      return 'leader';
    case 'stopping':
      return 'stopping';
  }
}
