import type { SyncedEntry } from './plan.js';

/** What the operator last did for a source: enough to decide "equal means no-op" without asking Vault. */
export interface SyncState {
  /** Hash of everything the desired state was computed from (targets + each Secret's data hash). */
  inputFingerprint: string;
  entries: SyncedEntry[];
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
  /** Records a successful (or partial) sync and its Ready condition. */
  set(sourceKey: string, source: SourceRef, state: SyncState, ready: Condition): Promise<void>;
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
