import { createHash } from 'node:crypto';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Condition, SourceRef, SyncState, SyncStateStore } from '../sync/state-store.js';
import { parseKvPathLoose } from '../vault/path.js';
import { sourceKey } from './objects.js';

const GROUP = 'vault-sync.io';
const VERSION = 'v1alpha1';
const PLURAL = 'vaultsyncs';

interface VaultSyncObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { source: { kind: 'Deployment' | 'Secret'; name: string; uid?: string }; path?: string };
  status?: {
    inputFingerprint?: string;
    entries?: Array<{ path: string; hash: string; version?: number; binaryKeys?: string[] }>;
    lastSyncTime?: string;
    lastDriftCheckTime?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }>;
  };
}

/** `deployment-web`; names too long for Kubernetes keep a readable head and a hash of the whole. */
export function vaultSyncName(kind: string, name: string): string {
  const full = `${kind.toLowerCase()}-${name}`;
  if (full.length <= 253) return full;
  return `${full.slice(0, 240)}-${createHash('sha256').update(full).digest('hex').slice(0, 12)}`;
}

/**
 * The sync record of each source, kept in the status of a VaultSync object beside it
 * (docs/adr/0001-sync-state-in-vaultsync-status.md). Loaded once at start; afterwards the operator is its
 * only writer (the leader), so its in-memory copy is authoritative and reads cost no API call.
 */
export class VaultSyncStore implements SyncStateStore {
  private readonly api: CustomObjectsApi;
  private readonly records = new Map<string, VaultSyncObject>();

  constructor(kubeConfig: KubeConfig, private readonly namespaces: readonly string[]) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** Reads every existing VaultSync (all namespaces, or the watched ones). */
  async load(): Promise<void> {
    // Right after `helm install` the CRD may be Established while its storage still initializes (429).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.loadOnce();
      } catch (error) {
        const code = (error as { code?: number }).code;
        if (code === 404) throw new Error('the VaultSync CRD (vaultsyncs.vault-sync.io) is not installed: apply crds/ (helm installs it) before starting the operator');
        const transient = code === 429 || (code !== undefined && code >= 500);
        if (!transient || attempt >= 8) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  private async loadOnce(): Promise<void> {
    const lists =
      this.namespaces.length === 0
        ? [await this.api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })]
        : await Promise.all(this.namespaces.map((namespace) => this.api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })));
    this.records.clear();
    for (const list of lists) {
      for (const item of (list as { items: VaultSyncObject[] }).items) {
        this.records.set(sourceKey(item.spec.source.kind, item.metadata.namespace, item.spec.source.name), item);
      }
    }
  }

  get size(): number {
    return this.records.size;
  }

  async get(key: string): Promise<SyncState | undefined> {
    const status = this.records.get(key)?.status;
    if (!status?.inputFingerprint) return undefined;
    return {
      inputFingerprint: status.inputFingerprint,
      entries: (status.entries ?? []).map((e) => ({ path: parseKvPathLoose(e.path), hash: e.hash, version: e.version, binaryKeys: e.binaryKeys })),
      lastSyncTime: status.lastSyncTime ?? '',
      lastDriftCheckTime: status.lastDriftCheckTime,
    };
  }

  async set(key: string, source: SourceRef, state: SyncState, ready: Condition): Promise<void> {
    const first = state.entries[0];
    await this.writeStatus(key, source, {
      inputFingerprint: state.inputFingerprint,
      entries: state.entries.map((e) => ({
        path: `${e.path.mount}/${e.path.key}`,
        hash: e.hash,
        ...(e.version !== undefined ? { version: e.version } : {}),
        ...(e.binaryKeys?.length ? { binaryKeys: e.binaryKeys } : {}),
      })),
      shortHash: first ? first.hash.replace(/^hmac-sha256:/, '').slice(0, 12) : undefined,
      vaultVersion: first?.version,
      lastSyncTime: state.lastSyncTime,
      lastDriftCheckTime: state.lastDriftCheckTime,
      conditions: this.conditions(key, ready),
    });
  }

  async setCondition(key: string, source: SourceRef, ready: Condition): Promise<void> {
    const current = this.records.get(key)?.status?.conditions?.find((c) => c.type === 'Ready');
    if (current && current.status === ready.status && current.reason === ready.reason && current.message === ready.message) return;
    await this.writeStatus(key, source, { ...(this.records.get(key)?.status ?? {}), conditions: this.conditions(key, ready) });
  }

  /**
   * DRY_RUN: records what the operator would do as a `Planned` condition beside Ready, changing nothing
   * else of the status. The next real sync (set/setCondition) writes Ready alone, so a stale plan goes away.
   */
  async setPlanned(key: string, source: SourceRef, planned: Condition): Promise<void> {
    const conditions = this.records.get(key)?.status?.conditions ?? [];
    const current = conditions.find((c) => c.type === 'Planned');
    if (current && current.status === planned.status && current.reason === planned.reason && current.message === planned.message) return;
    const lastTransitionTime = current && current.status === planned.status ? current.lastTransitionTime : new Date().toISOString();
    await this.writeStatus(key, source, {
      ...(this.records.get(key)?.status ?? {}),
      conditions: [...conditions.filter((c) => c.type !== 'Planned'), { type: 'Planned', ...planned, lastTransitionTime }],
    });
  }

  async delete(key: string): Promise<void> {
    const record = this.records.get(key);
    if (!record) return;
    try {
      await this.api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: record.metadata.namespace, plural: PLURAL, name: record.metadata.name });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
    this.records.delete(key);
  }

  private conditions(key: string, ready: Condition) {
    const previous = this.records.get(key)?.status?.conditions?.find((c) => c.type === 'Ready');
    const changed = !previous || previous.status !== ready.status;
    return [{ type: 'Ready', ...ready, lastTransitionTime: changed ? new Date().toISOString() : previous!.lastTransitionTime }];
  }

  private async writeStatus(key: string, source: SourceRef, status: Record<string, unknown>): Promise<void> {
    let record = this.records.get(key) ?? (await this.create(source));
    const body = { status };
    const patch = () =>
      this.api.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace: record.metadata.namespace, plural: PLURAL, name: record.metadata.name, body },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ) as Promise<VaultSyncObject>;
    let updated: VaultSyncObject;
    try {
      updated = await patch();
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      record = await this.create(source); // deleted by hand: recreate it
      updated = await patch();
    }
    this.records.set(key, updated);
  }

  private async create(source: SourceRef): Promise<VaultSyncObject> {
    const body: VaultSyncObject & { apiVersion: string; kind: string } = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'VaultSync',
      metadata: {
        name: vaultSyncName(source.kind, source.name),
        namespace: source.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'vault-sync-operator' },
        // Garbage-collected with its source in a real cluster, even if the operator is gone.
        ownerReferences: source.uid ? [{ apiVersion: source.kind === 'Deployment' ? 'apps/v1' : 'v1', kind: source.kind, name: source.name, uid: source.uid }] : undefined,
      } as VaultSyncObject['metadata'],
      spec: { source: { kind: source.kind, name: source.name, uid: source.uid }, path: source.path },
    };
    try {
      return (await this.api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: source.namespace, plural: PLURAL, body })) as VaultSyncObject;
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
      return (await this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: source.namespace, plural: PLURAL, name: body.metadata.name })) as VaultSyncObject;
    }
  }
}
