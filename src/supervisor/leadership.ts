import type { Logger } from 'pino';
import type { Takeover } from '../kube/leader-election.js';
import type { EngineSlot } from './engine-slot.js';

/**
 * What a replica with leader election does about its Lease, as explicit states:
 *
 *   standby ──acquired (free / released / ours)──────────────────────────────▶ leading
 *   standby ──acquired (taken over from another holder)──▶ waiting-out ──timer──▶ leading
 *   waiting-out | leading ──lost──▶ standby        (leading: the engine is aborted, no drain)
 *   any ──stop──▶ stopping                          (the engine drains; a loss meanwhile aborts it)
 *
 * waiting-out: the previous holder did not release the Lease, so a request it let through just before its
 * fence closed may still be on its way to Vault. The new holder sends nothing (no engine, not even a login)
 * for the old lease duration plus a margin.
 */
export type LeadershipState =
  | { name: 'standby' }
  | { name: 'waiting-out'; shard: number; from: string; waitMs: number }
  | { name: 'leading'; shard: number }
  | { name: 'stopping' };

export interface LeadershipOptions {
  engines: Pick<EngineSlot, 'start' | 'abort' | 'drain'>;
  /** Added to the previous holder's lease duration when a Lease is taken over. */
  takeoverMarginMs: number;
  /** An aborted engine that has not let go after this long (a hung call) makes the process exit. */
  abortGraceMs: number;
  log: Logger;
  onFatal(reason: string): void;
  /** Injected for tests. */
  setTimer?: (callback: () => void, ms: number) => { cancel(): void };
}

const defaultTimer = (callback: () => void, ms: number) => {
  const timer = setTimeout(callback, ms);
  return { cancel: () => clearTimeout(timer) };
};

/** How long a new holder waits before it sends anything: nothing after a free or released Lease. */
export function waitOutMs(takeover: Takeover, marginMs: number): number {
  return takeover.from === undefined ? 0 : takeover.previousLeaseDurationMs + marginMs;
}

export class Leadership {
  private current: LeadershipState = { name: 'standby' };
  private waitTimer?: { cancel(): void };
  private readonly setTimer: NonNullable<LeadershipOptions['setTimer']>;

  constructor(private readonly options: LeadershipOptions) {
    this.setTimer = options.setTimer ?? defaultTimer;
  }

  get state(): LeadershipState {
    return this.current;
  }

  /** The shard held (waiting out or leading), if any. */
  get shard(): number | undefined {
    return this.current.name === 'waiting-out' || this.current.name === 'leading' ? this.current.shard : undefined;
  }

  /** The elector acquired a shard's Lease. */
  acquired(shard: number, takeover: Takeover): void {
    if (this.current.name !== 'standby') return;
    const waitMs = waitOutMs(takeover, this.options.takeoverMarginMs);
    if (waitMs <= 0 || takeover.from === undefined) return this.lead(shard);
    this.current = { name: 'waiting-out', shard, from: takeover.from, waitMs };
    this.options.log.info({ shard, previousHolder: takeover.from, waitMs }, 'took the Lease over from a holder that did not release it: waiting before sending anything');
    const waiting = this.current;
    this.waitTimer = this.setTimer(() => {
      this.waitTimer = undefined;
      if (this.current === waiting) this.lead(shard);
    }, waitMs);
  }

  /** The elector lost the shard (its fence is already closed): stop at once. */
  lost(shard: number, reason: string): void {
    const state = this.current;
    if (state.name === 'waiting-out' && state.shard === shard) {
      this.cancelWait();
      this.current = { name: 'standby' };
      return;
    }
    if (state.name === 'leading' && state.shard === shard) this.current = { name: 'standby' };
    else if (state.name !== 'stopping') return;
    // Leading, or stopping with a drain under way: cut it short.
    const timer = this.setTimer(() => this.options.onFatal(`lost shard ${shard} and its engine did not stop within ${this.options.abortGraceMs} ms`), this.options.abortGraceMs);
    void this.options.engines.abort(reason).finally(() => timer.cancel());
  }

  /** Graceful stop: no new engine; the current one drains (the caller releases the Lease afterwards). */
  async stop(): Promise<void> {
    this.cancelWait();
    this.current = { name: 'stopping' };
    await this.options.engines.drain();
  }

  private lead(shard: number): void {
    this.current = { name: 'leading', shard };
    const leading = this.current;
    // The engine starts once a previous one (of an earlier term) has ended, and only if this term still lasts.
    void this.options.engines.start(shard, () => this.current === leading);
  }

  private cancelWait(): void {
    this.waitTimer?.cancel();
    this.waitTimer = undefined;
  }
}
