import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LiveLimit } from '../vault/limiter.js';
import type { Share } from './allocation.js';
import { failed, initialState, leave, observe, plan, shrunk, spendable, validateBudgetSettings, written, ZERO, type BudgetSettings, type HolderState } from './protocol.js';
import { BUDGET_ANNOTATION, emptyRecord, InvalidBudgetRecord, parseRecord, serializeRecord, type BudgetRecord } from './record.js';

export interface SharedBudgetOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The budget Lease's name. */
  name: string;
  settings: BudgetSettings;
  /** How often the holder publishes its demand and rebalances. */
  periodMs: number;
  /** The queued Vault work of this holder's engine (0 without one). */
  demand(): number;
  log: Logger;
  registry?: Registry;
  /** Monotonic clock (ms); injected for tests. */
  clock?: () => number;
}

const statusOf = (error: unknown): number | undefined => {
  const e = error as { code?: number; statusCode?: number; response?: { httpStatusCode?: number } };
  return e?.code ?? e?.statusCode ?? e?.response?.httpStatusCode;
};

export const budgetLeaseName = (leaseName: string) => `${leaseName}-budget`;

/**
 * The I/O of the shared Vault budget (the decisions are protocol.ts): one Lease, `<leaseName>-budget` beside
 * the shard Leases, whose annotation holds the record; read, then replaced with the resourceVersion it was read
 * at (a 409 means someone wrote in between: read again). A Lease because the operator already may use Leases
 * and one more name is the only RBAC it adds; its spec stays empty (nobody holds it).
 *
 * One per process, living as long as it: a holder joins when its engine starts and leaves once the engine has
 * ended (drained or aborted), so the limiter of a draining engine keeps its share until it is done.
 */
export class SharedBudget implements LiveLimit {
  private readonly api: CoordinationV1Api;
  private readonly clock: () => number;
  private state: HolderState = initialState();
  private joined = false;
  private timer?: NodeJS.Timeout;
  private expiry?: NodeJS.Timeout;
  /** Every round, join and leave, one after the other. */
  private chain: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<(limit: Share) => void>();
  private notified: Share = ZERO;
  private invalidStreak = false;
  private readonly shareGauge?: Gauge;
  private readonly demandGauge?: Gauge;
  private readonly writes?: Counter;
  private readonly reclaims?: Counter;

  constructor(private readonly options: SharedBudgetOptions) {
    validateBudgetSettings(options.settings);
    if (!(options.periodMs > 0 && options.periodMs < options.settings.shareDeadlineMs)) {
      throw new RangeError(`the budget period (${options.periodMs} ms) must be positive and shorter than the share deadline (${options.settings.shareDeadlineMs} ms)`);
    }
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.clock = options.clock ?? (() => performance.now());
    if (options.registry) {
      this.shareGauge = new Gauge({
        name: 'vault_sync_budget_share',
        help: "This replica's share of the installation's Vault budget that it may spend now (0 while its share is not valid), by dimension: rate (requests/s), burst (requests)",
        labelNames: ['dimension'],
        registers: [options.registry],
      });
      this.demandGauge = new Gauge({ name: 'vault_sync_budget_demand', help: 'Queued Vault operations this replica published as its demand at its last budget round', registers: [options.registry] });
      this.writes = new Counter({
        name: 'vault_sync_budget_writes_total',
        help: 'Writes of the shared budget object, by result (ok, conflict: someone wrote first, error, invalid: the record could not be read)',
        labelNames: ['result'],
        registers: [options.registry],
      });
      this.reclaims = new Counter({ name: 'vault_sync_budget_reclaimed_total', help: 'Shares of other holders removed because they were not renewed in time', registers: [options.registry] });
      for (const d of ['rate', 'burst']) this.shareGauge.labels(d).set(0);
      for (const r of ['ok', 'conflict', 'error', 'invalid']) this.writes.labels(r).inc(0);
    }
  }

  limit(): Share {
    return spendable(this.state, this.clock());
  }

  holds(): boolean {
    return this.clock() < this.state.validUntil;
  }

  subscribe(listener: (limit: Share) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts publishing this holder's demand and taking its share (the engine is starting). */
  join(): void {
    this.chain = this.chain.then(() => {
      if (this.joined) return;
      this.joined = true;
      this.state = initialState();
      this.options.log.info({ budget: this.options.name }, 'joined the shared Vault budget');
      return this.round();
    });
  }

  /** Spends nothing more, then removes this holder's entry (best effort: otherwise it lapses and is reclaimed). */
  leave(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (!this.joined) return;
      this.joined = false;
      clearTimeout(this.timer);
      this.state = { ...this.state, local: ZERO, validUntil: -Infinity };
      this.notify();
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const current = await this.read();
          if (!current.record.entries.has(this.options.settings.identity)) return;
          const next = leave(this.state, current.record, this.options.settings.identity);
          await this.write(current.lease, next.record);
          this.options.log.info({ budget: this.options.name }, 'left the shared Vault budget');
          return;
        } catch (error) {
          if (statusOf(error) === 409) continue;
          this.options.log.warn({ budget: this.options.name, status: statusOf(error), err: describe(error) }, 'could not remove this replica from the shared Vault budget; its share lapses by itself');
          return;
        }
      }
    });
    return this.chain;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.joined) return;
    this.timer = setTimeout(() => {
      this.chain = this.chain.then(() => (this.joined ? this.round() : undefined));
    }, this.options.periodMs);
  }

  /** One round: read, observe, shrink, write, grow. A 409 reads again once at once. */
  private async round(): Promise<void> {
    try {
      for (let attempt = 0; attempt < 2 && this.joined; attempt++) {
        const current = await this.read();
        this.invalidStreak = false;
        const now = this.clock();
        this.state = observe(this.state, current.record, now, this.options.settings.identity);
        this.notify();
        const demand = this.options.demand();
        const step = plan(this.state, current.record, now, demand, this.options.settings);
        this.demandGauge?.set(step.record.entries.get(this.options.settings.identity)!.demand);
        this.state = shrunk(this.state, step);
        this.notify(); // lowered before the smaller share is published
        const sentAt = this.clock();
        try {
          await this.write(current.lease, step.record);
        } catch (error) {
          this.state = failed(this.state, step, this.options.settings.identity);
          if (statusOf(error) === 409) {
            this.writes?.labels('conflict').inc();
            continue;
          }
          throw error;
        }
        if (!this.joined) return;
        this.state = written(this.state, step, sentAt, this.clock(), this.options.settings);
        this.writes?.labels('ok').inc();
        if (step.reclaimed.length > 0) {
          this.reclaims?.inc(step.reclaimed.length);
          this.options.log.warn({ budget: this.options.name, holders: step.reclaimed }, 'reclaimed the Vault budget shares of holders that did not renew them in time');
        }
        this.notify();
        this.armExpiry();
        return;
      }
    } catch (error) {
      if (error instanceof InvalidBudgetRecord) {
        this.writes?.labels('invalid').inc();
        // Nothing is written over a record that cannot be read: others' shares in it are unknown. This holder's
        // own share runs out at its deadline; an admin fixes or deletes the annotation.
        if (!this.invalidStreak) this.options.log.error({ budget: this.options.name, namespace: this.options.namespace, reason: error.message }, `the shared Vault budget in Lease ${this.options.namespace}/${this.options.name} is invalid; this replica stops growing its share and holds no share once it lapses`);
        this.invalidStreak = true;
      } else {
        this.writes?.labels('error').inc();
        this.options.log.warn({ budget: this.options.name, status: statusOf(error), err: describe(error), trustedForMs: Math.max(0, Math.round(this.state.validUntil - this.clock())) }, 'could not update the shared Vault budget; retrying');
      }
      return;
    } finally {
      this.schedule();
    }
  }

  private async read(): Promise<{ lease?: V1Lease; record: BudgetRecord }> {
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      return { record: emptyRecord() };
    }
    return { lease, record: parseRecord(lease.metadata?.annotations?.[BUDGET_ANNOTATION]) };
  }

  /** Replace at the version read (or create): a 409 when someone else wrote, or created it, first. */
  private async write(base: V1Lease | undefined, record: BudgetRecord): Promise<void> {
    const text = serializeRecord(record);
    if (!base) {
      await this.api.createNamespacedLease({
        namespace: this.options.namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.name, namespace: this.options.namespace, labels: { 'app.kubernetes.io/name': 'vault-sync-operator' }, annotations: { [BUDGET_ANNOTATION]: text } },
          spec: {},
        },
      });
      return;
    }
    await this.api.replaceNamespacedLease({
      name: this.options.name,
      namespace: this.options.namespace,
      body: { ...base, metadata: { ...base.metadata, annotations: { ...base.metadata?.annotations, [BUDGET_ANNOTATION]: text } } },
    });
  }

  /** The share lapses at its deadline even when no round runs (an apiserver that does not answer). */
  private armExpiry(): void {
    clearTimeout(this.expiry);
    const wait = this.state.validUntil - this.clock();
    if (!Number.isFinite(wait)) return;
    this.expiry = setTimeout(() => this.notify(), Math.max(0, Math.ceil(wait)) + 1);
    this.expiry.unref?.();
  }

  private notify(): void {
    const limit = this.limit();
    this.shareGauge?.labels('rate').set(limit.rate);
    this.shareGauge?.labels('burst').set(limit.burst);
    if (limit.rate === this.notified.rate && limit.burst === this.notified.burst) return;
    this.notified = limit;
    for (const listener of [...this.listeners]) {
      try {
        listener(limit);
      } catch (error) {
        this.options.log.error({ err: describe(error) }, 'a listener of the shared Vault budget failed');
      }
    }
  }

  /** Stops the rounds for good (the process is stopping); leave() first to remove the entry. */
  async stop(): Promise<void> {
    await this.leave();
    clearTimeout(this.timer);
    clearTimeout(this.expiry);
  }
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 300);
}
