import { allocate, RATE_STEP, type Share } from './allocation.js';
import { MAX_DEMAND, publishedTotal, type BudgetRecord } from './record.js';

/**
 * One shard holder's side of the shared Vault budget, as a pure state machine; the I/O (reading and writing
 * the budget object) is src/budget/budget-lease.ts. Times are this process's monotonic clock (ms).
 *
 * The invariant: at every instant, the sum of what all holders may spend is at most the installation's rate
 * and burst. It holds because every holder keeps three rules:
 *
 *  1. Shrink before grow. A holder lowers its local limiter (`before`) before it sends a write that publishes
 *     a smaller share; it raises it (`after`) only once a write that publishes the larger share has succeeded.
 *     That write is a compare-and-swap over the version it was computed from, in which the others' published
 *     shares leave the room: every version of the object has a sum within the budget, and what a holder may
 *     spend is never more than its entry in the current version.
 *  2. A share not renewed in time is spent by nobody. A holder trusts its share for `shareDeadlineMs` from the
 *     moment its last successful write was SENT (a pause between send and answer gains nothing); past that it
 *     may spend nothing, checked by the clock at each send, not by a timer (a process woken from a pause finds
 *     its share lapsed before any timer of its own has run). Another holder removes that entry and reuses its
 *     room only after it has seen the entry unchanged for `reclaimAfterMs` on its OWN clock, which is longer:
 *     it first saw that version after it was written, so by then the owner stopped trusting it. The Lease
 *     wait-out rests on the same reasoning (docs/adr/0002-leader-election-and-shards.md).
 *  3. Growing a bucket never adds tokens (the limiter's `setLimit`): new capacity fills at the rate. The sum of
 *     all local buckets' tokens then never exceeds the installation's burst, and their refill never exceeds its
 *     rate, so the merged sends of all holders fit one bucket of the installation's rate and burst.
 */
export interface BudgetSettings {
  identity: string;
  /** The installation's budget. */
  rate: number;
  burst: number;
  /** Shards of the installation (a floor is kept for each, published or not). */
  slots: number;
  /** Requests per second an idle holder keeps. */
  floorRate: number;
  /** How long a holder trusts its share after the send of its last successful write. */
  shareDeadlineMs: number;
  /** How long another holder's entry must be seen unchanged before it is removed and its room reused. */
  reclaimAfterMs: number;
}

export interface Observation {
  seq: number;
  /** When this holder first saw this seq of that entry (monotonic, its own clock). */
  observedAt: number;
}

export interface HolderState {
  /** What the local limiter is set to. */
  local: Share;
  /** Until when (monotonic) the local share may be spent; -Infinity while there is none. */
  validUntil: number;
  /** The seq of this holder's last write. */
  seq: number;
  /** Others' entries as last seen, by identity. */
  observations: Map<string, Observation>;
}

/** The write one step proposes: lower the limiter to `before`, CAS `record`, and on success use `after`. */
export interface Step {
  before: Share;
  record: BudgetRecord;
  after: Share;
  /** Lapsed entries removed by this write, sorted. */
  reclaimed: string[];
  /** This holder's target share from the allocation (it may get less until others have shrunk). */
  target: Share;
}

export const ZERO: Share = Object.freeze({ rate: 0, burst: 0 });

export function initialState(): HolderState {
  return { local: ZERO, validUntil: -Infinity, seq: 0, observations: new Map() };
}

export function validateBudgetSettings(s: BudgetSettings): void {
  if (!(s.rate > 0) || !Number.isFinite(s.rate)) throw new RangeError(`the installation's rate must be a positive number, got ${s.rate}`);
  if (!Number.isInteger(s.burst) || s.burst < 1) throw new RangeError(`the installation's burst must be a whole number >= 1, got ${s.burst}`);
  if (!Number.isInteger(s.slots) || s.slots < 1) throw new RangeError(`the number of shards must be a whole number >= 1, got ${s.slots}`);
  if (!(s.floorRate >= 0) || !Number.isFinite(s.floorRate)) throw new RangeError(`the floor must be a non-negative number of requests per second, got ${s.floorRate}`);
  if (!(s.shareDeadlineMs > 0)) throw new RangeError(`the share deadline must be positive, got ${s.shareDeadlineMs}`);
  if (!(s.reclaimAfterMs > s.shareDeadlineMs)) throw new RangeError(`the reclaim time (${s.reclaimAfterMs} ms) must exceed the share deadline (${s.shareDeadlineMs} ms)`);
}

const minShare = (a: Share, b: Share): Share => ({ rate: Math.min(a.rate, b.rate), burst: Math.min(a.burst, b.burst) });
/** Rounded down to the rate step, so that the published decimal and the summed number agree. */
const stepDown = (n: number) => Math.max(0, Math.floor(n / RATE_STEP + 1e-9) * RATE_STEP);
/** Sums of shares carry float error (0.1 + 0.2); a sum within this of the budget is within it. */
export const SUM_TOLERANCE = 1e-6;

/** What this holder may spend at `now`: its local share while its last successful write is recent enough, else nothing. */
export function spendable(state: HolderState, now: number): Share {
  return now < state.validUntil ? state.local : ZERO;
}

/** An entry of another holder that has not changed for the reclaim time, as seen here. */
export function isLapsed(state: HolderState, identity: string, now: number, settings: BudgetSettings): boolean {
  const seen = state.observations.get(identity);
  return seen !== undefined && now - seen.observedAt >= settings.reclaimAfterMs;
}

/**
 * A version of the record was seen (read, or returned by a write): note when each other entry changed. When
 * this holder's own entry is missing or smaller than what it spends (removed as lapsed, or edited by hand), it
 * stops spending it at once: what it may spend is never more than what the current version publishes for it.
 */
export function observe(state: HolderState, record: BudgetRecord, now: number, identity: string): HolderState {
  const observations = new Map<string, Observation>();
  for (const [id, entry] of record.entries) {
    if (id === identity) continue;
    const previous = state.observations.get(id);
    observations.set(id, previous && previous.seq === entry.seq ? previous : { seq: entry.seq, observedAt: now });
  }
  const mine = record.entries.get(identity);
  let { local, validUntil } = state;
  if (!mine) {
    local = ZERO;
    validUntil = -Infinity;
  } else {
    local = minShare(local, mine);
  }
  return { ...state, local, validUntil, seq: Math.max(state.seq, mine?.seq ?? 0), observations };
}

/** The next write: this holder's renewed entry with its demand and its new share, lapsed entries removed. */
export function plan(state: HolderState, record: BudgetRecord, now: number, demand: number, settings: BudgetSettings): Step {
  const { identity } = settings;
  const reclaimed = [...record.entries.keys()].filter((id) => id !== identity && isLapsed(state, id, now, settings)).sort();
  const entries = new Map(record.entries);
  for (const id of reclaimed) entries.delete(id);
  const ownDemand = Math.min(MAX_DEMAND, Math.max(0, Math.floor(demand)));

  const demands = new Map<string, number>();
  for (const [id, entry] of entries) demands.set(id, id === identity ? ownDemand : entry.demand);
  demands.set(identity, ownDemand);
  const target = allocate({ demands, slots: settings.slots, floorRate: settings.floorRate, rate: settings.rate, burst: settings.burst }).get(identity)!;

  // Only from the room that the others' published shares leave (lapsed ones removed in this same write).
  const others = publishedTotal({ entries }, identity);
  const room: Share = { rate: stepDown(settings.rate - others.rate + SUM_TOLERANCE), burst: Math.max(0, settings.burst - others.burst) };
  const share = minShare(target, room);
  entries.set(identity, { rate: share.rate, burst: share.burst, demand: ownDemand, seq: state.seq + 1 });
  return { before: minShare(state.local, share), record: { entries }, after: share, reclaimed, target };
}

/** The limiter was lowered to `step.before` (called before the write is sent). */
export function shrunk(state: HolderState, step: Step): HolderState {
  return { ...state, local: step.before };
}

/**
 * The write of `step`, sent at `sentAt`, succeeded (answered at `now`): the share of `step.after` is published
 * and may be spent until sentAt + shareDeadline. An answer that comes after that grants nothing.
 */
export function written(state: HolderState, step: Step, sentAt: number, now: number, settings: BudgetSettings): HolderState {
  const seq = step.record.entries.get(settings.identity)!.seq;
  const validUntil = sentAt + settings.shareDeadlineMs;
  const observed = observe({ ...state, seq }, step.record, now, settings.identity);
  if (now >= validUntil) return { ...observed, local: step.before, validUntil: -Infinity };
  return { ...observed, local: step.after, validUntil };
}

/**
 * The write failed or its answer is unknown: the lowered limiter stays; the share runs out at its deadline. The
 * write may still have landed, so the next one carries a higher seq than it did.
 */
export function failed(state: HolderState, step: Step, identity: string): HolderState {
  return { ...state, local: step.before, seq: Math.max(state.seq, step.record.entries.get(identity)?.seq ?? 0) };
}

/** Leaving (the shard is lost or released): spend nothing; the record without this holder's entry. */
export function leave(state: HolderState, record: BudgetRecord, identity: string): { state: HolderState; record: BudgetRecord } {
  const entries = new Map(record.entries);
  entries.delete(identity);
  return { state: { ...state, local: ZERO, validUntil: -Infinity }, record: { entries } };
}

/** The invariant a record must keep: the published shares sum to at most the budget. */
export function withinBudget(record: BudgetRecord, settings: Pick<BudgetSettings, 'rate' | 'burst'>): boolean {
  const total = publishedTotal(record);
  return total.rate <= settings.rate + SUM_TOLERANCE && total.burst <= settings.burst;
}
