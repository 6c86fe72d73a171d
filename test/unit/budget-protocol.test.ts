// The shared budget's protocol (src/budget/protocol.ts) against a model of the world, on a simulated clock: a
// store with compare-and-swap (the budget object), holders that read, plan, shrink, write, and use what a
// successful write granted; writes that land late, fail, or land with their answer lost; holders paused for
// longer than their deadline; demand that comes and goes; a holder that dies and a successor that joins.
//
// Checked at every instant the model reaches: the sum of what the holders may spend (their local limit while
// their share is valid) is within the installation's rate and burst, every version of the record too; and the
// merged sends of all holders, each through its own bucket, fit one bucket of the installation's rate and burst.
import fc from 'fast-check';
import type { Share } from '../../src/budget/allocation.js';
import { failed, initialState, observe, plan, shrunk, spendable, SUM_TOLERANCE, withinBudget, written, type BudgetSettings, type HolderState, type Step } from '../../src/budget/protocol.js';
import { emptyRecord, type BudgetRecord } from '../../src/budget/record.js';

const RATE = 10;
const BURST = 20;
const SLOTS = 3;

/** A local token bucket with the limiter's semantics: a shrink clips the tokens, a grow adds none. */
class ModelBucket {
  tokens = 0;
  private at = 0;
  private limit: Share = { rate: 0, burst: 0 };
  setLimit(now: number, limit: Share): void {
    this.accrue(now);
    this.limit = limit;
    this.tokens = Math.min(this.tokens, limit.burst);
  }
  accrue(now: number): void {
    this.tokens = Math.min(this.limit.burst, this.tokens + (this.limit.rate * (now - this.at)) / 1000);
    this.at = now;
  }
}

interface PendingWrite {
  step: Step;
  baseVersion: number;
  sentAt: number;
  landsAt: number;
  /** 'lost': never lands; 'ok': lands (if the CAS holds) and is answered; 'unanswered': lands, the answer is lost. */
  fate: 'ok' | 'lost' | 'unanswered';
  answerAt: number;
  landed?: boolean;
  /** The CAS failed: the store moved on since the read (a 409). */
  conflict?: boolean;
}

interface Holder {
  id: string;
  state: HolderState;
  bucket: ModelBucket;
  demand: number;
  pausedUntil: number;
  alive: boolean;
  pending?: PendingWrite;
}

type Action =
  | { kind: 'advance'; ms: number }
  | { kind: 'tick'; h: number; fate: PendingWrite['fate']; landMs: number; answerMs: number }
  | { kind: 'pause'; h: number; ms: number }
  | { kind: 'demand'; h: number; n: number }
  | { kind: 'send'; h: number; count: number }
  | { kind: 'die'; h: number };

const fate = fc.oneof(
  { weight: 8, arbitrary: fc.constant<PendingWrite['fate']>('ok') },
  { weight: 1, arbitrary: fc.constant<PendingWrite['fate']>('lost') },
  { weight: 1, arbitrary: fc.constant<PendingWrite['fate']>('unanswered') },
);
/** Mostly prompt, sometimes seconds late (a slow apiserver, a connection that hangs). */
const delay = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 50 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 6000 }) });
const event = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('demand' as const), h: fc.integer({ min: 0, max: 3 }), n: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 500 })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pause' as const), h: fc.integer({ min: 0, max: 3 }), ms: fc.integer({ min: 500, max: 30_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('die' as const), h: fc.integer({ min: 0, max: 2 }) }) },
);
/**
 * Rounds, as the holders run them: each holder in turn reads, plans and writes (its write landing and answered
 * after random delays, or lost, or landing unanswered), and sends what its bucket allows; between rounds, demand
 * changes, a holder pauses, or one dies (its successor joins).
 */
const round = fc.record({
  fates: fc.array(fate, { minLength: 4, maxLength: 4 }),
  lands: fc.array(delay, { minLength: 4, maxLength: 4 }),
  answers: fc.array(delay, { minLength: 4, maxLength: 4 }),
  spacing: fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 4, maxLength: 4 }),
  sends: fc.array(fc.integer({ min: 0, max: 25 }), { minLength: 4, maxLength: 4 }),
  events: fc.array(event, { maxLength: 2 }),
  gap: fc.integer({ min: 1, max: 2000 }),
});
const actions = fc.array(round, { minLength: 5, maxLength: 60 }).map((rounds) =>
  rounds.flatMap((r): Action[] => [
    ...[0, 1, 2, 3].flatMap((h): Action[] => [
      { kind: 'tick', h, fate: r.fates[h], landMs: r.lands[h], answerMs: r.answers[h] },
      { kind: 'advance', ms: r.spacing[h] + 1 },
      { kind: 'send', h, count: r.sends[h] },
    ]),
    ...r.events,
    { kind: 'advance', ms: r.gap },
  ]),
);

/** The sends (times in ms, in order) replayed through one token bucket, full at the start: the ones it rejects. */
function rejectedByOneBucket(sends: number[], rate: number, burst: number): number[] {
  const rejected: number[] = [];
  let tokens = burst;
  let at = 0;
  for (const t of sends) {
    tokens = Math.min(burst, tokens + (rate * (t - at)) / 1000);
    at = t;
    if (tokens < 1 - 1e-6) rejected.push(t);
    else tokens -= 1;
  }
  return rejected;
}

function simulate(script: Action[]) {
  let now = 0;
  const store: { version: number; record: BudgetRecord } = { version: 0, record: emptyRecord() };
  const settingsOf = (id: string): BudgetSettings => ({ identity: id, rate: RATE, burst: BURST, slots: SLOTS, floorRate: 0.2, shareDeadlineMs: 10_000, reclaimAfterMs: 17_000 });
  // Holders 0..2 hold the three shards; holder 3 is a successor that joins when one of them has died.
  const holders: Holder[] = Array.from({ length: 4 }, (_, i) => ({ id: `h${i}`, state: initialState(), bucket: new ModelBucket(), demand: 0, pausedUntil: 0, alive: i < 3 }));
  const sends: number[] = [];
  let maxSpendable = { rate: 0, burst: 0 };
  let grows = 0;

  const check = () => {
    let rate = 0;
    let burst = 0;
    for (const h of holders) {
      const s = spendable(h.state, now);
      rate += s.rate;
      burst += s.burst;
    }
    maxSpendable = { rate: Math.max(maxSpendable.rate, rate), burst: Math.max(maxSpendable.burst, burst) };
    // Plain checks: this runs at every event of every run (expect() would dominate the time).
    if (rate > RATE + SUM_TOLERANCE || burst > BURST) throw new Error(`at ${now} ms the holders may spend ${rate}/s and ${burst} at once, above ${RATE}/s and ${BURST}`);
    if (!withinBudget(store.record, { rate: RATE, burst: BURST })) throw new Error(`at ${now} ms the published record is over the budget`);
  };
  const awake = (h: Holder) => h.alive && now >= h.pausedUntil;
  /** What the real limiter does: its limit follows the share, and a lapsed share is 0 (by timer, or by the gate at a send). */
  const syncLimiter = (h: Holder) => h.bucket.setLimit(now, spendable(h.state, now));

  const deliver = (until: number) => {
    // Landings and answers in time order; a paused holder handles its answer when it wakes.
    for (;;) {
      let next: { at: number; h: Holder; what: 'land' | 'answer' } | undefined;
      for (const h of holders) {
        const p = h.pending;
        if (!p) continue;
        if (!p.landed && p.fate !== 'lost' && p.landsAt <= until && (!next || p.landsAt < next.at)) next = { at: p.landsAt, h, what: 'land' };
        const answerAt = Math.max(p.answerAt, h.pausedUntil);
        if ((p.landed || p.fate === 'lost') && answerAt <= until && h.alive && (!next || answerAt < next.at)) next = { at: answerAt, h, what: 'answer' };
      }
      if (!next) return;
      now = Math.max(now, next.at);
      const { h } = next;
      const p = h.pending!;
      if (next.what === 'land') {
        p.landed = true;
        if (store.version === p.baseVersion) {
          store.version++;
          store.record = p.step.record;
        } else {
          p.conflict = true;
        }
      } else {
        h.pending = undefined;
        const conflict = p.conflict === true;
        if (p.fate === 'ok' && !conflict) {
          const before = spendable(h.state, now);
          h.state = written(h.state, p.step, p.sentAt, now, settingsOf(h.id));
          if (spendable(h.state, now).rate > before.rate) grows++;
        } else {
          h.state = failed(h.state, p.step, h.id);
        }
        syncLimiter(h);
      }
      check();
    }
  };

  for (const action of script) {
    switch (action.kind) {
      case 'advance': {
        const until = now + action.ms;
        // Lapses happen on the clock: check on the way, at each deadline.
        for (const h of holders) if (h.state.validUntil > now && h.state.validUntil <= until) deliver(h.state.validUntil);
        deliver(until);
        now = until;
        for (const h of holders) if (awake(h)) syncLimiter(h);
        break;
      }
      case 'tick': {
        const h = holders[action.h];
        if (!awake(h) || h.pending) break;
        h.state = observe(h.state, store.record, now, h.id);
        syncLimiter(h);
        const step = plan(h.state, store.record, now, h.demand, settingsOf(h.id));
        h.state = shrunk(h.state, step);
        syncLimiter(h);
        h.pending = { step, baseVersion: store.version, sentAt: now, landsAt: now + action.landMs, fate: action.fate, answerAt: now + action.landMs + action.answerMs };
        break;
      }
      case 'pause':
        if (holders[action.h].alive) holders[action.h].pausedUntil = Math.max(holders[action.h].pausedUntil, now + action.ms);
        break;
      case 'demand':
        holders[action.h].demand = action.n;
        break;
      case 'send': {
        const h = holders[action.h];
        if (!awake(h)) break;
        // A paused process wakes with the credit of its pause: the gate (spendable by the clock) decides.
        h.bucket.accrue(now);
        if (spendable(h.state, now).burst === 0) {
          syncLimiter(h);
          break;
        }
        for (let i = 0; i < action.count && h.bucket.tokens >= 1 - 1e-9; i++) {
          h.bucket.tokens -= 1;
          sends.push(now);
        }
        break;
      }
      case 'die': {
        const h = holders[action.h];
        if (!h.alive) break;
        h.alive = false;
        h.state = { ...h.state, local: { rate: 0, burst: 0 }, validUntil: -Infinity };
        h.pending = h.pending && { ...h.pending, fate: h.pending.fate === 'lost' ? 'lost' : 'unanswered' };
        holders[3].alive = true; // the successor campaigns for the free shard
        break;
      }
    }
    check();
  }
  deliver(now + 60_000);
  check();
  return { sends, maxSpendable, grows, record: store.record };
}

describe('the shared budget protocol: a model with random demand, failed and late writes, pauses and a death', () => {
  test('at every instant the holders may spend at most the installation rate and burst; the merged sends fit one bucket', () => {
    let totalGrows = 0;
    let totalSends = 0;
    fc.assert(
      fc.property(actions, (script) => {
        const { sends, grows } = simulate(script);
        totalGrows += grows;
        totalSends += sends.length;
        expect(rejectedByOneBucket(sends, RATE, BURST)).toEqual([]);
      }),
      { numRuns: 1000 },
    );
    // The runs exercised the protocol: shares grew and requests were sent (not a vacuous pass).
    expect(totalGrows).toBeGreaterThan(100);
    expect(totalSends).toBeGreaterThan(1000);
  });

  test('a busy holder gets the rate but the floors of the others after a few rounds; an idle one keeps its floor', () => {
    const script: Action[] = [{ kind: 'demand', h: 1, n: 300 }];
    for (let round = 0; round < 5; round++) {
      // Staggered, as the holders' periods are: each write lands before the next holder reads.
      for (const h of [0, 1, 2]) script.push({ kind: 'tick', h, fate: 'ok', landMs: 10, answerMs: 10 }, { kind: 'advance', ms: 100 });
      script.push({ kind: 'advance', ms: 700 });
    }
    const { record } = simulate(script);
    const settled = record.entries;
    expect(settled.get('h1')).toMatchObject({ rate: 9.6, burst: 18, demand: 300 });
    expect(settled.get('h0')).toMatchObject({ rate: 0.2, burst: 1 });
  });

  test('a holder that stops renewing is reclaimed only after the reclaim time, and by then it spends nothing', () => {
    const ok = (h: number): Action => ({ kind: 'tick', h, fate: 'ok', landMs: 5, answerMs: 5 });
    const script: Action[] = [{ kind: 'demand', h: 0, n: 100 }];
    const pause: Action = { kind: 'advance', ms: 100 };
    for (let i = 0; i < 3; i++) script.push(ok(0), pause, ok(1), pause, ok(2), { kind: 'advance', ms: 800 });
    // Holder 0 (busy, most of the budget) is partitioned: its writes are lost from now on. Holder 1 becomes busy.
    script.push({ kind: 'demand', h: 1, n: 100 });
    for (let i = 0; i < 25; i++) script.push({ kind: 'tick', h: 0, fate: 'lost', landMs: 5, answerMs: 5 }, pause, ok(1), pause, ok(2), { kind: 'send', h: 0, count: 20 }, { kind: 'advance', ms: 800 });
    const record = simulate(script).record.entries;
    expect(record.has('h0')).toBe(false); // reclaimed
    expect(record.get('h1')).toMatchObject({ rate: 9.6, burst: 18 });
  });
});

