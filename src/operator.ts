import { KubeConfig, type V1Deployment, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { ClusterClient } from './kube/cluster.js';
import { PooledKubeConfig } from './kube/kube-http.js';
import { loadOrCreateHashKey } from './kube/hash-key.js';
import { isManaged, parseSourceKey, slimDeployment, slimSecret, sourceKey, type SlimDeployment, type SlimSecret } from './kube/objects.js';
import { describeKubeError, Reflector } from './kube/reflector.js';
import { VaultSyncStore, type ConditionListener } from './kube/vaultsync-store.js';
import { Metrics } from './observability/metrics.js';
import { vaultMetricsOf } from './observability/vault-metrics.js';
import { WorkQueue } from './queue/work-queue.js';
import { Fingerprinter } from './sync/fingerprint.js';
import { Reconciler } from './sync/reconciler.js';
import { syncStateStore } from './sync/state-store.js';
import { SecretIndex } from './sync/secret-index.js';
import type { TenancyGrant } from './sync/tenancy.js';
import type { AdoptionGrant } from './sync/write-policy.js';
import { createVaultStack, type VaultStack } from './vault/stack.js';

export interface RunningOperator {
  /** Resolves when every cache has listed once and Vault accepted the login. */
  ready: Promise<void>;
  queue: WorkQueue;
  metrics: Metrics;
  /** True once every cache has listed once. */
  cachesSynced(): boolean;
  /** True while the Vault client holds a usable token. */
  vaultAuthenticated(): boolean;
  /** Re-queues every managed source in the caches (a periodic safety net; unchanged sources cost no Vault call). */
  resync(): number;
  /** Stops watching, drains in-flight work, releases the limiter. */
  stop(): Promise<void>;
}

export interface OperatorOverrides {
  kubeConfig?: KubeConfig;
  vaultStack?: VaultStack;
  metrics?: Metrics;
  /** Sharding: reconcile only sources in the namespaces this returns true for. */
  accepts?: (namespace: string) => boolean;
  /** Told about every VaultSync Ready condition of this engine's sources (the dashboard's not-Ready table). */
  conditionListener?: ConditionListener;
}

interface VaultSyncPolicyObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { namespaces?: string[]; allowedPathPrefixes?: string[]; adoptPathPrefixes?: string[] };
}

/** Wires the real clients together and starts watching. */
export function startOperator(config: Config, log: Logger, overrides: OperatorOverrides = {}): RunningOperator {
  // One keep-alive agent for all of the operator's Kubernetes traffic (lists, watches, reads, writes).
  const kubeConfig = PooledKubeConfig.from(overrides.kubeConfig ?? loadKubeConfig());
  const metrics = overrides.metrics ?? new Metrics();
  const vaultStack = overrides.vaultStack ?? createVaultStack(config, log.child({ component: 'vault' }), vaultMetricsOf(metrics));
  const cluster = new ClusterClient(kubeConfig);
  const fingerprint = new Fingerprinter();
  const index = new SecretIndex();
  const state = new VaultSyncStore(kubeConfig, config.watchNamespaces, ownSources(overrides.conditionListener, overrides.accepts));
  const namespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : [undefined];
  const countEvent = (resource: string) => (type: string) => metrics.informerEvents.labels(resource, type).inc();

  const deployments = namespaces.map(
    (namespace) =>
      new Reflector<V1Deployment, SlimDeployment>(kubeConfig, {
        name: `deployments${namespace ? '@' + namespace : ''}`,
        path: namespace ? `/apis/apps/v1/namespaces/${namespace}/deployments` : '/apis/apps/v1/deployments',
        transform: slimDeployment,
        onChange: (type, current, previous) => {
          countEvent('deployments')(type);
          if (isManaged(current) || (previous && isManaged(previous))) queue.add(sourceKey('Deployment', current.namespace, current.name));
        },
        onError: () => metrics.errors.labels('watch').inc(),
        log,
      }),
  );
  const secrets = namespaces.map(
    (namespace) =>
      new Reflector<V1Secret, SlimSecret>(kubeConfig, {
        name: `secrets${namespace ? '@' + namespace : ''}`,
        // Pages streamed (memory: one Secret, not one page) and parsed raw by JSON.parse, which keeps a data key
        // named `__proto__` as a key (client-node's model deserializer would lose it).
        path: namespace ? `/api/v1/namespaces/${namespace}/secrets` : '/api/v1/secrets',
        transform: (secret) => slimSecret(secret, (data) => fingerprint.secretData(data)),
        onChange: (type, current, previous) => {
          countEvent('secrets')(type);
          if (previous && previous.dataHash === current.dataHash && !isManaged(current) && !isManaged(previous)) return; // label edit
          for (const reader of index.readersOf(current.namespace, current.name)) queue.add(reader);
          if (isManaged(current) || (previous && isManaged(previous))) queue.add(sourceKey('Secret', current.namespace, current.name));
        },
        onError: () => metrics.errors.labels('watch').inc(),
        log,
      }),
  );
  // Cluster-scoped grants of more Vault path prefixes; a change re-checks every source.
  const policies = new Reflector<VaultSyncPolicyObject, TenancyGrant & AdoptionGrant>(kubeConfig, {
    name: 'vaultsyncpolicies',
    path: '/apis/vault-sync.io/v1alpha1/vaultsyncpolicies',
    transform: (p) => ({ name: p.metadata?.name ?? '', namespaces: p.spec?.namespaces ?? [], allowedPathPrefixes: p.spec?.allowedPathPrefixes ?? [], adoptPathPrefixes: p.spec?.adoptPathPrefixes ?? [] }),
    onChange: () => {
      if (!started) return;
      for (const reflector of [...deployments, ...secrets]) {
        for (const object of reflector.values()) if (isManaged(object)) queue.add(sourceKey(object.kind, object.namespace, object.name));
      }
    },
    onError: () => metrics.errors.labels('watch').inc(),
    log,
  });
  const findIn = <S>(reflectors: Reflector<any, S>[], namespace: string, name: string) => {
    for (const reflector of reflectors) {
      const found = reflector.get(namespace, name);
      if (found) return found;
    }
    return undefined;
  };

  const reconciler = new Reconciler({
    sources: {
      deployment: (namespace, name) => findIn(deployments, namespace, name),
      secret: (namespace, name) => findIn(secrets, namespace, name),
      tenancyGrants: () => [...policies.values()],
    },
    cluster,
    vault: vaultStack.vault,
    state: syncStateStore(state),
    index,
    fingerprint,
    log,
    metrics,
    clusterName: config.clusterName,
    contentHashInMetadata: config.contentHashInMetadata,
    kvMounts: config.vault.kvMounts,
    maxSecretBytes: config.maxSecretBytes,
    tenantPathTemplate: config.tenantPathTemplate,
    deletePolicy: config.deletePolicy,
    cleanupTimeoutMs: config.cleanupTimeoutMs,
  });

  const queue = new WorkQueue({
    concurrency: config.workers,
    baseDelayMs: 500,
    maxDelayMs: 5 * 60_000,
    process: async (key, slot) => {
      if (overrides.accepts && !overrides.accepts(parseSourceKey(key).namespace)) return; // another shard's
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
  const allReflectors = () => [...deployments, ...secrets, policies];
  const ready = (async () => {
    fingerprint.useKey(await loadOrCreateHashKey(kubeConfig, config.operatorNamespace, config.hashKeySecret));
    await vaultStack.login();
    await state.load();
    // Every cache lists at once; nothing is reconciled before all have listed (the queue starts below), so the
    // first Deployment reconciles see full caches of Secrets and policies.
    for (const reflector of allReflectors()) reflector.start();
    await Promise.all(allReflectors().map((r) => r.synced));
    started = true;
    queue.start();
    log.info({ namespaces: config.watchNamespaces.length ? config.watchNamespaces : 'all', records: state.size }, 'caches synced; syncing');
  })();

  return {
    ready,
    queue,
    metrics,
    cachesSynced: () => allReflectors().every((r) => r.isSynced),
    vaultAuthenticated: () => vaultStack.authenticated(),
    resync() {
      let queued = 0;
      for (const reflector of [...deployments, ...secrets]) {
        for (const object of reflector.values()) {
          if (!isManaged(object)) continue;
          queue.add(sourceKey(object.kind, object.namespace, object.name));
          queued += 1;
        }
      }
      return queued;
    },
    async stop() {
      for (const reflector of allReflectors()) reflector.stop();
      await queue.shutdown();
      await vaultStack.stop();
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

function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault(); // KUBECONFIG, ~/.kube/config, or in-cluster
  return kubeConfig;
}
