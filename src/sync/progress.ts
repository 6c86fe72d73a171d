import type { Logger } from 'pino';
import { describeKubeError } from '../kube/reflector.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { SyncedEntry } from './plan.js';
import type { Condition, SourceRef, SyncState, SyncStateStore, WriteFailure } from './state-store.js';
import type { WriteIntent } from './write-policy.js';

/** At most one progress write per second per source: the apiserver is not flooded by a big sync. */
export const PROGRESS_INTERVAL_MS = 1_000;

/**
 * The sync record of one source while its reconcile runs. Intents are made durable before their write is
 * sent (awaited); what landed is recorded as Vault answers, batched to one status write per second, so a
 * retry or a restart after any failure resumes where it stopped (docs/adr/0003-claim-with-the-data-write.md).
 */
export class SyncProgress {
  private readonly entries: Map<string, SyncedEntry>;
  private readonly intents = new Map<string, WriteIntent>();
  private readonly failures = new Map<string, WriteFailure>();
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastWriteAt = -Infinity;
  private dirty = false;
  private landedCount = 0;
  private recordConflict: Error | undefined;

  constructor(
    private readonly options: {
      key: string;
      ref: SourceRef;
      store: SyncStateStore;
      log: Logger;
      now: () => number;
      /** The record as the reconcile started (entries, intents, times). */
      base: SyncState;
      /** The fingerprint of this reconcile's inputs: kept "not done" (with its force-sync token) until the final write. */
      inputFingerprint: string;
    },
  ) {
    this.entries = new Map(options.base.entries.map((e) => [formatPath(e.path), e]));
    for (const intent of options.base.intents ?? []) this.intents.set(formatPath(intent.path), intent);
  }

  entry(path: KvPath): SyncedEntry | undefined {
    return this.entries.get(formatPath(path));
  }

  intent(path: KvPath): WriteIntent | undefined {
    return this.intents.get(formatPath(path));
  }

  get landed(): number {
    return this.landedCount;
  }

  /** Records writes about to be sent; resolves once the record is durable (the writes may go then). */
  async intend(intents: readonly WriteIntent[]): Promise<void> {
    if (intents.length === 0) return;
    for (const intent of intents) this.intents.set(formatPath(intent.path), intent);
    this.dirty = true;
    await this.flush();
  }

  /** A write landed at `entry.version`; its intent is done unless the marks are still to follow. */
  land(entry: SyncedEntry): void {
    this.entries.set(formatPath(entry.path), entry);
    if (!entry.marksPending) this.intents.delete(formatPath(entry.path));
    this.failures.delete(formatPath(entry.path));
    this.landedCount += 1;
    this.changed();
  }

  /** The ownership marks of a landed write followed, with the user custom_metadata of this hash (undefined: none). */
  marked(path: KvPath, metadataHash?: string): void {
    const entry = this.entries.get(formatPath(path));
    if (entry) {
      const { marksPending: _, metadataHash: __, ...rest } = entry;
      this.entries.set(formatPath(path), { ...rest, ...(metadataHash ? { metadataHash } : {}) });
    }
    this.intents.delete(formatPath(path));
    this.changed();
  }

  deleted(path: KvPath): void {
    this.entries.delete(formatPath(path));
    this.intents.delete(formatPath(path));
    this.changed();
  }

  /** A write that certainly did not land (Vault answered with an error): its intent goes. */
  notLanded(path: KvPath): void {
    if (this.intents.delete(formatPath(path))) this.changed();
  }

  /**
   * A check-and-set write met another version: someone else wrote. Nothing landed, and what the record says
   * of the path (its content, its version) is no longer known: the next decision looks the path up.
   *
   * The write's intent stays, with its content unknown: a mismatch answers only the last attempt, and an
   * earlier attempt whose answer was lost (a reset after Vault applied it) may have landed at exactly the
   * intent's version, unmarked. The intent is then the only proof that this data is the source's: the next
   * decision looks the path up and, finding that version, writes the wanted value over it (never trusting
   * its content: the hash is blanked), and a cleanup of a moved or deleted source deletes it. Dropped, such
   * data stayed in Vault for good (seen in the chaos test: a reset after forwarding, then a move).
   */
  conflict(path: KvPath): void {
    const shown = formatPath(path);
    const entry = this.entries.get(shown);
    if (entry) this.entries.set(shown, { path: entry.path, hash: '', ...(entry.binaryKeys ? { binaryKeys: entry.binaryKeys } : {}) });
    const intent = this.intents.get(shown);
    if (intent) this.intents.set(shown, { ...intent, hash: '' });
    this.changed();
  }

  fail(failure: WriteFailure): void {
    this.failures.set(formatPath(failure.path), failure);
    this.notLanded(failure.path);
    this.changed();
  }

  /** The state as it stands, with the given fingerprint (the real one only when the sync is complete). */
  snapshot(inputFingerprint: string, times: { lastSyncTime: string; lastDriftCheckTime?: string }): SyncState {
    return {
      inputFingerprint,
      entries: [...this.entries.values()],
      intents: [...this.intents.values()],
      failures: [...this.failures.values()],
      ...times,
    };
  }

  /** The final record with its Ready condition; cancels any pending progress write. */
  async finish(state: SyncState, ready: Condition): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = false;
    await this.enqueue(() => this.options.store.set(this.options.key, this.options.ref, state, ready));
  }

  private changed(): void {
    this.dirty = true;
    if (this.timer) return;
    const wait = Math.max(0, this.lastWriteAt + PROGRESS_INTERVAL_MS - this.options.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((error) => this.options.log.warn({ source: this.options.key, err: describeKubeError(error) }, 'could not record sync progress; will retry with the next one'));
    }, wait);
    this.timer.unref?.();
  }

  private flush(): Promise<void> {
    return this.enqueue(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const { base } = this.options;
      // In progress: the fingerprint says "not done", so a crash now leads to a resumed sync, not a skipped one.
      await this.options.store.set(this.options.key, this.options.ref, this.snapshot(notDoneFingerprint('syncing', this.options.inputFingerprint), { lastSyncTime: base.lastSyncTime, lastDriftCheckTime: base.lastDriftCheckTime }));
    });
  }

  private enqueue(write: () => Promise<void>): Promise<void> {
    const run = this.chain.then(async () => {
      // The record changed under this reconcile (another writer): none of its later writes may overwrite it.
      if (this.recordConflict) throw this.recordConflict;
      this.lastWriteAt = this.options.now();
      await write().catch((error: unknown) => {
        if (error instanceof Error && error.name === 'RecordConflictError') this.recordConflict = error;
        throw error;
      });
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}

/**
 * A fingerprint that never matches (so the next reconcile recomputes), keeping the force-sync token suffix
 * of the real one: a force-sync that was already honoured is not honoured again by a drift repair or retry.
 */
export function notDoneFingerprint(marker: string, fingerprint: string): string {
  const colon = fingerprint.indexOf(':');
  return colon >= 0 ? marker + fingerprint.slice(colon) : marker;
}
