/**
 * A de-duplicating work queue of keys with per-key exponential backoff, in the spirit of client-go's
 * workqueue: a key is queued at most once; a key being processed that is added again is processed
 * once more afterwards (never concurrently with itself); failures delay the key's next try.
 *
 * A worker slot can be released while its key keeps running (`slot.release()`): a reconcile that has read
 * what it needs and now only waits for Vault tokens lets another key start, so the fair line in front of the
 * rate limiter sees every source that has work, not only `concurrency` of them. The key stays exclusive.
 */
export interface WorkerSlot {
  /** Lets another key take this worker while this one keeps running. Idempotent; a no-op at the cap. */
  release(): void;
}

/** Keys that may run at once beyond the workers after releasing their slots: bounds memory and open work. */
export const DEFAULT_MAX_RELEASED = 256;

export interface WorkQueueOptions {
  concurrency: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Returns normally = done (optionally asking for a later re-check); throws = retry with backoff. */
  process(key: string, slot: WorkerSlot): Promise<{ requeueAfterMs?: number } | void>;
  /** Cap of keys running on released slots (default DEFAULT_MAX_RELEASED); at the cap release() keeps the slot. */
  maxReleased?: number;
  onError?(key: string, error: unknown, attempt: number, retryInMs: number): void;
  /** Injected so tests can avoid real time. */
  random?: () => number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<() => void> = [];
  private shuttingDown = false;
  private readonly workers: Promise<void>[] = [];
  /** Every key run in progress (on a worker or on a released slot), for the drain. */
  private readonly running = new Set<Promise<void>>();
  /** Runs in progress that released their slot. */
  private releasedCount = 0;

  constructor(private readonly options: WorkQueueOptions) {}

  start(): void {
    for (let i = 0; i < this.options.concurrency; i++) this.workers.push(this.work());
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Keys being processed, on a worker or on a released slot. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys running on released slots. */
  get releasedInFlight(): number {
    return this.releasedCount;
  }

  /** The backoff a key's next failure would get: base·2^(failures), capped, with ±20 % jitter. */
  private backoffFor(key: string): { attempt: number; delayMs: number } {
    const attempt = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, attempt);
    const raw = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
    const jitter = 0.8 + (this.options.random ?? Math.random)() * 0.4;
    return { attempt, delayMs: Math.round(raw * jitter) };
  }

  /** Stops taking new work and waits for in-flight keys to finish, released ones included (SIGTERM drain). */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    while (this.waiters.length) this.waiters.shift()!();
    await Promise.all(this.workers);
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private async next(): Promise<string | undefined> {
    while (!this.shuttingDown) {
      const key = this.queue.shift();
      if (key !== undefined) {
        this.queued.delete(key);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return undefined;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      let onRelease!: () => void;
      const releasedSlot = new Promise<void>((resolve) => (onRelease = resolve));
      let isReleased = false;
      const slot: WorkerSlot = {
        release: () => {
          if (isReleased || this.releasedCount >= (this.options.maxReleased ?? DEFAULT_MAX_RELEASED)) return;
          isReleased = true;
          this.releasedCount++;
          onRelease();
        },
      };
      const run: Promise<void> = this.run(key, slot).finally(() => {
        this.running.delete(run);
        if (isReleased) this.releasedCount--;
      });
      this.running.add(run);
      // The worker moves on when the key is done or has given its slot back, whichever comes first.
      await Promise.race([run, releasedSlot]);
    }
  }

  private async run(key: string, slot: WorkerSlot): Promise<void> {
    this.processing.add(key);
    try {
      const result = await this.options.process(key, slot);
      this.failures.delete(key);
      if (result?.requeueAfterMs) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const { attempt, delayMs } = this.backoffFor(key);
      this.options.onError?.(key, error, attempt, delayMs);
      this.addAfter(key, delayMs);
    } finally {
      this.processing.delete(key);
      if (this.dirty.delete(key)) this.add(key);
    }
  }
}
