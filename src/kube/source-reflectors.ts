import type { KubeConfig, V1Deployment, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isManaged, slimDeployment, slimSecret, type SlimDeployment, type SlimSecret } from './objects.js';
import { Reflector, type ChangeType } from './reflector.js';

interface VaultSyncPolicyObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { namespaces?: string[]; allowedPathPrefixes?: string[]; adoptPathPrefixes?: string[] };
}

/**
 * A VaultSyncPolicy as read from the cluster: more path prefixes a namespace may write under, and prefixes
 * where it may adopt. Plain data: the sync layer's tenancy and adoption checks take it as their grants.
 */
export interface PolicyGrant {
  name: string;
  namespaces: string[];
  allowedPathPrefixes: string[];
  adoptPathPrefixes: string[];
}

export interface SourceReflectorHandlers {
  onDeployment?(type: ChangeType, current: SlimDeployment, previous: SlimDeployment | undefined): void;
  onSecret?(type: ChangeType, current: SlimSecret, previous: SlimSecret | undefined): void;
  onPolicy?(): void;
  onError?(error: unknown): void;
}

/**
 * The caches every decision reads: Deployments and Secrets (per watched namespace, or cluster-wide) and the
 * cluster-scoped VaultSyncPolicy grants. Shared by the operator (which keeps them watching) and `plan`
 * (which lists them once and stops), so both see the cluster through the same slim objects.
 */
export class SourceReflectors {
  readonly deployments: Reflector<V1Deployment, SlimDeployment>[];
  readonly secrets: Reflector<V1Secret, SlimSecret>[];
  readonly policies: Reflector<VaultSyncPolicyObject, PolicyGrant>;

  constructor(
    kubeConfig: KubeConfig,
    watchNamespaces: readonly string[],
    hashSecretData: (data: ReadonlyMap<string, string>) => string,
    log: Logger,
    handlers: SourceReflectorHandlers = {},
  ) {
    const namespaces = watchNamespaces.length > 0 ? watchNamespaces : [undefined];
    const onError = (error: unknown) => handlers.onError?.(error);
    this.deployments = namespaces.map(
      (namespace) =>
        new Reflector<V1Deployment, SlimDeployment>(kubeConfig, {
          name: `deployments${namespace ? '@' + namespace : ''}`,
          path: namespace ? `/apis/apps/v1/namespaces/${namespace}/deployments` : '/apis/apps/v1/deployments',
          transform: slimDeployment,
          onChange: (type, current, previous) => handlers.onDeployment?.(type, current, previous),
          onError,
          log,
        }),
    );
    this.secrets = namespaces.map(
      (namespace) =>
        new Reflector<V1Secret, SlimSecret>(kubeConfig, {
          name: `secrets${namespace ? '@' + namespace : ''}`,
          // Pages streamed (memory: one Secret, not one page) and parsed raw by JSON.parse, which keeps a data key
          // named `__proto__` as a key (client-node's model deserializer would lose it).
          path: namespace ? `/api/v1/namespaces/${namespace}/secrets` : '/api/v1/secrets',
          transform: (secret) => slimSecret(secret, hashSecretData),
          onChange: (type, current, previous) => handlers.onSecret?.(type, current, previous),
          onError,
          log,
        }),
    );
    // Cluster-scoped grants of more Vault path prefixes.
    this.policies = new Reflector<VaultSyncPolicyObject, PolicyGrant>(kubeConfig, {
      name: 'vaultsyncpolicies',
      path: '/apis/vault-sync.io/v1alpha1/vaultsyncpolicies',
      transform: (p) => ({ name: p.metadata?.name ?? '', namespaces: p.spec?.namespaces ?? [], allowedPathPrefixes: p.spec?.allowedPathPrefixes ?? [], adoptPathPrefixes: p.spec?.adoptPathPrefixes ?? [] }),
      onChange: () => handlers.onPolicy?.(),
      onError,
      log,
    });
  }

  all(): Array<Reflector<any, unknown>> {
    return [...this.deployments, ...this.secrets, this.policies];
  }

  deployment(namespace: string, name: string): SlimDeployment | undefined {
    return findIn(this.deployments, namespace, name);
  }

  secret(namespace: string, name: string): SlimSecret | undefined {
    return findIn(this.secrets, namespace, name);
  }

  tenancyGrants(): PolicyGrant[] {
    return [...this.policies.values()];
  }

  /** Every annotated source (or one still holding the finalizer) in the caches. */
  *managedSources(): Generator<SlimDeployment | SlimSecret> {
    for (const reflector of [...this.deployments, ...this.secrets]) {
      for (const object of reflector.values()) if (isManaged(object)) yield object;
    }
  }

  /**
   * Starts listing every cache at once; resolves when every cache has listed once. Nothing may be reconciled
   * before that (the operator starts its queue after it), so the first Deployment reconciles see full caches
   * of Secrets and policies.
   */
  async startAndSync(): Promise<void> {
    for (const reflector of this.all()) reflector.start();
    await Promise.all(this.all().map((r) => r.synced));
  }

  stop(): void {
    for (const reflector of this.all()) reflector.stop();
  }
}

function findIn<S>(reflectors: Reflector<any, S>[], namespace: string, name: string): S | undefined {
  for (const reflector of reflectors) {
    const found = reflector.get(namespace, name);
    if (found) return found;
  }
  return undefined;
}
