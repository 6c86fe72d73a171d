import type { Metrics } from '../observability/metrics.js';
import { VaultRequestError } from './errors.js';
import { formatPath, type KvPath } from './path.js';

/** One Vault operation as the reconciler asks for it (VaultPort's methods). */
export type VaultOperation =
  | { kind: 'write'; path: KvPath; data: ReadonlyMap<string, string>; cas?: number }
  | { kind: 'write-metadata'; path: KvPath; customMetadata: Record<string, string> }
  | { kind: 'read-metadata'; path: KvPath }
  | { kind: 'read'; path: KvPath }
  | { kind: 'delete-latest'; path: KvPath }
  | { kind: 'delete-all'; path: KvPath };

export interface BatcherOptions {
  /** Operations per batch (default 5). */
  batchSize: number;
  /** Runs one operation; `onStart` is called when its first request got a rate-limit token. */
  execute(operation: VaultOperation, hooks: { onStart(): void }): Promise<unknown>;
  metrics?: Metrics;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Entry {
  operation: VaultOperation;
  key: string;
  waiters: Waiter[];
}

export function validateBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`Vault batch size must be a whole number >= 1, got ${batchSize}`);
}

/**
 * Batching (grouping), not rate limiting: the limiter throttles, and every operation of a batch still takes
 * its own token. What a batch does:
 *  - operations wait here, not in the limiter, until the previous batch has got its tokens: so the limiter
 *    always has work when there is work (no idle gaps), and the rest can still be merged;
 *  - a write to a path that already has a write waiting here is merged into it: the newest content wins,
 *    and both callers get the one result (same for waiting metadata writes; equal reads and deletes share);
 *  - per path, operations run one at a time, in the order they were asked for; a batch never holds two
 *    operations for one path;
 *  - one failed operation fails only its own callers, never its batch.
 * Metrics: vault_batch_size_histogram, vault_batch_duration_seconds (dispatch to the last result),
 * vault_batch_operations_total{result}, vault_batch_coalesced_total.
 */
export class VaultBatcher {
  private readonly pending: Entry[] = [];
  /** The newest waiting entry per path: what a new operation on that path may merge into. */
  private readonly newestWaiting = new Map<string, Entry>();
  /** Paths with an operation dispatched and not yet settled. */
  private readonly busyPaths = new Set<string>();
  /** Operations dispatched whose first request has not got its token yet. */
  private unstarted = 0;
  private dispatchQueued = false;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: BatcherOptions) {
    validateBatchSize(options.batchSize);
  }

  /** Operations waiting for a batch or for their first token. */
  get waiting(): number {
    return this.pending.length + this.unstarted;
  }

  submit<T>(operation: VaultOperation): Promise<T> {
    if (this.stopped) {
      return Promise.reject(new VaultRequestError(operation.kind, formatPath(operation.path), undefined, 'stopped', 'the operator is shutting down'));
    }
    const key = formatPath(operation.path);
    const newest = this.newestWaiting.get(key);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = { resolve: resolve as (value: unknown) => void, reject };
      if (newest && newest.operation.kind === operation.kind) {
        // Nothing else for this path is queued after it: merging keeps the order. The newest content wins.
        newest.operation = operation;
        newest.waiters.push(waiter);
        this.options.metrics?.batchCoalesced.labels(operation.kind).inc();
        return;
      }
      const entry: Entry = { operation, key, waiters: [waiter] };
      this.pending.push(entry);
      this.newestWaiting.set(key, entry);
      this.updateGauge();
      this.scheduleDispatch();
    });
  }

  /** Rejects what still waits for a batch; waits for the batches in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.pending.splice(0)) {
      const error = new VaultRequestError(entry.operation.kind, entry.key, undefined, 'stopped', 'the operator is shutting down');
      for (const waiter of entry.waiters) waiter.reject(error);
    }
    this.newestWaiting.clear();
    this.updateGauge();
    await Promise.allSettled([...this.inFlight]);
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
    while (!this.stopped && this.unstarted === 0 && this.pending.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return; // everything waiting is behind an operation in flight on its path
      this.run(batch);
    }
  }

  private takeBatch(): Entry[] {
    const batch: Entry[] = [];
    const skipped = new Set<string>();
    for (let i = 0; i < this.pending.length && batch.length < this.options.batchSize; ) {
      const entry = this.pending[i];
      if (this.busyPaths.has(entry.key) || skipped.has(entry.key)) {
        skipped.add(entry.key); // later operations on this path stay behind it
        i++;
        continue;
      }
      this.pending.splice(i, 1);
      if (this.newestWaiting.get(entry.key) === entry) this.newestWaiting.delete(entry.key);
      this.busyPaths.add(entry.key);
      batch.push(entry);
    }
    return batch;
  }

  private run(batch: Entry[]): void {
    const metrics = this.options.metrics;
    const started = performance.now();
    metrics?.batchSize.observe(batch.length);
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
        const value = await this.options.execute(entry.operation, { onStart });
        for (const waiter of entry.waiters) waiter.resolve(value);
        return true;
      } catch (error) {
        for (const waiter of entry.waiters) waiter.reject(error);
        return false;
      } finally {
        this.busyPaths.delete(entry.key);
        onStart();
        if (this.pending.length > 0) this.scheduleDispatch();
      }
    });
    const done = Promise.all(results).then((outcomes) => {
      const failed = outcomes.filter((ok) => !ok).length;
      if (failed > 0) metrics?.batchOperations.labels('failure').inc(failed);
      if (outcomes.length > failed) metrics?.batchOperations.labels('success').inc(outcomes.length - failed);
      metrics?.batchDuration.observe((performance.now() - started) / 1000);
    });
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  private updateGauge(): void {
    this.options.metrics?.pendingOperations.set(this.waiting);
  }
}
