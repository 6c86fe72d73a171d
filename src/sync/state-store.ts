import type { SyncedEntry } from './plan.js';

/** What the operator last did for a source: enough to decide "equal means no-op" without asking Vault. */
export interface SyncState {
  /** Hash of everything the desired state was computed from (targets + each Secret's data hash). */
  inputFingerprint: string;
  entries: SyncedEntry[];
  lastSyncTime: string;
}

export interface SyncStateStore {
  get(sourceKey: string): Promise<SyncState | undefined>;
  set(sourceKey: string, state: SyncState): Promise<void>;
  delete(sourceKey: string): Promise<void>;
}

/** Process memory only: lost on restart, after which every source is verified against Vault once. */
export class MemorySyncStateStore implements SyncStateStore {
  private readonly states = new Map<string, SyncState>();
  async get(sourceKey: string) {
    return this.states.get(sourceKey);
  }
  async set(sourceKey: string, state: SyncState) {
    this.states.set(sourceKey, state);
  }
  async delete(sourceKey: string) {
    this.states.delete(sourceKey);
  }
}
