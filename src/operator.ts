import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Deployment, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { ClusterClient } from './kube/cluster.js';
import { isManaged, slimDeployment, slimSecret, sourceKey, type SlimDeployment, type SlimSecret } from './kube/objects.js';
import { describeKubeError, Reflector } from './kube/reflector.js';
import { WorkQueue } from './queue/work-queue.js';
import { Fingerprinter } from './sync/fingerprint.js';
import { Reconciler } from './sync/reconciler.js';
import { SecretIndex } from './sync/secret-index.js';
import { MemorySyncStateStore, type SyncStateStore } from './sync/state-store.js';
import { createVaultStack, type VaultStack } from './vault/stack.js';

export interface RunningOperator {
  /** Resolves when every cache has listed once and Vault accepted the login. */
  ready: Promise<void>;
  queue: WorkQueue;
  /** Stops watching, drains in-flight work, releases the limiter. */
  stop(): Promise<void>;
}

export interface OperatorOverrides {
  kubeConfig?: KubeConfig;
  vaultStack?: VaultStack;
  state?: SyncStateStore;
}

/** Wires the real clients together and starts watching. */
export function startOperator(config: Config, log: Logger, overrides: OperatorOverrides = {}): RunningOperator {
  const kubeConfig = overrides.kubeConfig ?? loadKubeConfig();
  const vaultStack = overrides.vaultStack ?? createVaultStack(config, log.child({ component: 'vault' }));
  const vault = vaultStack.vault;
  const cluster = new ClusterClient(kubeConfig);
  const fingerprint = new Fingerprinter(randomBytes(32));
  const index = new SecretIndex();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const namespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : [undefined];

  const deployments = namespaces.map(
    (namespace) =>
      new Reflector<V1Deployment, SlimDeployment>(kubeConfig, {
        name: `deployments${namespace ? '@' + namespace : ''}`,
        list: async () => {
          const list = namespace ? await apps.listNamespacedDeployment({ namespace }) : await apps.listDeploymentForAllNamespaces();
          return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
        },
        watchPath: namespace ? `/apis/apps/v1/namespaces/${namespace}/deployments` : '/apis/apps/v1/deployments',
        transform: slimDeployment,
        onChange: (_type, current, previous) => {
          if (isManaged(current) || (previous && isManaged(previous))) queue.add(sourceKey('Deployment', current.namespace, current.name));
        },
        log,
      }),
  );
  const secrets = namespaces.map(
    (namespace) =>
      new Reflector<V1Secret, SlimSecret>(kubeConfig, {
        name: `secrets${namespace ? '@' + namespace : ''}`,
        list: async () => {
          const list = namespace ? await core.listNamespacedSecret({ namespace }) : await core.listSecretForAllNamespaces();
          return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
        },
        watchPath: namespace ? `/api/v1/namespaces/${namespace}/secrets` : '/api/v1/secrets',
        transform: (secret) => slimSecret(secret, (data) => fingerprint.secretData(data)),
        onChange: (_type, current, previous) => {
          if (previous && previous.dataHash === current.dataHash && !isManaged(current) && !isManaged(previous)) return; // label edit
          for (const reader of index.readersOf(current.namespace, current.name)) queue.add(reader);
          if (isManaged(current) || (previous && isManaged(previous))) queue.add(sourceKey('Secret', current.namespace, current.name));
        },
        log,
      }),
  );
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
    },
    cluster,
    vault,
    state: overrides.state ?? new MemorySyncStateStore(),
    index,
    fingerprint,
    log,
    clusterName: config.clusterName,
    kvMounts: config.vault.kvMounts,
    maxSecretBytes: config.maxSecretBytes,
  });

  const queue = new WorkQueue({
    concurrency: config.workers,
    baseDelayMs: 500,
    maxDelayMs: 5 * 60_000,
    process: async (key) => {
      const outcome = await reconciler.reconcile(key);
      log.debug({ source: key, outcome }, 'reconciled');
    },
    onError: (key, error, attempt, retryInMs) =>
      log.warn({ source: key, attempt, retryInMs, err: error instanceof Error && error.name === 'VaultRequestError' ? error.message : describeKubeError(error) }, 'reconcile failed; will retry'),
  });

  const ready = (async () => {
    await vaultStack.login();
    const reflectors = [...deployments, ...secrets];
    // Secrets first, so that Deployment reconciles see a full Secret cache.
    for (const reflector of secrets) reflector.start();
    await Promise.all(secrets.map((r) => r.synced));
    for (const reflector of deployments) reflector.start();
    await Promise.all(reflectors.map((r) => r.synced));
    queue.start();
    log.info({ namespaces: config.watchNamespaces.length ? config.watchNamespaces : 'all' }, 'caches synced; syncing');
  })();

  return {
    ready,
    queue,
    async stop() {
      for (const reflector of [...deployments, ...secrets]) reflector.stop();
      await queue.shutdown();
      await vaultStack.stop();
    },
  };
}

function loadKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault(); // KUBECONFIG, ~/.kube/config, or in-cluster
  return kubeConfig;
}
