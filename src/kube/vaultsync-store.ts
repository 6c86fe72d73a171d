import { createHash } from 'node:crypto';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { parseVaultPath, quoteForMessage, splitPath } from '../vault/path.js';
import { sortedByPath } from '../vault/path-order.js';
import type { WriteFence } from './lease-fence.js';
import { boundMessage } from './message-bounds.js';
import { sourceKey } from './objects.js';

// What this store keeps, defined here (the sync layer adapts its state to it: src/sync/state-store.ts).
export interface StoredEntry {
  path: string;
  hash: string;
  version?: number;
  binaryKeys?: string[];
  /** The data landed but the ownership marks did not yet. */
  marksPending?: boolean;
  /** Hash of the user custom_metadata (vault-sync.io/custom-metadata) last written with the marks; absent: none. */
  metadataHash?: string;
}

export interface StoredIntent {
  path: string;
  version: number;
  hash: string;
  binaryKeys?: string[];
  previousMetadata?: Record<string, string>;
}

export interface StoredFailure {
  path: string;
  hash: string;
  kind: string;
  message: string;
  retryAt?: string;
}

export interface StoredSyncRecord {
  inputFingerprint: string;
  entries: StoredEntry[];
  intents?: StoredIntent[];
  failures?: StoredFailure[];
  lastSyncTime: string;
  lastDriftCheckTime?: string;
}

export interface RecordCondition {
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** The source a record belongs to (its VaultSync is named after it and owned by it). */
export interface RecordOwner {
  kind: 'Deployment' | 'Secret';
  namespace: string;
  name: string;
  uid: string;
  path?: string;
}

export interface SyncRecordStore {
  get(sourceKey: string): StoredSyncRecord | undefined;
  /** The record as the API server has it now; the cached copy is replaced with it. */
  refresh(sourceKey: string): Promise<StoredSyncRecord | undefined>;
  /** Without `ready` the Ready condition stays as it is (progress of a sync still running). */
  set(sourceKey: string, source: RecordOwner, record: StoredSyncRecord, ready?: RecordCondition): Promise<void>;
  setCondition(sourceKey: string, source: RecordOwner, ready: RecordCondition): Promise<void>;
  delete(sourceKey: string): Promise<void>;
}

/** A record write refused because this replica does not hold its Lease now (another replica may be writing). */
export class FencedStatusWriteError extends Error {
  override readonly name = 'FencedStatusWriteError';
  constructor(key: string, reason: string) {
    super(`the VaultSync record of ${key} was not written: ${reason}`);
  }
}

export interface VaultSyncStoreOptions {
  /** The KV mounts a recorded path may name; anything else in a status is dropped at load. */
  kvMounts: readonly string[];
  /** Asked immediately before each write (status, create, delete): a replica not holding its Lease writes nothing. */
  fence?: WriteFence;
  /** A write the fence refused (metrics). */
  onFenced?(): void;
}

const GROUP = 'vault-sync.io';
const VERSION = 'v1alpha1';
const PLURAL = 'vaultsyncs';

interface VaultSyncObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { source: { kind: 'Deployment' | 'Secret'; name: string; uid?: string }; path?: string };
  status?: {
    inputFingerprint?: string;
    entries?: StoredEntry[];
    intents?: StoredIntent[];
    failures?: StoredFailure[];
    lastSyncTime?: string;
    lastDriftCheckTime?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }>;
  };
}

/**
 * The record changed on the API server since this copy was read (another writer, or a hand edit): nothing was
 * written, the cached copy is replaced with the current one, and the caller decides again from it.
 */
export class RecordConflictError extends Error {
  override readonly name = 'RecordConflictError';
}

/** `deployment-web`; names too long for Kubernetes keep a readable head and a hash of the whole. */
export function vaultSyncName(kind: string, name: string): string {
  const full = `${kind.toLowerCase()}-${name}`;
  if (full.length <= 253) return full;
  return `${full.slice(0, 240)}-${createHash('sha256').update(full).digest('hex').slice(0, 12)}`;
}

/**
 * Pure: the status fields of a sync record as written. Entries, intents and failures are sorted by path
 * here, the one place status is written, so the same record always reads the same whatever order its writes
 * landed in.
 */
export function recordStatus(record: StoredSyncRecord) {
  const entries = sortedByPath(record.entries, (e) => e.path);
  const first = entries[0];
  return {
    inputFingerprint: record.inputFingerprint,
    entries,
    // Sent even when empty: a merge patch leaves out-of-date lists in place when a field is omitted.
    intents: sortedByPath(record.intents ?? [], (i) => i.path),
    failures: sortedByPath(record.failures ?? [], (f) => f.path),
    shortHash: first ? first.hash.replace(/^hmac-sha256:/, '').slice(0, 12) : undefined,
    vaultVersion: first?.version,
    lastSyncTime: record.lastSyncTime,
    lastDriftCheckTime: record.lastDriftCheckTime,
  };
}

/** A Ready condition as stored, with the time its status last changed. */
export type StoredCondition = RecordCondition & { lastTransitionTime: string };

/**
 * Told about every Ready condition the store writes (and those it finds at load), and about deleted
 * records: the one choke point through which the dashboard learns which sources are not in sync and why.
 * Called synchronously after the write succeeded; a listener must be cheap and must not throw (what it
 * throws is ignored).
 */
export interface ConditionListener {
  onCondition(sourceKey: string, source: Pick<RecordOwner, 'kind' | 'namespace' | 'name'>, condition: StoredCondition, how: 'written' | 'loaded'): void;
  onDeleted(sourceKey: string): void;
}

/** Paths a loaded VaultSync status listed that are not Vault paths under the allowed KV mounts: dropped. */
export interface DroppedPaths {
  owner: Pick<RecordOwner, 'kind' | 'namespace' | 'name' | 'uid'>;
  /** As the status listed them (user input: quote them, bounded, before showing any). */
  paths: string[];
}

/**
 * The sync record of each source, kept in the status of a VaultSync object beside it
 * (docs/adr/0001-sync-state-in-vaultsync-status.md). Loaded once at start; afterwards the operator is its
 * only writer (the leader), so its in-memory copy is authoritative and reads cost no API call.
 *
 * A status is writable by whoever may write `vaultsyncs/status` in the namespace, so what is loaded is input:
 * each recorded path is parsed with the path grammar (on an allowed mount) and dropped when it does not
 * parse; `droppedAtLoad` says which, for the caller to report. Whether a path that parses is inside the
 * source's grant is decided where the grant is known (the sync layer, and the Vault port under it).
 */
export class VaultSyncStore implements SyncRecordStore {
  private readonly api: CustomObjectsApi;
  private readonly records = new Map<string, VaultSyncObject>();
  private readonly dropped = new Map<string, DroppedPaths>();

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespaces: readonly string[],
    private readonly listener: ConditionListener | undefined,
    private readonly options: VaultSyncStoreOptions,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** The records whose status listed paths that do not parse, by source key, as of the last load. */
  get droppedAtLoad(): ReadonlyMap<string, DroppedPaths> {
    return this.dropped;
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
    this.dropped.clear();
    for (const list of lists) {
      for (const item of (list as { items: VaultSyncObject[] }).items) {
        const key = sourceKey(item.spec.source.kind, item.metadata.namespace, item.spec.source.name);
        const paths = this.dropUnparsable(item);
        if (paths.length > 0) this.dropped.set(key, { owner: { kind: item.spec.source.kind, namespace: item.metadata.namespace, name: item.spec.source.name, uid: item.spec.source.uid ?? '' }, paths });
        this.records.set(key, item);
        this.notify(key, 'loaded');
      }
    }
  }

  /** Removes from a loaded status every entry, intent and failure whose path does not parse; returns those paths. */
  private dropUnparsable(item: VaultSyncObject): string[] {
    const status = item.status;
    if (!status) return [];
    const dropped: string[] = [];
    const keep = <T extends { path?: unknown }>(list: T[] | undefined): T[] | undefined => {
      if (!Array.isArray(list)) return undefined;
      return list.filter((entry) => {
        const path = entry?.path;
        const ok = typeof path === 'string' && parseVaultPath(path, this.options.kvMounts).ok;
        if (!ok) dropped.push(typeof path === 'string' ? path : String(path));
        return ok;
      });
    };
    status.entries = keep(status.entries);
    status.intents = keep(status.intents);
    status.failures = keep(status.failures);
    return dropped;
  }

  get size(): number {
    return this.records.size;
  }

  get(key: string): StoredSyncRecord | undefined {
    return recordOf(this.records.get(key));
  }

  async refresh(key: string): Promise<StoredSyncRecord | undefined> {
    const [kind, namespace, name] = key.split('/');
    try {
      const current = (await this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name: vaultSyncName(kind, name) })) as VaultSyncObject;
      this.records.set(key, current);
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      this.records.delete(key);
    }
    return this.get(key);
  }

  async set(key: string, source: RecordOwner, record: StoredSyncRecord, ready?: RecordCondition): Promise<void> {
    const conditions = ready ? this.conditions(key, ready) : this.records.get(key)?.status?.conditions;
    await this.writeStatus(key, source, { ...recordStatus(record), ...(conditions ? { conditions } : {}) });
  }

  async setCondition(key: string, source: RecordOwner, ready: RecordCondition): Promise<void> {
    const current = this.records.get(key)?.status?.conditions?.find((c) => c.type === 'Ready');
    if (current && current.status === ready.status && current.reason === ready.reason && current.message === boundMessage(ready.message)) return;
    await this.writeStatus(key, source, { ...(this.records.get(key)?.status ?? {}), conditions: this.conditions(key, ready) });
  }

  /**
   * DRY_RUN: records what the operator would do as a `Planned` condition beside Ready, changing nothing
   * else of the status. The next real sync (set/setCondition) writes Ready alone, so a stale plan goes away.
   */
  async setPlanned(key: string, source: RecordOwner, planned: RecordCondition): Promise<void> {
    const conditions = this.records.get(key)?.status?.conditions ?? [];
    const current = conditions.find((c) => c.type === 'Planned');
    const message = boundMessage(planned.message);
    if (current && current.status === planned.status && current.reason === planned.reason && current.message === message) return;
    const lastTransitionTime = current && current.status === planned.status ? current.lastTransitionTime : new Date().toISOString();
    await this.writeStatus(key, source, {
      ...(this.records.get(key)?.status ?? {}),
      conditions: [...conditions.filter((c) => c.type !== 'Planned'), { type: 'Planned', ...planned, message, lastTransitionTime }],
    });
  }

  async delete(key: string): Promise<void> {
    const record = this.records.get(key);
    if (!record) return;
    this.passFence(key);
    try {
      await this.api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: record.metadata.namespace, plural: PLURAL, name: record.metadata.name });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
    this.records.delete(key);
    this.tell((l) => l.onDeleted(key));
  }

  private notify(key: string, how: 'written' | 'loaded'): void {
    const record = this.records.get(key);
    const ready = record?.status?.conditions?.find((c) => c.type === 'Ready');
    if (!record || !ready) return;
    const source = { kind: record.spec.source.kind, namespace: record.metadata.namespace, name: record.spec.source.name };
    const condition: StoredCondition = {
      status: ready.status as RecordCondition['status'],
      reason: ready.reason ?? '',
      message: ready.message ?? '',
      lastTransitionTime: ready.lastTransitionTime ?? new Date().toISOString(),
    };
    this.tell((l) => l.onCondition(key, source, condition, how));
  }

  private tell(call: (listener: ConditionListener) => void): void {
    if (!this.listener) return;
    try {
      call(this.listener);
    } catch {
      // The dashboard's bookkeeping never fails a sync.
    }
  }

  private conditions(key: string, ready: RecordCondition) {
    const previous = this.records.get(key)?.status?.conditions?.find((c) => c.type === 'Ready');
    const changed = !previous || previous.status !== ready.status;
    // Bounded here, whoever wrote the message: one choke point for every condition.
    return [{ type: 'Ready', ...ready, message: boundMessage(ready.message), lastTransitionTime: changed ? new Date().toISOString() : previous!.lastTransitionTime }];
  }

  /** Records Vault outcomes only while this replica may act as the holder: checked right before each write. */
  private passFence(key: string): void {
    const fence = this.options.fence;
    if (!fence || fence.holds()) return;
    this.options.onFenced?.();
    throw new FencedStatusWriteError(key, fence.reason() ?? 'this replica does not hold the Lease');
  }

  /**
   * A merge patch of the status that carries the copy's resourceVersion: a record changed since (another
   * writer, a hand edit) is never overwritten from a stale copy (RecordConflictError, the copy refreshed).
   */
  private async writeStatus(key: string, source: RecordOwner, status: Record<string, unknown>): Promise<void> {
    this.passFence(key);
    let record = this.records.get(key) ?? (await this.create(source));
    this.passFence(key); // creating it took a round trip
    const patch = () =>
      this.api.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace: record.metadata.namespace, plural: PLURAL, name: record.metadata.name, body: { metadata: { resourceVersion: record.metadata.resourceVersion }, status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ) as Promise<VaultSyncObject>;
    let updated: VaultSyncObject;
    try {
      updated = await patch();
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === 409) {
        await this.refresh(key);
        throw new RecordConflictError(`the VaultSync of ${key} changed since it was read; nothing was written, decided again from the current one`);
      }
      if (code !== 404) throw error;
      record = await this.create(source); // deleted by hand: recreate it
      updated = await patch();
    }
    this.records.set(key, updated);
    if (status.conditions) this.notify(key, 'written');
  }

  private async create(source: RecordOwner): Promise<VaultSyncObject> {
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
      spec: { source: { kind: source.kind, name: source.name, uid: source.uid }, path: shownAnnotation(source.path) },
    };
    try {
      return (await this.api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: source.namespace, plural: PLURAL, body })) as VaultSyncObject;
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
      return (await this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: source.namespace, plural: PLURAL, name: body.metadata.name })) as VaultSyncObject;
    }
  }
}

function recordOf(object: VaultSyncObject | undefined): StoredSyncRecord | undefined {
  const status = object?.status;
  if (!status?.inputFingerprint) return undefined;
  return {
    inputFingerprint: status.inputFingerprint,
    entries: status.entries ?? [],
    intents: status.intents,
    failures: status.failures,
    lastSyncTime: status.lastSyncTime ?? '',
    lastDriftCheckTime: status.lastDriftCheckTime,
  };
}

/**
 * The path annotation as the VaultSync shows it (a kubectl column): as written when it is in the path
 * grammar, else bounded and escaped (no bidi override or control character reaches a terminal).
 */
function shownAnnotation(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  return splitPath(path).ok ? path.trim() : quoteForMessage(path);
}
