import type { RunningOperator } from '../operator.js';

/**
 * The one sync engine of a process, at most: started for a shard (or for everything without sharding),
 * ended either by a drain (graceful stop) or by an abort (the Lease is lost: nothing more is sent). A new
 * engine starts only once the previous one has ended, so one process never has two writers.
 */
export interface EngineSlotOptions {
  /** Builds and starts an engine (startOperator with this replica's settings). */
  start(shard: number | undefined): RunningOperator;
  /** The engine could not start (its `ready` rejected) while it was still the current one. */
  onStartFailed(reason: string): void;
  /** An engine ended (drained or aborted): the dashboard forgets its sources. */
  onEnded(): void;
  /** An engine has let go of everything (its drain or abort finished): its share of a shared budget is free. */
  onStopped?(): void;
}

export class EngineSlot {
  private engine?: RunningOperator;
  private engineShard?: number;
  private engineReady = false;
  /** The previous engine's end (drain or abort) in progress; resolved when there is none. */
  private ending: Promise<void> = Promise.resolve();
  /** The engine being ended, and how (a drain may still be cut short by an abort). */
  private endingEngine?: { engine: RunningOperator; by: 'drain' | 'abort' };

  constructor(private readonly options: EngineSlotOptions) {}

  get current(): RunningOperator | undefined {
    return this.engine;
  }

  get shard(): number | undefined {
    return this.engineShard;
  }

  /** The current engine has synced its caches and logged in to Vault. */
  get ready(): boolean {
    return this.engineReady;
  }

  /**
   * Starts an engine once the previous one has ended, if `stillWanted()` then says so (the Lease may have
   * been lost meanwhile). Resolves with the engine, or undefined when none was started.
   */
  async start(shard: number | undefined, stillWanted: () => boolean = () => true): Promise<RunningOperator | undefined> {
    await this.ending;
    if (!stillWanted() || this.engine) return undefined;
    const engine = this.options.start(shard);
    this.engine = engine;
    this.engineShard = shard;
    this.engineReady = false;
    engine.ready.then(
      () => {
        if (this.engine === engine) this.engineReady = true;
      },
      (error: unknown) => {
        if (this.engine !== engine) return; // ended before it was ready: not a failure
        this.options.onStartFailed(`could not start: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
    return engine;
  }

  /** Graceful: the engine finishes what is in flight, then stops. */
  drain(): Promise<void> {
    return this.end('drain', (engine) => engine.stop());
  }

  /** The Lease is lost: the engine stops at once and sends nothing more; this cuts a drain under way short too. */
  abort(reason: string): Promise<void> {
    const draining = this.endingEngine;
    if (!this.engine && draining?.by === 'drain') {
      draining.by = 'abort';
      this.ending = Promise.all([this.ending, draining.engine.abort(reason).catch(() => undefined)]).then(() => undefined);
      return this.ending;
    }
    return this.end('abort', (engine) => engine.abort(reason));
  }

  private end(by: 'drain' | 'abort', how: (engine: RunningOperator) => Promise<void>): Promise<void> {
    const engine = this.engine;
    this.engine = undefined;
    this.engineShard = undefined;
    this.engineReady = false;
    if (!engine) return this.ending;
    this.options.onEnded();
    const ending = { engine, by };
    this.endingEngine = ending;
    this.ending = how(engine)
      .catch(() => undefined)
      .finally(() => {
        if (this.endingEngine === ending) this.endingEngine = undefined;
        this.options.onStopped?.();
      });
    return this.ending;
  }
}
