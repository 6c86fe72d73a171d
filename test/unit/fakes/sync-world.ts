// Fake dependencies of the reconciler and the planner, for unit tests of the decision pipeline: an in-memory KV
// v2 engine that records every request (with the source it was made for), a cluster of Deployments and
// Secrets, and a record store. The e2e tests run the same code against a real apiserver and OpenBao.
import pino from 'pino';
import { FINALIZER } from '../../../src/kube/annotations.js';
import type { SlimDeployment, SlimMeta, SlimSecret, SourceKind } from '../../../src/kube/objects.js';
import { Planner } from '../../../src/plan/planner.js';
import { Fingerprinter } from '../../../src/sync/fingerprint.js';
import { createDecisionPipeline } from '../../../src/sync/gather.js';
import { Reconciler } from '../../../src/sync/reconciler.js';
import { SecretIndex } from '../../../src/sync/secret-index.js';
import type { Condition, SourceRef, SyncState, SyncStateStore } from '../../../src/sync/state-store.js';
import type { DecisionSettings, PolicyGrant } from '../../../src/sync/verdict.js';
import { VaultRequestError } from '../../../src/vault/errors.js';
import { formatPath, type KvPath } from '../../../src/vault/path.js';
import type { KvMetadata, RequestContext, VaultPort, WriteResult } from '../../../src/vault/port.js';
import type { DetailedListing, ListingRefusal } from '../../../src/vault/detailed-listing.js';
import type { ScanAnswer } from '../../../src/vault/detailed-scan.js';

export type VaultOp = 'write' | 'marks' | 'read-metadata' | 'list' | 'list-detailed' | 'scan-detailed' | 'delete-latest' | 'delete-all' | 'read-data';

export interface VaultRequest {
  op: VaultOp;
  path: KvPath;
  source?: string;
  cas?: number;
  /** The request was a drift check's (its low level in the fair line). */
  drift?: true;
}

interface StoredPath {
  path: KvPath;
  versions: Array<{ data: ReadonlyMap<string, string>; deleted: boolean }>;
  customMetadata: Record<string, string>;
}

/** A KV v2 engine in memory: versions, check-and-set, custom_metadata, soft and full deletes. */
export class FakeVault implements VaultPort {
  readonly paths = new Map<string, StoredPath>();
  readonly requests: VaultRequest[] = [];
  /** Runs before a data write is applied (another writer can be simulated here). */
  beforeWrite?: (path: KvPath) => void;
  /** The write is applied, then its answer is lost (a connection reset after Vault forwarded it). */
  loseAnswerOf?: (path: KvPath) => boolean;

  /** What the server answers a detailed listing with: OpenBao >= 2.2 lists; HashiCorp Vault has no such call; a token may lack `list`. */
  detailedListing: 'supported' | 'unsupported' | 'forbidden' = 'supported';
  /** What the server answers a scan with (OpenBao's SCAN): each answer is one request, a refusal too. */
  detailedScan: 'supported' | 'unsupported' | 'forbidden' | 'too-large' = 'supported';

  private record(op: VaultOp, path: KvPath, context?: RequestContext, cas?: number): void {
    this.requests.push({ op, path, source: context?.source, ...(cas !== undefined ? { cas } : {}), ...(context?.drift ? { drift: true as const } : {}) });
  }

  /** A write made by someone else (a person, another manager, a stale replica). */
  writeOutOfBand(path: KvPath, data: Record<string, string>, customMetadata?: Record<string, string>): number {
    const stored = this.paths.get(formatPath(path)) ?? { path, versions: [], customMetadata: {} };
    stored.versions.push({ data: new Map(Object.entries(data)), deleted: false });
    if (customMetadata) stored.customMetadata = { ...customMetadata };
    this.paths.set(formatPath(path), stored);
    return stored.versions.length;
  }

  async writeData(path: KvPath, data: ReadonlyMap<string, string>, options?: { cas?: number }, context?: RequestContext): Promise<WriteResult> {
    this.record('write', path, context, options?.cas);
    this.beforeWrite?.(path);
    const stored = this.paths.get(formatPath(path)) ?? { path, versions: [], customMetadata: {} };
    if (options?.cas !== undefined && options.cas !== stored.versions.length) {
      throw new VaultRequestError('write', formatPath(path), 400, 'cas-mismatch', 'HTTP 400: check-and-set parameter did not match the current version');
    }
    stored.versions.push({ data: new Map(data), deleted: false });
    this.paths.set(formatPath(path), stored);
    if (this.loseAnswerOf?.(path)) throw new VaultRequestError('write', formatPath(path), undefined, 'connection', 'no response (ECONNRESET)');
    return { version: stored.versions.length, customMetadata: { ...stored.customMetadata } };
  }

  async writeMetadata(path: KvPath, customMetadata: Record<string, string>, context?: RequestContext): Promise<void> {
    this.record('marks', path, context);
    const stored = this.paths.get(formatPath(path)) ?? { path, versions: [], customMetadata: {} };
    stored.customMetadata = { ...customMetadata };
    this.paths.set(formatPath(path), stored);
  }

  async readMetadata(path: KvPath, context?: RequestContext): Promise<KvMetadata | undefined> {
    this.record('read-metadata', path, context);
    const stored = this.paths.get(formatPath(path));
    if (!stored) return undefined;
    const latest = stored.versions.at(-1);
    return { currentVersion: stored.versions.length, customMetadata: { ...stored.customMetadata }, currentVersionDeleted: latest?.deleted ?? false };
  }

  async deleteLatest(path: KvPath, context?: RequestContext): Promise<void> {
    this.record('delete-latest', path, context);
    const latest = this.paths.get(formatPath(path))?.versions.at(-1);
    if (latest) latest.deleted = true;
  }

  async deleteAll(path: KvPath, context?: RequestContext): Promise<void> {
    this.record('delete-all', path, context);
    this.paths.delete(formatPath(path));
  }

  async listFolder(folder: KvPath, context?: RequestContext): Promise<string[]> {
    this.record('list', folder, context);
    const names = new Set<string>();
    for (const stored of this.paths.values()) {
      if (stored.path.mount !== folder.mount || !stored.path.key.startsWith(`${folder.key}/`)) continue;
      const rest = stored.path.key.slice(folder.key.length + 1);
      names.add(rest.includes('/') ? `${rest.split('/')[0]}/` : rest);
    }
    return [...names].sort();
  }

  /** One request for the whole folder (the fake does not page: the paging is tested on its own). */
  async listDetailedMetadata(folder: KvPath, context?: RequestContext): Promise<DetailedListing | { refused: ListingRefusal }> {
    if (this.detailedListing === 'unsupported') return { refused: 'unsupported' };
    this.record('list-detailed', folder, context);
    if (this.detailedListing === 'forbidden') return { refused: 'forbidden' };
    const entries = new Map<string, KvMetadata>();
    for (const stored of this.paths.values()) {
      if (stored.path.mount !== folder.mount || !stored.path.key.startsWith(`${folder.key}/`)) continue;
      const rest = stored.path.key.slice(folder.key.length + 1);
      if (rest.includes('/')) continue;
      const latest = stored.versions.at(-1);
      entries.set(rest, { currentVersion: stored.versions.length, customMetadata: { ...stored.customMetadata }, currentVersionDeleted: latest?.deleted ?? false });
    }
    return { entries };
  }

  /** One request for everything below the folder, by relative path. */
  async scanDetailedMetadata(folder: KvPath, context: RequestContext): Promise<ScanAnswer> {
    this.record('scan-detailed', folder, context);
    if (this.detailedScan !== 'supported') return { kind: 'refused', why: this.detailedScan };
    const entries = new Map<string, KvMetadata>();
    for (const stored of this.paths.values()) {
      if (stored.path.mount !== folder.mount || !stored.path.key.startsWith(`${folder.key}/`)) continue;
      const latest = stored.versions.at(-1);
      entries.set(stored.path.key.slice(folder.key.length + 1), { currentVersion: stored.versions.length, customMetadata: { ...stored.customMetadata }, currentVersionDeleted: latest?.deleted ?? false });
    }
    return { kind: 'scan', entries };
  }

  async readData(path: KvPath, context?: RequestContext): Promise<ReadonlyMap<string, string> | undefined> {
    this.record('read-data', path, context);
    const latest = this.paths.get(formatPath(path))?.versions.at(-1);
    return latest && !latest.deleted ? latest.data : undefined;
  }

  /** The latest readable value at a path, as an object (tests compare it). */
  value(path: string): Record<string, string> | undefined {
    const latest = this.paths.get(path)?.versions.at(-1);
    return latest && !latest.deleted ? Object.fromEntries(latest.data) : undefined;
  }

  versionsOf(path: string): number {
    return this.paths.get(path)?.versions.length ?? 0;
  }

  marksOf(path: string): Record<string, string> | undefined {
    return this.paths.get(path)?.customMetadata;
  }
}

export interface RecordedEvent {
  source: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

/** Deployments, Secrets (values kept apart from the cache's hashes), namespaces, policies; the Kubernetes writes recorded. */
export class FakeCluster {
  readonly deployments = new Map<string, SlimDeployment>();
  readonly secrets = new Map<string, SlimSecret>();
  readonly values = new Map<string, Map<string, Uint8Array>>();
  readonly terminating = new Set<string>();
  readonly events: RecordedEvent[] = [];
  grants: PolicyGrant[] = [];
  private revision = 1;

  constructor(private readonly fingerprint: Fingerprinter) {}

  nextVersion(): string {
    return String(++this.revision);
  }

  putSecret(namespace: string, name: string, data: Record<string, string>, meta: Partial<SlimMeta> = {}): void {
    const bytes = new Map(Object.entries(data).map(([k, v]) => [k, new TextEncoder().encode(v)]));
    const base64 = new Map(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
    const previous = this.secrets.get(key(namespace, name));
    this.values.set(key(namespace, name), bytes);
    this.secrets.set(key(namespace, name), {
      kind: 'Secret',
      namespace,
      name,
      uid: previous?.uid ?? `uid-secret-${namespace}-${name}`,
      resourceVersion: this.nextVersion(),
      annotations: previous?.annotations ?? {},
      finalizers: previous?.finalizers ?? [],
      ...meta,
      dataHash: this.fingerprint.secretData(base64),
    });
  }

  putDeployment(namespace: string, name: string, annotations: Record<string, string>, secretNames: readonly string[]): void {
    const previous = this.deployments.get(key(namespace, name));
    this.deployments.set(key(namespace, name), {
      kind: 'Deployment',
      namespace,
      name,
      uid: previous?.uid ?? `uid-deploy-${namespace}-${name}`,
      resourceVersion: this.nextVersion(),
      annotations,
      finalizers: previous?.finalizers ?? [],
      ...(previous?.deletionTimestamp ? { deletionTimestamp: previous.deletionTimestamp } : {}),
      podSpec: { containers: [{ name: 'app', envFrom: secretNames.map((secretName) => ({ secretRef: { name: secretName } })) }] },
    });
  }

  /** kubectl delete: the object goes at once without finalizers, else it gets a deletionTimestamp. */
  deleteObject(kind: SourceKind, namespace: string, name: string): void {
    const map: Map<string, SlimMeta> = kind === 'Deployment' ? this.deployments : this.secrets;
    const object = map.get(key(namespace, name));
    if (!object) return;
    if (object.finalizers.length === 0) map.delete(key(namespace, name));
    else map.set(key(namespace, name), { ...object, deletionTimestamp: object.deletionTimestamp ?? '2026-01-01T00:00:00.000Z' });
  }

  // SourceLookup
  deployment(namespace: string, name: string): SlimDeployment | undefined {
    return this.deployments.get(key(namespace, name));
  }
  secret(namespace: string, name: string): SlimSecret | undefined {
    return this.secrets.get(key(namespace, name));
  }
  tenancyGrants(): readonly PolicyGrant[] {
    return this.grants;
  }

  // The pipeline's reads
  /** Called as a Secret's values have been read (a test looks at, or changes, the world at that instant). */
  onReadSecret?: (namespace: string, name: string) => void;
  async readSecretData(namespace: string, name: string): Promise<ReadonlyMap<string, Uint8Array> | undefined> {
    const values = this.values.get(key(namespace, name));
    this.onReadSecret?.(namespace, name);
    return values;
  }
  async namespaceIsTerminating(namespace: string): Promise<boolean> {
    return this.terminating.has(namespace);
  }

  // The reconciler's writes
  async addFinalizer(kind: SourceKind, object: SlimMeta): Promise<void> {
    this.setFinalizers(kind, object, (finalizers) => (finalizers.includes(FINALIZER) ? finalizers : [...finalizers, FINALIZER]));
  }
  async removeFinalizer(kind: SourceKind, object: SlimMeta): Promise<void> {
    this.setFinalizers(kind, object, (finalizers) => finalizers.filter((f) => f !== FINALIZER));
  }
  async createEvent(kind: SourceKind, object: SlimMeta, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.events.push({ source: `${kind}/${object.namespace}/${object.name}`, type, reason, message });
  }

  private setFinalizers(kind: SourceKind, object: SlimMeta, change: (finalizers: string[]) => string[]): void {
    const map: Map<string, SlimMeta> = kind === 'Deployment' ? this.deployments : this.secrets;
    const current = map.get(key(object.namespace, object.name));
    if (!current) return;
    const finalizers = change(current.finalizers);
    // A deleted object whose last finalizer goes is gone.
    if (current.deletionTimestamp && finalizers.length === 0) map.delete(key(object.namespace, object.name));
    else map.set(key(object.namespace, object.name), { ...current, finalizers, resourceVersion: this.nextVersion() });
  }
}

/** Records by source key; `refreshes` counts reads from "the API server". */
export class FakeRecords implements SyncStateStore {
  readonly records = new Map<string, SyncState>();
  readonly conditions = new Map<string, Condition>();
  refreshes = 0;

  async get(sourceKey: string): Promise<SyncState | undefined> {
    const record = this.records.get(sourceKey);
    return record ? structuredClone(record) : undefined;
  }
  async refresh(sourceKey: string): Promise<SyncState | undefined> {
    this.refreshes += 1;
    return this.get(sourceKey);
  }
  async set(sourceKey: string, _source: SourceRef, state: SyncState, ready?: Condition): Promise<void> {
    this.records.set(sourceKey, structuredClone(state));
    if (ready) this.conditions.set(sourceKey, ready);
  }
  async setCondition(sourceKey: string, _source: SourceRef, ready: Condition): Promise<void> {
    this.conditions.set(sourceKey, ready);
  }
  async delete(sourceKey: string): Promise<void> {
    this.records.delete(sourceKey);
    this.conditions.delete(sourceKey);
  }
}

export const silentLog = pino({ level: 'silent' });

export interface SyncWorld {
  /** The reconciler's Secret→source index (the operator enqueues a source's readers from it). */
  index: SecretIndex;
  vault: FakeVault;
  cluster: FakeCluster;
  records: FakeRecords;
  settings: DecisionSettings;
  /** The clock every decision and record reads (ms); tests move it. */
  clock: { now: number };
  reconciler: Reconciler;
  planner: Planner;
  /** A new Reconciler over the same world (a restarted operator: its memory gone, Vault and the records kept). */
  restart(): void;
}

/** The operator's wiring (src/operator.ts) over fakes: the same factory for the reconciler and the planner. */
export function syncWorld(overrides: Partial<DecisionSettings> = {}, kvVersion: 1 | 2 = 2, options: { driftScanMaxBytes?: number } = {}): SyncWorld {
  const fingerprint = new Fingerprinter(new Uint8Array(32).fill(7));
  const vault = new FakeVault();
  const cluster = new FakeCluster(fingerprint);
  const records = new FakeRecords();
  const settings: DecisionSettings = { clusterName: 'test', kvMounts: ['secret'], tenantPathTemplate: 'secret/{namespace}/', maxSecretBytes: 1024 * 1024, maxSecretsPerSource: 1000, maxKeysPerPath: 480, contentHashInMetadata: false, deletePolicy: 'all-versions', ...overrides };
  const clock = { now: 1_800_000_000_000 };
  const now = () => clock.now;
  const pipeline = (readOnly: boolean) => createDecisionPipeline({ sources: cluster, state: records, cluster, vault, kvVersion: async () => kvVersion, fingerprint, settings, readOnly, now, ...(readOnly ? {} : { driftScanMaxBytes: options.driftScanMaxBytes ?? 0 }) });
  const reconcilerOf = () => {
    world.index = new SecretIndex();
    return new Reconciler({ pipeline: pipeline(false), cluster, vault, state: records, index: world.index, log: silentLog, cleanupTimeoutMs: 60_000, now });
  };
  const world: SyncWorld = {
    index: new SecretIndex(),
    vault,
    cluster,
    records,
    settings,
    clock,
    reconciler: undefined as unknown as Reconciler, // built below: it records its index in the world
    planner: new Planner({ pipeline: pipeline(true) }),
    restart: () => {
      world.reconciler = reconcilerOf();
    },
  };
  world.reconciler = reconcilerOf();
  return world;
}
