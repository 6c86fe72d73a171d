import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { syncSettings, type Config } from './config.js';
import { ClusterClient } from './kube/cluster.js';
import { PooledKubeConfig } from './kube/kube-http.js';
import { loadKubeConfig } from './kube/kube-config.js';
import { loadOrCreateHashKey } from './kube/hash-key.js';
import { isManaged, parseSourceKey, sourceKey } from './kube/objects.js';
import { describeKubeError } from './kube/reflector.js';
import { SourceReflectors } from './kube/source-reflectors.js';
import type { WriteFence } from './kube/lease-fence.js';
import type { LiveLimit } from './vault/limiter.js';
import { VaultSyncStore, type ConditionListener } from './kube/vaultsync-store.js';
import { Metrics } from './observability/metrics.js';
import { vaultMetricsOf } from './observability/vault-metrics.js';
import { WorkQueue } from './queue/work-queue.js';
import { Fingerprinter } from './sync/fingerprint.js';
import { createDecisionPipeline } from './sync/gather.js';
import { Reconciler } from './sync/reconciler.js';
import { INVALID_RECORD, reportDroppedPaths, syncStateStore } from './sync/state-store.js';
import { SecretIndex } from './sync/secret-index.js';
import { DryRunReporter } from './plan/dry-run.js';
import { Planner } from './plan/planner.js';
import { createVaultStack, type VaultStack } from './vault/stack.js';
import type { ScanRefusal } from './vault/detailed-scan.js';
import { formatPath, type KvPath } from './vault/path.js';

export interface RunningOperator {
  /** Resolves when every cache has listed once and Vault accepted the login. */
  ready: Promise<void>;
  queue: WorkQueue;
  metrics: Metrics;
  /** True once every cache has listed once. */
  cachesSynced(): boolean;
  /** True while the Vault client holds a usable token. */
  vaultAuthenticated(): boolean;
  /** Vault operations waiting for a batch or a token: the demand this replica publishes on a shared budget. */
  vaultDemand(): number;
  /** Re-queues every managed source in the caches (a periodic safety net; unchanged sources cost no Vault call). */
  resync(): number;
  /** Stops watching, drains in-flight work, releases the limiter. */
  stop(): Promise<void>;
  /**
   * The Lease is lost: stops at once, no drain. Nothing waiting is sent (rejected as 'fenced'), retries end,
   * the work queue stops; resolves when the reconciles under way have given up. The fence already refuses
   * every request and status write, so what they still try is not sent.
   */
  abort(reason: string): Promise<void>;
}

export interface OperatorOverrides {
  kubeConfig?: KubeConfig;
  vaultStack?: VaultStack;
  metrics?: Metrics;
  /** Sharding: reconcile only sources in the namespaces this returns true for. */
  accepts?: (namespace: string) => boolean;
  /** Told about every VaultSync Ready condition of this engine's sources (the dashboard's not-Ready table). */
  conditionListener?: ConditionListener;
  /**
   * Leader election: whether this replica holds its Lease now. Every Vault request and every VaultSync write
   * asks it immediately before it leaves. Absent: always holds (a single replica).
   */
  fence?: WriteFence;
  /** Sharding with a shared budget: this holder's live share of the installation's Vault budget. */
  budget?: LiveLimit;
}

/** Wires the real clients together and starts watching. */
export function startOperator(config: Config, log: Logger, overrides: OperatorOverrides = {}): RunningOperator {
  // One keep-alive agent for all of the operator's Kubernetes traffic (lists, watches, reads, writes).
  const kubeConfig = PooledKubeConfig.from(overrides.kubeConfig ?? loadKubeConfig());
  const metrics = overrides.metrics ?? new Metrics();
  const vaultStack = overrides.vaultStack ?? createVaultStack(config, log.child({ component: 'vault' }), vaultMetricsOf(metrics), { gate: overrides.fence, budget: overrides.budget });
  const cluster = new ClusterClient(kubeConfig);
  const fingerprint = new Fingerprinter();
  const index = new SecretIndex();
  const state = new VaultSyncStore(kubeConfig, config.watchNamespaces, ownSources(overrides.conditionListener, overrides.accepts), {
    kvMounts: config.vault.kvMounts,
    fence: overrides.fence,
    onFenced: () => metrics.fencedRequests.labels('status').inc(),
  });
  const countEvent = (resource: string) => (type: string) => metrics.informerEvents.labels(resource, type).inc();
  const enqueueAllManaged = () => {
    for (const object of reflectors.managedSources()) queue.add(sourceKey(object.kind, object.namespace, object.name));
  };
  const reflectors = new SourceReflectors(kubeConfig, config.watchNamespaces, (data) => fingerprint.secretData(data), log, {
    onDeployment: (type, current, previous) => {
      countEvent('deployments')(type);
      if (isManaged(current) || (previous && isManaged(previous))) queue.add(sourceKey('Deployment', current.namespace, current.name));
    },
    onSecret: (type, current, previous) => {
      countEvent('secrets')(type);
      if (previous && previous.dataHash === current.dataHash && !isManaged(current) && !isManaged(previous)) return; // label edit
      for (const reader of index.readersOf(current.namespace, current.name)) queue.add(reader);
      if (isManaged(current) || (previous && isManaged(previous))) queue.add(sourceKey('Secret', current.namespace, current.name));
    },
    // A change of the tenancy grants re-checks every source.
    onPolicy: () => {
      if (started) enqueueAllManaged();
    },
    onError: () => metrics.errors.labels('watch').inc(),
  });

  // Said once per change of what the operator does (a refusal for good or for a while, a root too large to scan).
  const onDriftScanRefused = (root: KvPath, why: ScanRefusal) => {
    metrics.driftScanRefusals.labels(why).inc();
    const shown = formatPath(root);
    if (why === 'too-large') log.warn({ root: shown, maxBytes: config.driftScanMaxBytes }, 'the drift scan of this folder was longer than --vault-drift-scan-max-bytes: its sources are checked folder by folder for an hour');
    else if (why === 'forbidden') log.warn({ mount: root.mount }, `the token may not scan ${root.mount}/detailed-metadata/* (the scan capability): drift checks by folder listings for a while`);
    else log.info({ mount: root.mount }, 'the server has no detailed scan: drift checks by folder listings');
  };
  // One factory for both: the reconciler carries its verdicts out, DRY_RUN prints them (read-only reads).
  const pipelineFor = (readOnly: boolean) =>
    createDecisionPipeline({
      sources: reflectors,
      state: syncStateStore(state),
      cluster,
      vault: vaultStack.vault,
      kvVersion: (mount) => vaultStack.kvVersion(mount),
      fingerprint,
      settings: syncSettings(config, vaultStack),
      readOnly,
      // The reconciler's drift checks only: `plan` and DRY_RUN read as a person asks, now, folder by folder.
      ...(readOnly ? {} : { driftScanMaxBytes: config.driftScanMaxBytes, onDriftScanRefused }),
    });
  const reconciler = new Reconciler({
    pipeline: pipelineFor(false),
    cluster,
    vault: vaultStack.vault,
    state: syncStateStore(state),
    index,
    log,
    metrics,
    cleanupTimeoutMs: config.cleanupTimeoutMs,
  });

  // DRY_RUN: the plan of each source (the Planner of `vault-sync-operator plan`) in place of its reconcile.
  const dryRun = config.dryRun
    ? new DryRunReporter({
        planner: new Planner({ pipeline: pipelineFor(true), index }),
        sources: reflectors,
        state,
        metrics,
        log,
      })
    : undefined;

  const queue = new WorkQueue({
    concurrency: config.workers,
    baseDelayMs: 500,
    maxDelayMs: 5 * 60_000,
    process: async (key, slot) => {
      if (overrides.accepts && !overrides.accepts(parseSourceKey(key).namespace)) return; // another shard's
      if (dryRun) return void (await dryRun.report(key));
      // A reconcile waiting on Vault tokens gives its worker back, so every source with work is in the fair line.
      const result = await reconciler.reconcile(key, { releaseSlot: () => slot.release() });
      metrics.queueDepth.set(queue.depth);
      log.debug({ source: key, outcome: result.outcome }, 'reconciled');
      return { requeueAfterMs: result.requeueAfterMs };
    },
    onError: (key, error, attempt, retryInMs) => {
      metrics.errors.labels(error instanceof Error && error.name === 'VaultRequestError' ? 'vault' : 'kubernetes').inc();
      log.warn({ source: key, attempt, retryInMs, err: error instanceof Error && error.name === 'VaultRequestError' ? error.message : describeKubeError(error) }, 'reconcile failed; will retry');
    },
  });

  let started = false;
  let ended = false;
  const ready = (async () => {
    fingerprint.useKey(await loadOrCreateHashKey(kubeConfig, config.operatorNamespace, config.hashKeySecret));
    await vaultStack.login();
    await state.load();
    await reportDroppedPaths(state.droppedAtLoad, {
      log,
      count: () => metrics.refusals.labels(INVALID_RECORD).inc(),
      accepts: overrides.accepts,
      // DRY_RUN records no Event.
      event: config.dryRun ? undefined : (owner, reason, message) => cluster.createEvent(owner.kind, owner, 'Warning', reason, message),
    });
    await reflectors.startAndSync();
    if (ended) throw new Error('the engine was stopped before it started');
    started = true;
    queue.start();
    log.info({ namespaces: config.watchNamespaces.length ? config.watchNamespaces : 'all', records: state.size, dryRun: config.dryRun }, config.dryRun ? 'caches synced; DRY_RUN: planning only, nothing is written to Vault' : 'caches synced; syncing');
  })();

  return {
    ready,
    queue,
    metrics,
    cachesSynced: () => reflectors.all().every((r) => r.isSynced),
    vaultAuthenticated: () => vaultStack.authenticated(),
    vaultDemand: () => vaultStack.demand(),
    resync() {
      let queued = 0;
      for (const object of reflectors.managedSources()) {
        queue.add(sourceKey(object.kind, object.namespace, object.name));
        queued += 1;
      }
      return queued;
    },
    async stop() {
      ended = true;
      reflectors.stop();
      await queue.shutdown();
      await vaultStack.stop();
      kubeConfig.close();
    },
    async abort(reason) {
      ended = true;
      reflectors.stop();
      const vaultStopped = vaultStack.abort(reason);
      await queue.shutdown();
      await vaultStopped;
      kubeConfig.close();
    },
  };
}

/** With sharding, the store holds every shard's records: pass on only the conditions of this shard's sources. */
function ownSources(listener: ConditionListener | undefined, accepts: ((namespace: string) => boolean) | undefined): ConditionListener | undefined {
  if (!listener || !accepts) return listener;
  return {
    onCondition: (key, source, condition, how) => {
      if (accepts(source.namespace)) listener.onCondition(key, source, condition, how);
    },
    onDeleted: (key) => listener.onDeleted(key),
  };
}
