import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { loadKubeConfig } from './kube/kube-config.js';
import { shardLeaseName, shardOf, shardRateLimit, ShardElector } from './kube/leader-election.js';
import { NOT_READY_ROWS } from './observability/dashboard.js';
import { buildHealthReport, Heartbeat, RateWindow, readinessText, snapshotOf, type LeadershipView, type ReadinessCheck, type Role } from './observability/health.js';
import { Metrics } from './observability/metrics.js';
import { ProblemTracker, RateHistory } from './observability/problems.js';
import { startOpsServer, type OpsServer } from './observability/server.js';
import { startOperator, type OperatorOverrides, type RunningOperator } from './operator.js';

/**
 * The operator's life cycle around the sync engine: the operations HTTP server (up first, so probes and
 * metrics answer while caches sync or while standing by), leader election / sharding, and the order of a
 * graceful stop: stop campaigning, drain in-flight work, release the Lease, close the server.
 *
 * Without leader election the engine starts at once. With it, the engine starts only while this replica
 * holds a shard's Lease, watching every namespace but reconciling only those of its shard, with
 * 1/shards of the Vault budget; a standby makes no Vault call at all.
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
  const shardConfig: Config = { ...config, rateLimit: shardRateLimit(config.rateLimit, shards) };
  const kubeConfig = options.kubeConfig ?? loadKubeConfig();

  let role: Role = 'starting';
  let operator: RunningOperator | undefined;
  let operatorReady = false;
  let operatorShard: number | undefined;
  let elector: ShardElector | undefined;
  let stopping: Promise<void> | undefined;

  const leadership = (): LeadershipView => ({
    enabled: config.leaderElection.enabled,
    role,
    identity: config.leaderElection.identity,
    shard: operatorShard,
    shards,
    lease: config.leaderElection.enabled && operatorShard !== undefined ? shardLeaseName(config.leaderElection.leaseName, operatorShard, shards) : undefined,
  });
  const checks = (): ReadinessCheck[] => {
    if (role === 'standby') return [];
    return [
      { name: 'caches-synced', ok: !!operator?.cachesSynced(), detail: operator ? 'listing' : 'not started' },
      {
        name: 'vault-authenticated',
        ok: operatorReady && !!operator?.vaultAuthenticated(),
        detail: !operator ? 'not started' : operatorReady ? 'no usable token: the last login failed or the token expired' : 'logging in',
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
    const idle = !operator || (operator.queue.depth === 0 && operator.queue.inFlight === 0);
    if (reconciles !== lastReconciles || idle) heartbeat.beat();
    lastReconciles = reconciles;
    return snapshot;
  };
  const sampler = setInterval(() => void sample().catch(() => undefined), Math.min(5_000, Math.max(100, config.resyncIntervalMs / 2)));
  sampler.unref();
  void sample().catch(() => undefined);
  const resync = setInterval(() => {
    const queued = operator && operatorReady ? operator.resync() : 0;
    log.debug({ queued }, 'resync');
  }, config.resyncIntervalMs);
  resync.unref();

  const health = async () => {
    const snapshot = await sample();
    return buildHealthReport({
      now: Date.now(),
      startedAt,
      metrics: snapshot,
      memory: process.memoryUsage(),
      leadership: leadership(),
      checks: checks(),
      heartbeatMs: heartbeat.lastBeatMs,
      resyncIntervalMs: config.resyncIntervalMs,
      rateLimit: { ...shardConfig.rateLimit, usedPerSecond: vaultRequests.perSecond() },
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
      return { notReady: rows, notReadyTotal: total, refusals: problems.lastRefusals(), rate: { points: rateHistory.points(), windowMs: rateHistory.windowMs, limitPerSecond: shardConfig.rateLimit.rate } };
    },
    log: log.child({ component: 'http' }),
  });

  const fatal = (reason: string) => {
    log.fatal({ reason }, 'stopping the operator');
    if (options.onFatal) options.onFatal(reason);
  };

  const startEngine = (shard: number | undefined): RunningOperator => {
    const accepts = shard === undefined || shards <= 1 ? undefined : (namespace: string) => shardOf(namespace, shards) === shard;
    const engine = startOperator(shardConfig, shard === undefined ? log : log.child({ shard }), {
      ...options.operatorOverrides,
      kubeConfig,
      metrics,
      conditionListener: problems,
      ...(accepts ? { accepts } : {}),
    });
    operator = engine;
    operatorShard = shard;
    operatorReady = false;
    engine.ready.then(
      () => {
        if (operator === engine) operatorReady = true;
      },
      (error: unknown) => {
        if (operator !== engine || stopping) return;
        fatal(`could not start: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
    return engine;
  };

  // The engine being stopped, if any: a new one starts only after it has drained (one writer per process).
  let draining: Promise<void> = Promise.resolve();
  const stopEngine = (): Promise<void> => {
    const engine = operator;
    operator = undefined;
    operatorReady = false;
    operatorShard = undefined;
    problems.reset(); // a standby has nothing of its own to show
    if (engine) draining = engine.stop().catch(() => undefined);
    return draining;
  };

  let started: Promise<void>;
  if (!config.leaderElection.enabled) {
    role = 'single';
    started = startEngine(undefined).ready;
  } else {
    const le = config.leaderElection;
    role = 'standby';
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
      onStartedLeading: (shard) => {
        if (stopping) return;
        role = 'leader';
        operatorShard = shard;
        void draining.then(() => {
          if (!stopping && elector?.shard === shard && !operator) startEngine(shard);
        });
      },
      onStoppedLeading: (shard) => {
        role = 'standby';
        // Another replica may take the shard over once the lease duration has passed since our last
        // renewal; in-flight writes must be over by then, or we exit rather than risk two writers.
        const graceMs = Math.max(1000, le.leaseDurationMs - le.renewDeadlineMs);
        const timer = setTimeout(() => fatal(`lost shard ${shard} and could not drain within ${graceMs} ms`), graceMs);
        void stopEngine().finally(() => clearTimeout(timer));
      },
    });
    elector.start();
    log.info({ lease: le.leaseName, namespace: le.namespace, identity: le.identity, shards }, 'leader election: campaigning');
    started = Promise.resolve();
  }

  return {
    metrics,
    server,
    problems,
    operator: () => operator,
    leadership,
    started,
    stop: () =>
      (stopping ??= (async () => {
        role = 'stopping';
        clearInterval(sampler);
        clearInterval(resync);
        // Drain first, then release: releasing before the drain could let a standby write while we still do.
        if (elector) {
          await stopEngine();
          await elector.stop();
        } else {
          await stopEngine();
        }
        await server.close();
      })()),
  };
}
