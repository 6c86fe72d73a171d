/**
 * Whether this replica may act as the holder of its Lease *now*: the one question every Vault request and
 * every status write asks immediately before it leaves (docs/adr/0002-leader-election-and-shards.md).
 *
 * The Lease is valid now only if a renewal (or the acquisition) that succeeded was SENT less than
 * renewDeadline ago, by the monotonic clock. Measured from the send, not from the answer: a process paused
 * between the two must not gain the pause as lease time. The wall clock is not used: it jumps (NTP, a VM
 * resumed) and would let a paused process believe its lease is fresh. renewDeadline < leaseDuration, so the
 * holder stops trusting itself before any other replica may take the Lease over.
 *
 * Expiry is computed from the clock at each `holds()`, not by a timer: a process woken from a pause finds
 * its lease expired before any timer of its own has run. A timer still fires at the expiry so that the
 * loss is announced (`onLost`) while nothing asks.
 */
export interface WriteFence {
  /** True while this replica may send; false once the lease expired, was lost or released. */
  holds(): boolean;
  /** Why it does not hold (for errors and logs); undefined while it holds. */
  reason(): string | undefined;
}

/** Without leader election there is nobody to fence off: the single replica always holds. */
export const ALWAYS_HOLDS: WriteFence = { holds: () => true, reason: () => undefined };

export interface LeaseFenceOptions {
  renewDeadlineMs: number;
  /** Milliseconds, monotonic (performance.now()); injected for tests. */
  clock?: () => number;
  /** Injected for tests: arms the expiry announcement (setTimeout by default). */
  setTimer?: (callback: () => void, ms: number) => { cancel(): void };
}

export type FenceLostListener = (reason: string) => void;

const defaultTimer = (callback: () => void, ms: number) => {
  const timer = setTimeout(callback, ms);
  timer.unref?.();
  return { cancel: () => clearTimeout(timer) };
};

export class LeaseFence implements WriteFence {
  readonly clock: () => number;
  private readonly renewDeadlineMs: number;
  private readonly setTimer: NonNullable<LeaseFenceOptions['setTimer']>;
  /** The monotonic time until which the lease is trusted; -Infinity while not held. */
  private validUntil = -Infinity;
  /** Why the fence was closed on purpose (lost to another holder, released); undefined = by expiry only. */
  private closedBecause: string | undefined = 'the Lease is not held';
  /** False between an acquisition and the announcement of its loss (so each loss is announced once). */
  private announced = true;
  private expiryTimer?: { cancel(): void };
  private readonly listeners = new Set<FenceLostListener>();

  constructor(options: LeaseFenceOptions) {
    if (!(options.renewDeadlineMs > 0)) throw new RangeError(`the renew deadline must be a positive number of ms, got ${options.renewDeadlineMs}`);
    this.renewDeadlineMs = options.renewDeadlineMs;
    this.clock = options.clock ?? (() => performance.now());
    this.setTimer = options.setTimer ?? defaultTimer;
  }

  /** The send time of a renewal or acquisition request: taken immediately before it is sent. */
  sendTime(): number {
    return this.clock();
  }

  /**
   * The acquisition sent at `sentAt` (from sendTime()) succeeded: the fence opens, valid until
   * sentAt + renewDeadline. An answer that arrives after that moment grants nothing.
   */
  acquired(sentAt: number): void {
    const until = sentAt + this.renewDeadlineMs;
    if (this.clock() >= until) return;
    this.validUntil = until;
    this.closedBecause = undefined;
    this.announced = false;
    this.armExpiry();
  }

  /**
   * A renewal sent at `sentAt` succeeded: the lease is valid until sentAt + renewDeadline. It extends a
   * fence that still holds, never reopens one that expired or was revoked meanwhile (the loss was announced
   * and acted on: only a new acquisition opens it again).
   */
  renewed(sentAt: number): void {
    if (!this.holds()) return;
    const until = sentAt + this.renewDeadlineMs;
    if (until <= this.validUntil) return;
    this.validUntil = until;
    this.armExpiry();
  }

  /** Closes the fence now (the Lease was seen held by another, or is being released). Idempotent. */
  revoke(reason: string): void {
    if (this.closedBecause !== undefined) return;
    this.closedBecause = reason;
    this.validUntil = -Infinity;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    this.announce(reason);
  }

  holds(): boolean {
    if (this.closedBecause !== undefined) return false;
    if (this.clock() < this.validUntil) return true;
    this.announce(this.expiredReason());
    return false;
  }

  reason(): string | undefined {
    if (this.closedBecause !== undefined) return this.closedBecause;
    return this.clock() < this.validUntil ? undefined : this.expiredReason();
  }

  /** Milliseconds the lease is still trusted (0 when not). */
  remainingMs(): number {
    return this.closedBecause !== undefined ? 0 : Math.max(0, this.validUntil - this.clock());
  }

  /** Told once per loss (expiry, revoke), synchronously; returns a function that unsubscribes. */
  onLost(listener: FenceLostListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private expiredReason(): string {
    return `no renewal of the Lease succeeded within the renew deadline (${this.renewDeadlineMs} ms, monotonic clock)`;
  }

  private armExpiry(): void {
    this.expiryTimer?.cancel();
    const wait = Math.max(0, Math.ceil(this.validUntil - this.clock()));
    this.expiryTimer = this.setTimer(() => {
      this.expiryTimer = undefined;
      // holds() announces the loss when it finds the lease expired; a timer that fired early re-arms.
      if (this.holds()) this.armExpiry();
    }, wait);
  }

  private announce(reason: string): void {
    if (this.announced) return;
    this.announced = true;
    for (const listener of [...this.listeners]) {
      try {
        listener(reason);
      } catch {
        // A listener's failure must not keep the others from hearing of the loss.
      }
    }
  }
}
