import Bottleneck from 'bottleneck';
import { VaultRequestError } from './errors.js';

export interface RateLimit {
  /** Sustained requests per second. */
  rate: number;
  /** Requests that may start at once after an idle period. */
  burst: number;
}

export interface LimiterOptions extends RateLimit {
  /**
   * Held back per window so that the jitter between a request leaving the socket and Vault's clock (Vault's
   * own scheduling, a busy machine) does not let rate+1 requests into one window as Vault sees it. Costs
   * marginMs per second of sustained throughput (2 % with the default 20 ms). It applies to the due times and
   * to the send times: with 10 ms on due times alone, OpenBao's audit log saw 11 requests in one 1-s window in
   * 1 of 3 runs on an idle 2-core machine (a request sent 7 ms late against its due time, 5 ms of jitter).
   */
  marginMs?: number;
  /**
   * Tokens at the start (default `burst`: a fresh installation may burst at once). 0 under a live limit: a share
   * of a shared budget was maybe just spent by this replica's previous engine, and new capacity fills at the rate.
   */
  initialCredit?: number;
  /** Injected for tests; milliseconds, monotonic. */
  clock?: () => number;
  /** Called as each request starts (metrics). */
  onStart?(event: LimiterStart): void;
  /**
   * Called when a request is on the wire (written to the socket, or failed before), on this limiter's
   * clock: the point at which the bucket is exact (tests and diagnostics).
   */
  onSent?(event: { operation: string; label?: string; at: number; paced: boolean }): void;
  /**
   * Since when work has been waiting in front of the limiter without a break (the batcher's line, handed over
   * one batch at a time; on this limiter's clock), undefined while none waits. While some waits the limiter
   * is not idle even when its own line is momentarily empty, so credit does not pile up into a fresh burst
   * between two batches; credit saved while truly idle stays.
   */
  upstreamWaitingSince?(): number | undefined;
  /**
   * Asked immediately before each request is sent (after any pacing hold, not when it was queued): a request
   * is sent only while this holds (the replica holds its Lease now). Absent: always holds.
   */
  gate?: SendGate;
  /**
   * Asked right after the gate: whether this replica's share of a budget shared with other replicas is valid
   * now (src/budget/). A request refused here is not failed: it goes back into the line for a new token, which
   * comes once the share is renewed (the token it had belongs to a share that may be someone else's by now).
   */
  shareGate?: { holds(): boolean };
  /** A request the gate refused (never sent); `first` for the first refusal since a request last passed. */
  onFenced?(event: { operation: string; label?: string; reason: string; first: boolean }): void;
}

/**
 * A limit that changes while the limiter runs: a shard holder's share of a budget shared with other replicas
 * (src/budget/shared-budget.ts). The Vault stack follows it with setLimit and asks `holds()` before each send.
 */
export interface LiveLimit {
  /** What may be spent now (0 while the share is not valid). */
  limit(): RateLimit;
  /** Whether the share is valid now. */
  holds(): boolean;
  /** Told each time the limit changes; returns a function that unsubscribes. */
  subscribe(listener: (limit: RateLimit) => void): () => void;
}

/** Whether requests may leave now (the lease fence, src/kube/lease-fence.ts). */
export interface SendGate {
  holds(): boolean;
  /** Why not, while it does not hold. */
  reason(): string | undefined;
}

export interface LimiterStart {
  operation: string;
  /** What the request is about (its path), when the caller said. */
  label?: string;
  /** The source the request is for (its flow in the fair line), when the caller said. */
  source?: string;
  /** performance.now() at the start. */
  at: number;
  /** From schedule() to the start, the time spent waiting for a token. */
  waitedMs: number;
  /** False for a request that spent burst credit saved while the limiter was idle. */
  paced: boolean;
}

/** What a task gets: a way to say when its request has left (written to the socket). */
export interface LimiterPermit {
  /** The request is on the wire. Idempotent; called for the task when it settles if it never did. */
  sent(): void;
}

/**
 * Bottleneck priorities (lower runs first): logins, renewals and mount lookups never wait behind writes. The
 * fair line across sources is the batcher's (FairQueue); what waits here is short: one batch, retries, auth.
 */
export const Priority = { auth: 1, retry: 4, normal: 5 } as const;

export class LimiterStoppedError extends Error {
  override readonly name = 'LimiterStoppedError';
  constructor() {
    super('the Vault rate limiter is stopped (the operator is shutting down)');
  }
}

export function validateRateLimit(limit: RateLimit): void {
  if (typeof limit.rate !== 'number' || !Number.isFinite(limit.rate) || !(limit.rate > 0)) {
    throw new RangeError(`Vault rate limit must be a positive number of requests per second, got ${limit.rate}`);
  }
  if (!Number.isInteger(limit.burst) || limit.burst < 1) throw new RangeError(`Vault rate burst must be a whole number >= 1, got ${limit.burst}`);
}

/**
 * One token bucket in front of EVERY Vault call (rate limiting, not batching): `burst` tokens at start and
 * after idle time, `rate` tokens per second, and exact.
 *
 * Bottleneck stays the limiter: it holds the queue (FIFO within priorities) and gates every job on its
 * `reservoir`. But Bottleneck's own refill runs on its heartbeat and sets `_lastReservoirIncrease = now`, so
 * every refill drifts by up to one heartbeat (measured: 9.86/s for rate 10, see PERFORMANCE.md). So the
 * reservoir starts at 0 and this class grants tokens itself with `incrementReservoir`:
 *
 *  - credit accrues continuously from the clock (`rate` per second, anchored: a late timer does not lose
 *    time, the next grant comes that much sooner); up to `burst` while nobody waits, and while requests wait
 *    (here or upstream in the batcher) never up to 2, so a backlog is never served in clumps;
 *  - a grant from credit >= 2 is a burst (credit saved while idle); any other grant is paced: at most K paced
 *    grants in any window of K/rate s (+ margin), K = floor(rate) (so rate 10: 10 per second), counted on
 *    the times they were due (no drift from timer lateness);
 *  - when the job starts, a paced request also waits until the one K before it was *sent* a full window
 *    ago (the transport reports when a request is written to the socket): exact at the point requests
 *    leave, whatever the timers, Bottleneck or a blocked event loop did in between.
 *
 * So after the initial burst a backlog starts exactly `rate` requests per second (less the margin), with no
 * idle gaps: whenever a token is due and a request waits, it is granted. Retries and logins are requests
 * like any other: each attempt takes a token.
 */
export class VaultRateLimiter {
  readonly bottleneck: Bottleneck;
  private currentRate: number;
  private currentBurst: number;
  private windowCount: number;
  private windowMs: number;
  private readonly marginMs: number;
  private readonly now: () => number;
  private readonly onStart?: (event: LimiterStart) => void;
  private readonly onSent?: LimiterOptions['onSent'];
  private readonly upstreamWaitingSince: () => number | undefined;

  private credit: number;
  private creditAt: number;
  /** Requests scheduled and not yet granted a token. */
  private waiting = 0;
  /** When the current backlog began (waiting went from 0 to 1). */
  private backlogSince = 0;
  /** Kinds of the grants whose jobs have not started yet, in grant order (Bottleneck starts one job per token). */
  private readonly grantKinds: Array<'burst' | 'paced'> = [];
  /** Due times of the last K paced grants. */
  private readonly pacedDue: number[] = [];
  /** When the last K paced requests were sent (in order: each one starts after the previous one was sent). */
  private readonly pacedSends: number[] = [];
  /** The latest paced request: the next one waits until it has been sent. */
  private lastPaced?: { permit: LimiterPermit; sent: Promise<void> };
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;
  /** Burst requests started and not yet answered; paced requests wait for them (see holdForWindow). */
  private burstInFlight = 0;
  private burstAnswered: Array<() => void> = [];
  private readonly gate?: SendGate;
  private readonly shareGate?: { holds(): boolean };
  private readonly onFenced?: LimiterOptions['onFenced'];
  /** Whether the last request that reached the gate was refused (so each refusal streak is reported as new once). */
  private fencedStreak = false;

  constructor(options: LimiterOptions) {
    validateRateLimit(options);
    this.currentRate = options.rate;
    this.currentBurst = options.burst;
    this.windowCount = Math.max(1, Math.floor(options.rate));
    this.windowMs = (this.windowCount * 1000) / options.rate;
    this.marginMs = options.marginMs ?? 20;
    this.now = options.clock ?? (() => performance.now());
    this.onStart = options.onStart;
    this.onSent = options.onSent;
    this.upstreamWaitingSince = options.upstreamWaitingSince ?? (() => undefined);
    this.gate = options.gate;
    this.shareGate = options.shareGate;
    this.onFenced = options.onFenced;
    this.credit = Math.min(options.burst, Math.max(0, options.initialCredit ?? options.burst));
    this.creditAt = this.now();
    this.bottleneck = new Bottleneck({ reservoir: 0, maxConcurrent: null, minTime: 0 });
  }

  /** Requests waiting for a token. */
  get queued(): number {
    return this.waiting;
  }

  /** Sustained requests per second now. */
  get rate(): number {
    return this.currentRate;
  }

  /** Requests that may start at once after an idle period, now. */
  get burst(): number {
    return this.currentBurst;
  }

  /**
   * Changes the rate and burst live (a shared budget's share: src/budget/). Credit accrues at the old rate up
   * to now; a smaller burst clips the credit at once; a larger one adds none (the new capacity fills at the
   * rate), so the sends of several limiters whose limits always sum within one budget fit one bucket of it.
   * Rate 0 or burst below 1 grants nothing until raised.
   */
  setLimit(limit: RateLimit): void {
    if (typeof limit.rate !== 'number' || !Number.isFinite(limit.rate) || limit.rate < 0) throw new RangeError(`a live Vault rate must be a number >= 0, got ${limit.rate}`);
    if (typeof limit.burst !== 'number' || !Number.isFinite(limit.burst) || limit.burst < 0) throw new RangeError(`a live Vault burst must be a number >= 0, got ${limit.burst}`);
    if (limit.rate === this.currentRate && limit.burst === this.currentBurst) return;
    this.accrue(this.now());
    this.currentRate = limit.rate;
    this.currentBurst = limit.burst;
    this.credit = Math.min(this.credit, limit.burst);
    if (limit.rate > 0) {
      // Rate 0 keeps the last window: requests granted before it still leave at the pace they were granted at.
      this.windowCount = Math.max(1, Math.floor(limit.rate));
      this.windowMs = (this.windowCount * 1000) / limit.rate;
      if (this.pacedDue.length > this.windowCount) this.pacedDue.splice(0, this.pacedDue.length - this.windowCount);
      if (this.pacedSends.length > this.windowCount) this.pacedSends.splice(0, this.pacedSends.length - this.windowCount);
    }
    this.clearTimer();
    this.pump();
  }

  /**
   * Runs `task` once a token is granted. Each call is one Vault request: call it again for a retry. A task
   * that calls `permit.sent()` when its request is written lets the window count the time the request
   * really left (a blocked event loop between start and write then delays the next request, not Vault's
   * view); otherwise the start counts.
   */
  schedule<T>(operation: string, task: (permit: LimiterPermit) => Promise<T>, options: { priority?: number; label?: string; source?: string } = {}): Promise<T> {
    if (this.stopped) return Promise.reject(new LimiterStoppedError());
    const submittedAt = this.now();
    this.accrue(submittedAt);
    if (this.waiting === 0) this.backlogSince = submittedAt;
    this.waiting++;
    let lapsed = false; // refused by the share gate: scheduled again for a new token
    const job = this.bottleneck.schedule({ priority: options.priority ?? Priority.normal }, async () => {
      this.accrue(this.now()); // up to here Bottleneck was still starting granted jobs: busy, not idle
      const paced = this.grantKinds.shift() !== 'burst';
      if (!paced) this.burstInFlight++;
      const held = paced ? await this.holdForWindow() : { sent: () => undefined };
      let reported = false;
      let ran = false; // a request refused at the gate never went on the wire: nothing to report
      const permit: LimiterPermit = {
        sent: () => {
          held.sent();
          if (reported || !ran) return;
          reported = true;
          this.onSent?.({ operation, label: options.label, at: this.now(), paced });
        },
      };
      try {
        if (this.stopped) throw new LimiterStoppedError();
        this.passGate(operation, options.label);
        if (this.shareGate && !this.shareGate.holds()) {
          lapsed = true;
          return undefined as T;
        }
        const at = this.now();
        this.onStart?.({ operation, label: options.label, source: options.source, at, waitedMs: at - submittedAt, paced });
        ran = true;
        return await task(permit);
      } finally {
        permit.sent();
        if (!paced && --this.burstInFlight === 0) for (const wake of this.burstAnswered.splice(0)) wake();
      }
    });
    this.pump();
    return job.then(
      (result) => (lapsed ? this.schedule(operation, task, options) : result),
      (error: unknown) => {
        // Bottleneck's "This limiter has been stopped" (jobs dropped at stop) becomes ours.
        if (error instanceof Bottleneck.BottleneckError) throw new LimiterStoppedError();
        throw error;
      },
    );
  }

  /**
   * The last check before a request leaves: a replica that does not hold its Lease now sends nothing. The
   * refusal is terminal (kind 'fenced', not retried): the request belongs to a term of leadership that is over.
   */
  private passGate(operation: string, label: string | undefined): void {
    if (!this.gate || this.gate.holds()) {
      this.fencedStreak = false;
      return;
    }
    const reason = this.gate.reason() ?? 'this replica does not hold the Lease';
    const first = !this.fencedStreak;
    this.fencedStreak = true;
    this.onFenced?.({ operation, label, reason, first });
    throw new VaultRequestError(operation, label ?? operation, undefined, 'fenced', `not sent: ${reason}`);
  }

  /** Rejects waiting requests with LimiterStoppedError; requests already running finish. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer();
    await this.bottleneck.stop({ dropWaitingJobs: true }).catch(() => undefined);
  }

  private accrue(at: number): void {
    // Busy since the last accrual while requests wait here for a token or for Bottleneck to start them;
    // otherwise busy from when work began waiting upstream, if it does.
    const busyFrom = this.waiting > 0 || this.grantKinds.length > 0 ? this.creditAt : this.upstreamWaitingSince();
    const idleUntil = busyFrom === undefined ? at : Math.min(at, Math.max(this.creditAt, busyFrom));
    this.credit = Math.min(this.burst, this.credit + ((idleUntil - this.creditAt) * this.rate) / 1000);
    const cap = Math.min(this.burst, Math.max(this.credit, 2 - 1e-9));
    this.credit = Math.min(cap, this.credit + ((at - idleUntil) * this.rate) / 1000);
    this.creditAt = at;
  }

  /** Grants every token that is due; arms a timer for the next one. */
  private pump(): void {
    if (this.stopped) return;
    const t = this.now();
    this.accrue(t);
    const granted = this.grantDue(t);
    // One increment for all grants of this pass: each Bottleneck call costs an event-loop turn.
    if (granted > 0) void this.bottleneck.incrementReservoir(granted);
  }

  /** Grants what is due now; returns how many. */
  private grantDue(t: number): number {
    let granted = 0;
    while (this.waiting > 0) {
      if (this.credit >= 2) {
        this.grant('burst');
        granted++;
        continue;
      }
      if (this.credit < 1) {
        this.armTimer(t + ((1 - this.credit) * 1000) / this.rate);
        return granted;
      }
      const k = this.windowCount;
      const windowOpensAt = this.pacedDue.length >= k ? this.pacedDue[this.pacedDue.length - k] + this.windowMs + this.marginMs : -Infinity;
      if (windowOpensAt > t) {
        this.armTimer(windowOpensAt);
        return granted;
      }
      // Due when the credit reached 1, not when this timer happened to fire: lateness does not accumulate.
      const creditDueAt = t - ((this.credit - 1) * 1000) / this.rate;
      this.pacedDue.push(Math.max(creditDueAt, this.backlogSince, windowOpensAt));
      if (this.pacedDue.length > k) this.pacedDue.shift();
      this.grant('paced');
      granted++;
    }
    return granted;
  }

  private grant(kind: 'burst' | 'paced'): void {
    this.credit -= 1;
    this.waiting--;
    this.grantKinds.push(kind);
  }

  /**
   * Each paced request waits until the previous one has been sent (at most one window: a connection that
   * hangs must not stall everything; it then counts as sent), then until the request K before it was sent
   * a full window ago: at most K paced requests leave in any window, on the times they really left.
   */
  private async holdForWindow(): Promise<LimiterPermit> {
    // A burst is many requests at once, which Vault works through for a while: paced requests sent meanwhile
    // would queue behind them and reach Vault's clock bunched together. So the pace starts once the burst has
    // been answered (at most one window: a hanging request must not stall everything).
    if (this.burstInFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => this.burstAnswered.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.ceil(this.windowMs))))]);
      clearTimeout(timer);
    }
    const previous = this.lastPaced;
    let markSent!: () => void;
    const sent = new Promise<void>((resolve) => (markSent = resolve));
    let done = false;
    const permit: LimiterPermit = {
      sent: () => {
        if (done) return;
        done = true;
        this.pacedSends.push(this.now());
        if (this.pacedSends.length > this.windowCount) this.pacedSends.shift();
        markSent();
      },
    };
    this.lastPaced = { permit, sent };
    if (previous) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([previous.sent, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.ceil(this.windowMs))))]);
      clearTimeout(timer);
      previous.permit.sent();
    }
    const k = this.windowCount;
    for (;;) {
      // The margin here too: a request sent late against its due time would otherwise use up the margin of
      // the due-time rule, leaving none for the jitter between the socket and Vault's clock.
      const opensAt = this.pacedSends.length >= k ? this.pacedSends[this.pacedSends.length - k] + this.windowMs + this.marginMs : -Infinity;
      const wait = opensAt - this.now();
      if (wait <= 0) break;
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
    }
    return permit;
  }

  private armTimer(at: number): void {
    if (!Number.isFinite(at)) return; // rate 0: nothing accrues until setLimit raises it (and pumps)
    if (this.timer && this.timerAt <= at) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, Math.ceil(at - this.now())));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}
