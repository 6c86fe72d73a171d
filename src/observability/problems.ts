import type { ConditionListener, StoredCondition } from '../kube/vaultsync-store.js';

/**
 * What the dashboard says is wrong, kept in memory from the operator's own bookkeeping: the sources whose
 * VaultSync is not Ready (fed by the VaultSync store, the one place every condition is written), the last
 * refusals (a bounded ring, newest first), and the Vault request rate of the last 10 minutes (sampled from
 * the limiter's request counter). Every collection is bounded; every text is cut to a bound; the texts are
 * names, paths and reasons (conditions never carry values), and are escaped where they are rendered.
 */

/** Longest message kept per entry (a condition may list thousands of names). */
export const MAX_MESSAGE_CHARS = 1024;
/** Most not-Ready sources remembered; beyond it, the count still grows but no more rows are kept. */
export const MAX_NOT_READY = 10_000;
export const REFUSALS_KEPT = 20;
export const RATE_WINDOW_MS = 10 * 60_000;
/** Most samples in the rate window (one every 5 s fills it in 10 minutes). */
export const RATE_MAX_SAMPLES = 240;

/** Ready=False reasons that are a state, not a refusal: they appear in the not-Ready table only. */
const NOT_REFUSALS = new Set(['Suspended', 'Drifted', 'Planned']);

export interface SourceProblem {
  kind: string;
  namespace: string;
  name: string;
  reason: string;
  message: string;
  /** ISO time of the condition's last status change (for a refusal: when it was recorded). */
  since: string;
}

export interface RatePoint {
  /** Unix ms at the start of the interval (the previous sample). */
  from: number;
  /** Unix ms at the end of the interval. */
  at: number;
  perSecond: number;
}

/** Everything the dashboard shows about what is wrong. */
export interface DashboardProblems {
  /** Newest first, at most the number asked for. */
  notReady: SourceProblem[];
  notReadyTotal: number;
  /** Newest first. */
  refusals: SourceProblem[];
  rate: { points: RatePoint[]; windowMs: number; limitPerSecond: number };
}

export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 1)}…`;
}

/** A fixed-capacity buffer: pushing beyond capacity drops the oldest. */
export class RingBuffer<T> {
  private readonly items: T[] = [];
  constructor(readonly capacity: number) {}
  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.shift();
  }
  newestFirst(): T[] {
    return [...this.items].reverse();
  }
  clear(): void {
    this.items.length = 0;
  }
  get length(): number {
    return this.items.length;
  }
}

/** Consumes the store's conditions: a Map of the sources not Ready now, and a ring of the last refusals. */
export class ProblemTracker implements ConditionListener {
  private readonly notReady = new Map<string, SourceProblem>();
  private readonly refusals = new RingBuffer<SourceProblem>(REFUSALS_KEPT);
  private overflow = 0;

  constructor(private readonly now: () => number = Date.now) {}

  onCondition(key: string, source: { kind: string; namespace: string; name: string }, condition: StoredCondition, how: 'written' | 'loaded'): void {
    if (condition.status === 'True') {
      this.notReady.delete(key);
      return;
    }
    const problem: SourceProblem = {
      kind: source.kind,
      namespace: source.namespace,
      name: source.name,
      reason: truncate(condition.reason, 128),
      message: truncate(condition.message, MAX_MESSAGE_CHARS),
      since: condition.lastTransitionTime,
    };
    const previous = this.notReady.get(key);
    if (previous || this.notReady.size < MAX_NOT_READY) this.notReady.set(key, problem);
    else this.overflow += 1;
    // A refusal is recorded once, when it is new or says something new (a resync repeats it unchanged).
    const repeated = previous && previous.reason === problem.reason && previous.message === problem.message;
    if (how === 'written' && !repeated && !NOT_REFUSALS.has(condition.reason)) {
      this.refusals.push({ ...problem, since: new Date(this.now()).toISOString() });
    }
  }

  onDeleted(key: string): void {
    this.notReady.delete(key);
  }

  /** When this replica stops syncing (lost leadership): what it knew is no longer its to show. */
  reset(): void {
    this.notReady.clear();
    this.overflow = 0;
  }

  notReadySources(limit: number): { rows: SourceProblem[]; total: number } {
    const rows = [...this.notReady.values()].sort((a, b) => b.since.localeCompare(a.since) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    return { rows: rows.slice(0, limit), total: this.notReady.size + this.overflow };
  }

  lastRefusals(): SourceProblem[] {
    return this.refusals.newestFirst();
  }
}

/**
 * Samples of a cumulative counter (Vault requests through the limiter), turned into requests per second
 * per interval. Samples closer together than the window allows for its capacity are skipped, so extra
 * samples taken at each page view do not crowd the ring.
 */
export class RateHistory {
  private readonly samples: Array<{ at: number; value: number }> = [];
  private readonly minSpacingMs: number;

  constructor(
    readonly windowMs = RATE_WINDOW_MS,
    private readonly maxSamples = RATE_MAX_SAMPLES,
  ) {
    this.minSpacingMs = Math.floor(windowMs / maxSamples);
  }

  add(at: number, value: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && at - last.at < this.minSpacingMs) return;
    this.samples.push({ at, value });
    // Keep one sample older than the window, the start of the first interval inside it.
    while (this.samples.length > this.maxSamples + 1 || (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs)) this.samples.shift();
  }

  /** Requests per second over each interval between two samples; a counter reset counts as 0. */
  points(): RatePoint[] {
    const points: RatePoint[] = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      const seconds = (b.at - a.at) / 1000;
      if (seconds <= 0) continue;
      points.push({ from: a.at, at: b.at, perSecond: b.value >= a.value ? (b.value - a.value) / seconds : 0 });
    }
    return points;
  }
}
