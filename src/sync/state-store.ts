import type { Logger } from 'pino';
import type { DroppedPaths, StoredSyncRecord, SyncRecordStore } from '../kube/vaultsync-store.js';
import { formatPath, parseKvPathLoose, quoteForMessage, type KvPath } from '../vault/path.js';
import type { SyncedEntry } from './plan.js';
import type { WriteIntent } from './write-policy.js';

/** A path whose write Vault refused with an answer a retry will not change (docs/adr/0003-…). */
export interface WriteFailure {
  path: KvPath;
  /** The content that was refused: a change of content is a new attempt. */
  hash: string;
  /** The Vault error kind (bad-request, forbidden, too-large, …). */
  kind: string;
  /** Bounded and sanitized: never a value. */
  message: string;
  /** Retried once this time has passed (403: a policy fix can cure it); absent = only on a change. */
  retryAt?: string;
}

/** What the operator last did for a source: enough to decide "equal means no-op" without asking Vault. */
export interface SyncState {
  /** Hash of everything the desired state was computed from (targets + each Secret's data hash). */
  inputFingerprint: string;
  entries: SyncedEntry[];
  /** Writes sent (or about to be) whose landing is not recorded yet: a crash in between is resolved with them. */
  intents?: WriteIntent[];
  /** Writes Vault refused terminally; not retried until their content changes (or their retryAt). */
  failures?: WriteFailure[];
  lastSyncTime: string;
  /** When Vault's metadata was last compared with `entries` (vault-sync.io/reconcile). */
  lastDriftCheckTime?: string;
}

export interface Condition {
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  /** Names and paths only, never values. */
  message: string;
}

/** Where the sync record of each source lives. The source is passed so a record can name and own it. */
export interface SyncStateStore {
  get(sourceKey: string): Promise<SyncState | undefined>;
  /** The record as the API server has it now (not a cached copy): after a version conflict. */
  refresh?(sourceKey: string): Promise<SyncState | undefined>;
  /** Records a sync (complete, partial or in progress); with `ready`, also its Ready condition. */
  set(sourceKey: string, source: SourceRef, state: SyncState, ready?: Condition): Promise<void>;
  /** Records a problem without changing what was synced. */
  setCondition(sourceKey: string, source: SourceRef, ready: Condition): Promise<void>;
  delete(sourceKey: string): Promise<void>;
}

export interface SourceRef {
  kind: 'Deployment' | 'Secret';
  namespace: string;
  name: string;
  uid: string;
  path?: string;
}

/**
 * The sync layer's view of the kube layer's record store: the record keeps paths as the strings it shows
 * (`secret/team/app`), this side works with parsed paths.
 */
export function syncStateStore(records: SyncRecordStore): SyncStateStore {
  return {
    async get(key) {
      const record = records.get(key);
      return record ? fromRecord(record) : undefined;
    },
    async refresh(key) {
      const record = await records.refresh(key);
      return record ? fromRecord(record) : undefined;
    },
    set: (key, source, state, ready) => records.set(key, source, toRecord(state), ready),
    setCondition: (key, source, ready) => records.setCondition(key, source, ready),
    delete: (key) => records.delete(key),
  };
}

function fromRecord(record: StoredSyncRecord): SyncState {
  return {
    inputFingerprint: record.inputFingerprint,
    entries: record.entries.map((e) => ({
      path: parseKvPathLoose(e.path),
      hash: e.hash,
      ...(e.version !== undefined ? { version: e.version } : {}),
      ...(e.binaryKeys?.length ? { binaryKeys: e.binaryKeys } : {}),
      ...(e.marksPending ? { marksPending: true } : {}),
      ...(e.metadataHash ? { metadataHash: e.metadataHash } : {}),
    })),
    intents: record.intents?.map((i) => ({ ...i, path: parseKvPathLoose(i.path) })),
    failures: record.failures?.map((f) => ({ ...f, path: parseKvPathLoose(f.path) })),
    lastSyncTime: record.lastSyncTime,
    lastDriftCheckTime: record.lastDriftCheckTime,
  };
}

/** The form Events show; parseKvPathLoose is its inverse. */
const recordPath = (path: KvPath) => formatPath(path);

function toRecord(state: SyncState): StoredSyncRecord {
  return {
    inputFingerprint: state.inputFingerprint,
    entries: state.entries.map((e) => ({
      path: recordPath(e.path),
      hash: e.hash,
      ...(e.version !== undefined ? { version: e.version } : {}),
      ...(e.binaryKeys?.length ? { binaryKeys: e.binaryKeys } : {}),
      ...(e.marksPending ? { marksPending: true } : {}),
      ...(e.metadataHash ? { metadataHash: e.metadataHash } : {}),
    })),
    intents: (state.intents ?? []).map((i) => ({ ...i, path: recordPath(i.path) })),
    failures: (state.failures ?? []).map((f) => ({ ...f, path: recordPath(f.path) })),
    lastSyncTime: state.lastSyncTime,
    lastDriftCheckTime: state.lastDriftCheckTime,
  };
}

/** The reason of the Event and the refusal count for a status that listed paths that do not parse. */
export const INVALID_RECORD = 'InvalidRecord';

export interface DroppedPathsReport {
  log: Logger;
  /** Records a Warning Event on the source (absent in DRY_RUN and plan: they record no Event). */
  event?(owner: DroppedPaths['owner'], reason: string, message: string): Promise<void>;
  /** Counts one record reported (vault_sync_refusals_total{reason="InvalidRecord"}). */
  count?(): void;
  /** Sharding: report only the sources this engine serves. */
  accepts?(namespace: string): boolean;
}

/**
 * Reports the paths a loaded VaultSync status listed that are not Vault paths under the allowed KV mounts
 * (the store dropped them: nothing is ever done with them). The log, read by the operator's admins, quotes
 * a few of them (bounded, escaped); the Event, read in the source's namespace, names none: it says how many
 * and that they are ignored, never what or whose they are.
 */
export async function reportDroppedPaths(dropped: ReadonlyMap<string, DroppedPaths>, report: DroppedPathsReport): Promise<void> {
  for (const [key, { owner, paths }] of [...dropped].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (report.accepts && !report.accepts(owner.namespace)) continue;
    report.log.warn({ source: key, dropped: paths.length, paths: paths.slice(0, 5).map(quoteForMessage) }, 'the VaultSync status lists paths that are not Vault paths under the allowed KV mounts; they are ignored');
    report.count?.();
    const message = `the VaultSync status of this ${owner.kind} listed ${paths.length} path(s) that are not Vault paths under the allowed KV mounts; they were dropped from its record and nothing is done with them`;
    if (report.event) await report.event(owner, INVALID_RECORD, message).catch((error: unknown) => report.log.warn({ source: key, err: error instanceof Error ? error.message : String(error) }, 'could not record an Event'));
  }
}
