import { VaultRequestError } from './errors.js';
import { FairQueue, type Aging } from './fair-queue.js';
import type { VaultMetrics } from './metrics.js';
import { formatPath, type KvPath } from './path.js';

/** One Vault operation as the reconciler asks for it (VaultPort's methods). */
export type VaultOperation =
  | { kind: 'write'; path: KvPath; data: ReadonlyMap<string, string>; cas?: number }
  | { kind: 'write-metadata'; path: KvPath; customMetadata: Record<string, string> }
  | { kind: 'read-metadata'; path: KvPath }
  | { kind: 'read'; path: KvPath }
  /** The names below a folder (`path` is the folder): the ownership pre-check of a source's new paths. */
  | { kind: 'list'; path: KvPath }
  /** One page of the folder's detailed metadata (`path` is the folder; `after` the last name of the page before). */
  | { kind: 'list-detailed'; path: KvPath; limit: number; after?: string }
  /** The detailed metadata of everything below a folder, in one answer of at most `maxBytes` (`path` is the folder). */
  | { kind: 'scan-detailed'; path: KvPath; maxBytes: number }
  | { kind: 'delete-latest'; path: KvPath }
  | { kind: 'delete-all'; path: KvPath };

export interface BatcherOptions {
  /** Operations per batch (default 5). */
  batchSize: number;
  /** Runs one operation; `onStart` is called when its first request got a rate-limit token. */
  execute(operation: VaultOperation, hooks: { onStart(): void; source?: string }): Promise<unknown>;
  metrics?: VaultMetrics;
  /** Injected for tests; milliseconds, monotonic; the limiter's clock (performance.now()). */
  clock?: () => number;
  /** A lower level's operation that waited through this many services moves up (the pipeline: marks to data). */
  aging?: Aging;
}

/** Where an operation waits in the fair line: its flow (the source it is for) and its priority level. */
export interface Placement {
  /** The source key; operations without one share one flow of their own. */
  source?: string;
  /** Priority level, 0 first (the pipeline decides it: `Level`, `levelOf`); the default is the last one. */
  level?: number;
}

/** Priority levels of the fair line (strict: a level waits while a higher one has work). */
export const LEVEL_COUNT = 4;
/** The flow of requests made for no particular source; source keys (`Kind/namespace/name`) are never empty. */
const NO_SOURCE_FLOW = '';

/**
 * What per-path order and merging key on: the path, or for a LIST the folder with a trailing `/` (no canonical
 * path ends in one), so a folder's LIST neither waits for nor merges with an operation on a path of that name.
 */
function keyOf(operation: VaultOperation): string {
  if (operation.kind === 'list') return `${formatPath(operation.path)}/`;
  // A page is its own key (a `/` and a `?` are in no canonical path): equal pages share, other pages never merge.
  if (operation.kind === 'list-detailed') return `${formatPath(operation.path)}/?detailed&limit=${operation.limit}&after=${operation.after ?? ''}`;
  if (operation.kind === 'scan-detailed') return `${formatPath(operation.path)}/?scan`;
  return formatPath(operation.path);
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Entry {
  operation: VaultOperation;
  key: string;
  source?: string;
  waiters: Waiter[];
}

export function validateBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`Vault batch size must be a whole number >= 1, got ${batchSize}`);
}

/**
 * Batching (grouping), not rate limiting: the limiter throttles, and every operation of a batch still takes
 * its own token. What a batch does:
 *  - operations wait here, not in the limiter, until the previous batch has got its tokens: so the limiter
 *    always has work when there is work (no idle gaps), its own line stays one batch short, and the rest
 *    can still be merged;
 *  - this waiting line is fair (FairQueue): strict levels (the pipeline puts values before ownership marks),
 *    and round-robin across sources within a level, so one change of a small source waits for about one
 *    round of the busy sources, not behind their whole backlog;
 *  - a write to a path that already has a write waiting here is merged into it: the newest content wins,
 *    and both callers get the one result (same for waiting metadata writes; equal reads, lists and deletes share);
 *  - per path, operations run one at a time, in the order they were asked for; a batch never holds two
 *    operations for one path;
 *  - one failed operation fails only its own callers, never its batch.
 * Metrics: vault_batch_size_histogram, vault_batch_duration_seconds (dispatch to the last result),
 * vault_batch_operations_total{result}, vault_batch_coalesced_total.
 */
export class VaultBatcher {
  private readonly pending: FairQueue<Entry>;
  /** Per path, its waiting entries in the order they were asked for: only the first may go (levels must not reorder one path). */
  private readonly waitingByPath = new Map<string, Entry[]>();
  /** The newest waiting entry per path: what a new operation on that path may merge into. */
  private readonly newestWaiting = new Map<string, Entry>();
  /** Paths with an operation dispatched and not yet settled. */
  private readonly busyPaths = new Set<string>();
  /** Operations dispatched whose first request has not got its token yet. */
  private unstarted = 0;
  /** Since when operations have been waiting without a break (undefined while none wait). */
  private busySince: number | undefined;
  private dispatchQueued = false;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: BatcherOptions) {
    validateBatchSize(options.batchSize);
    this.pending = new FairQueue<Entry>(LEVEL_COUNT, options.aging);
  }

  /** Operations waiting for a batch or for their first token. */
  get waiting(): number {
    return this.pending.size + this.unstarted;
  }

  /** When the current stretch of waiting work began; undefined while nothing waits (the limiter's idle test). */
  get waitingSince(): number | undefined {
    return this.busySince;
  }

  submit<T>(operation: VaultOperation, placement: Placement = {}): Promise<T> {
    if (this.stopped) {
      return Promise.reject(new VaultRequestError(operation.kind, formatPath(operation.path), undefined, 'stopped', 'the operator is shutting down'));
    }
    const key = keyOf(operation);
    const newest = this.newestWaiting.get(key);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = { resolve: resolve as (value: unknown) => void, reject };
      if (newest && newest.operation.kind === operation.kind) {
        // Nothing else for this path is queued after it: merging keeps the order. The newest content wins.
        newest.operation = operation;
        newest.waiters.push(waiter);
        this.options.metrics?.coalesced(operation.kind);
        return;
      }
      const entry: Entry = { operation, key, source: placement.source, waiters: [waiter] };
      this.pending.push(entry, placement.source ?? NO_SOURCE_FLOW, Math.min(LEVEL_COUNT - 1, Math.max(0, placement.level ?? LEVEL_COUNT - 1)));
      const ofPath = this.waitingByPath.get(key);
      if (ofPath) ofPath.push(entry);
      else this.waitingByPath.set(key, [entry]);
      this.newestWaiting.set(key, entry);
      this.updateGauge();
      this.scheduleDispatch();
    });
  }

  /** Rejects what still waits for a batch; waits for the batches in flight. */
  async stop(): Promise<void> {
    this.rejectWaiting('stopped', 'the operator is shutting down');
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * The Lease is lost: what still waits is rejected at once as 'fenced' (never sent), and nothing more is
   * taken; the batches already handed to the limiter are the limiter's to refuse. Does not wait.
   */
  abort(reason: string): void {
    this.rejectWaiting('fenced', `not sent: ${reason}`);
  }

  private rejectWaiting(kind: 'stopped' | 'fenced', detail: string): void {
    this.stopped = true;
    for (const entry of this.pending.drain()) {
      const error = new VaultRequestError(entry.operation.kind, entry.key, undefined, kind, detail);
      for (const waiter of entry.waiters) waiter.reject(error);
    }
    this.newestWaiting.clear();
    this.waitingByPath.clear();
    this.updateGauge();
  }

  private scheduleDispatch(): void {
    if (this.dispatchQueued) return;
    this.dispatchQueued = true;
    // Operations asked for in the same tick (a reconcile's Promise.all) go into the same batch.
    setImmediate(() => {
      this.dispatchQueued = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (!this.stopped && this.unstarted === 0 && this.pending.size > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return; // everything waiting is behind an operation in flight on its path
      this.run(batch);
    }
  }

  /** The next operations in fair order whose path is free and which are the oldest waiting for their path. */
  private takeBatch(): Entry[] {
    const batch: Entry[] = [];
    const canGo = (entry: Entry) => !this.busyPaths.has(entry.key) && this.waitingByPath.get(entry.key)?.[0] === entry;
    while (batch.length < this.options.batchSize) {
      const entry = this.pending.take(canGo);
      if (!entry) break;
      const ofPath = this.waitingByPath.get(entry.key)!;
      ofPath.shift();
      if (ofPath.length === 0) this.waitingByPath.delete(entry.key);
      if (this.newestWaiting.get(entry.key) === entry) this.newestWaiting.delete(entry.key);
      this.busyPaths.add(entry.key);
      batch.push(entry);
    }
    return batch;
  }

  private run(batch: Entry[]): void {
    const metrics = this.options.metrics;
    const started = performance.now();
    metrics?.batchDispatched(batch.length);
    this.unstarted += batch.length;
    this.updateGauge();
    const results = batch.map(async (entry) => {
      let counted = false;
      const onStart = () => {
        if (counted) return;
        counted = true;
        this.unstarted--;
        this.updateGauge();
        this.dispatch(); // the limiter has taken this batch: the next one may queue behind it
      };
      try {
        const value = await this.options.execute(entry.operation, { onStart, source: entry.source });
        for (const waiter of entry.waiters) waiter.resolve(value);
        return true;
      } catch (error) {
        for (const waiter of entry.waiters) waiter.reject(error);
        return false;
      } finally {
        this.busyPaths.delete(entry.key);
        onStart();
        if (this.pending.size > 0) this.scheduleDispatch();
      }
    });
    const done = Promise.all(results).then((outcomes) => {
      const failed = outcomes.filter((ok) => !ok).length;
      metrics?.batchSettled(outcomes.length - failed, failed, (performance.now() - started) / 1000);
    });
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  private updateGauge(): void {
    const waiting = this.waiting;
    if (waiting === 0) this.busySince = undefined;
    else this.busySince ??= (this.options.clock ?? performance.now.bind(performance))();
    this.options.metrics?.waiting(waiting);
  }
}
