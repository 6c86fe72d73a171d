import { createHash } from 'node:crypto';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Gauge, Counter, type Registry } from 'prom-client';
import { LeaseFence, type WriteFence } from './lease-fence.js';

/**
 * Leader election on coordination.k8s.io Leases, generalised to shards: namespaces are split into N
 * shards, shard i is owned by whoever holds the Lease `<name>-shard-<i>` (or `<name>` when N = 1), and a
 * replica holds at most one shard. With N = 1 this is plain leader election: one leader, the rest stand
 * by. With N shards and more than N replicas, the extra replicas stand by for whichever shard loses its
 * holder. Only a holder syncs, so only a holder writes to Vault.
 *
 * The algorithm is client-go's: optimistic concurrency on the Lease's resourceVersion (a lost race is a
 * 409), expiry judged by when this replica last SAW the record change rather than by the holder's clock
 * (clock skew between nodes cannot make two leaders), a holder gives up when it could not renew for
 * renewDeadline (< leaseDuration, so it stops before anyone else may start), and a graceful release
 * empties holderIdentity so a standby takes over at its next retry instead of after the lease duration.
 *
 * Every duration is measured on the monotonic clock; the wall clock only fills the Lease's time fields.
 * Whether the holder may act now is its `fence` (lease-fence.ts): valid for renewDeadline from the moment
 * the last successful renewal was SENT.
 */
export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  leaseName: string;
  identity: string;
  shards: number;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  registry?: Registry;
  /** Called when this replica starts holding a shard. The returned promise is not awaited by renewals. */
  onStartedLeading(shard: number, takeover: Takeover): void;
  /**
   * Called at once when the shard is lost: the fence expired (no renewal sent within the renew deadline
   * succeeded), or another holder was seen. The fence is closed before this is called.
   */
  onStoppedLeading(shard: number, reason: string): void;
  /** Wall clock (ms since the epoch) for the Lease's renewTime/acquireTime fields only. */
  now?: () => number;
  /** Monotonic clock (ms) for every duration: expiry, renew deadline. Injected for tests. */
  clock?: () => number;
}

/** How a shard was acquired: from nobody (or a graceful release, or ourselves), or taken over from another holder. */
export interface Takeover {
  /** The identity that held the Lease and did not release it; undefined when it was free. */
  from?: string;
  /** That holder's lease duration (ms): how long a request it let through before it stopped might still land. */
  previousLeaseDurationMs: number;
}

/** The Lease names, one per shard. */
export function shardLeaseName(leaseName: string, shard: number, shards: number): string {
  return shards === 1 ? leaseName : `${leaseName}-shard-${shard}`;
}

/** Which shard a namespace belongs to: a stable hash, the same in every replica and every version. */
export function shardOf(namespace: string, shards: number): number {
  if (shards <= 1) return 0;
  return createHash('sha256').update(namespace).digest().readUInt32BE(0) % shards;
}

/** The Vault budget of one shard: the operator's budget split evenly, burst at least 1. */
export function shardRateLimit(rateLimit: { rate: number; burst: number }, shards: number): { rate: number; burst: number } {
  if (shards <= 1) return rateLimit;
  return { rate: rateLimit.rate / shards, burst: Math.max(1, Math.floor(rateLimit.burst / shards)) };
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

interface Observation {
  /** What identifies this version of the record: holder, renew time, transitions. */
  fingerprint: string;
  observedAt: number;
  /** observedAt + the record's lease duration: when it is free unless it changes. */
  expiresAt: number;
}

/** True when the lease is free: no holder, or its holder has not renewed for its lease duration (as observed here). */
export function leaseIsFree(lease: V1Lease | undefined, observation: Pick<Observation, 'observedAt'> | undefined, now: number): boolean {
  const holder = lease?.spec?.holderIdentity;
  if (!lease || !holder) return true;
  if (!observation) return false; // never seen before: its clock starts now
  const durationMs = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
  return now - observation.observedAt > durationMs;
}

const statusOf = (error: unknown): number | undefined => {
  const e = error as { code?: number; statusCode?: number; response?: { httpStatusCode?: number } };
  return e?.code ?? e?.statusCode ?? e?.response?.httpStatusCode;
};

export class ShardElector {
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private readonly clock: () => number;
  private readonly leaseFence: LeaseFence;
  private readonly observations = new Map<number, Observation>();
  private held?: { shard: number; lease: V1Lease };
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private loop?: Promise<void>;
  private readonly leaderGauge?: Gauge;
  private readonly transitions?: Counter;

  constructor(private readonly options: LeaderElectionOptions) {
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.now = options.now ?? Date.now;
    this.clock = options.clock ?? (() => performance.now());
    this.leaseFence = new LeaseFence({ renewDeadlineMs: options.renewDeadlineMs, clock: this.clock });
    // The fence expiring (no successful renewal within the deadline) is a loss, whether a renewal is pending or not.
    // Deferred: the loss may be noticed inside a Vault request's gate check, which must not tear its engine down under it.
    this.leaseFence.onLost((reason) => queueMicrotask(() => this.lose(reason)));
    if (options.registry) {
      this.leaderGauge = new Gauge({
        name: 'vault_sync_leader',
        help: '1 when this replica holds the Lease of the shard (and syncs it), else 0',
        labelNames: ['shard'],
        registers: [options.registry],
      });
      for (let shard = 0; shard < options.shards; shard++) this.leaderGauge.labels(String(shard)).set(0);
      new Gauge({ name: 'vault_sync_shards', help: 'Shards the namespaces are split into (each needs one leader)', registers: [options.registry] }).set(options.shards);
      this.transitions = new Counter({
        name: 'vault_sync_leader_transitions_total',
        help: 'Times this replica started or stopped holding a shard, by event',
        labelNames: ['event'],
        registers: [options.registry],
      });
      for (const event of ['acquired', 'lost', 'released']) this.transitions.labels(event).inc(0);
    }
  }

  /** Whether this replica may act as the holder now: asked before every Vault request and status write. */
  get fence(): WriteFence {
    return this.leaseFence;
  }

  /** The shard this replica holds, if any. */
  get shard(): number | undefined {
    return this.held?.shard;
  }

  get leaseName(): string | undefined {
    return this.held ? shardLeaseName(this.options.leaseName, this.held.shard, this.options.shards) : undefined;
  }

  start(): void {
    this.loop = this.tick();
  }

  /** Stops campaigning and releases the held lease (so a standby takes over at once). Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loop?.catch(() => undefined);
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    // Closed before the release is sent: once the Lease is free, a standby may start at its next retry.
    this.leaseFence.revoke('the Lease was released (stopping)');
    this.setLeader(held.shard, false);
    this.transitions?.labels('released').inc();
    try {
      const now = this.now();
      const body: V1Lease = {
        ...held.lease,
        spec: {
          ...held.lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(now) as unknown as Date,
          acquireTime: microTime(now) as unknown as Date,
        },
      };
      await this.api.replaceNamespacedLease({ name: held.lease.metadata!.name!, namespace: this.options.namespace, body });
      this.options.log.info({ lease: held.lease.metadata?.name, shard: held.shard }, 'released the lease');
    } catch (error) {
      // Someone already took it, or the apiserver is gone: the lease then expires by itself.
      this.options.log.warn({ shard: held.shard, status: statusOf(error) }, 'could not release the lease; it will expire');
    }
  }

  private setLeader(shard: number, leading: boolean): void {
    this.leaderGauge?.labels(String(shard)).set(leading ? 1 : 0);
  }

  private schedule(): void {
    if (this.stopped) return;
    // client-go adds up to 20 % jitter to the retry period so that candidates do not move in lockstep.
    let delay = this.held ? this.options.retryPeriodMs : this.options.retryPeriodMs * (1 + Math.random() * 0.2);
    if (!this.held) {
      // Try again right when an observed lease expires rather than up to a retry period later.
      const now = this.clock();
      for (const o of this.observations.values()) if (o.expiresAt > now) delay = Math.min(delay, o.expiresAt - now + 5);
    }
    this.timer = setTimeout(() => {
      this.loop = this.tick();
    }, delay);
  }

  private async tick(): Promise<void> {
    try {
      if (this.held) await this.renew();
      else await this.campaign();
    } catch (error) {
      this.options.log.warn({ status: statusOf(error), err: (error as Error).message?.split('\n')[0] }, 'leader election round failed');
    } finally {
      this.schedule();
    }
  }

  private async renew(): Promise<void> {
    const held = this.held!;
    const name = shardLeaseName(this.options.leaseName, held.shard, this.options.shards);
    try {
      // Replace with the resourceVersion of our last write: one call; a 409 means someone else wrote it.
      // The validity runs from the moment the request is sent, not from its answer: a pause in between gains nothing.
      const send = (base: V1Lease) => {
        const sentAt = this.leaseFence.sendTime();
        return this.api
          .replaceNamespacedLease({ name, namespace: this.options.namespace, body: { ...base, spec: { ...base.spec, renewTime: microTime(this.now()) as unknown as Date } } })
          .then((lease) => ({ lease, sentAt }));
      };
      let renewed: { lease: V1Lease; sentAt: number };
      try {
        renewed = await send(held.lease);
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
        const current = await this.api.readNamespacedLease({ name, namespace: this.options.namespace });
        if (current.spec?.holderIdentity !== this.options.identity) {
          this.lose(`the lease is now held by ${current.spec?.holderIdentity || 'nobody'}`);
          return;
        }
        renewed = await send(current);
      }
      if (this.held !== held) return; // lost meanwhile: a late answer reopens nothing
      this.held = { shard: held.shard, lease: renewed.lease };
      this.leaseFence.renewed(renewed.sentAt);
    } catch (error) {
      if (this.stopped || this.held !== held) return;
      if (!this.leaseFence.holds()) {
        this.lose(`could not renew within the renew deadline (status ${statusOf(error) ?? 'none'})`);
      } else {
        this.options.log.warn({ lease: name, status: statusOf(error), trustedForMs: Math.round(this.leaseFence.remainingMs()) }, 'lease renewal failed; retrying');
      }
    }
  }

  private lose(reason: string): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    this.leaseFence.revoke(reason);
    this.setLeader(held.shard, false);
    this.transitions?.labels('lost').inc();
    this.options.log.error({ shard: held.shard, reason }, 'lost the lease: stopping to sync this shard at once, nothing more is sent');
    this.options.onStoppedLeading(held.shard, reason);
  }

  /** Tries the shards in an order that differs per replica (fewer collisions), takes the first free one. */
  private async campaign(): Promise<void> {
    const { shards, identity } = this.options;
    const start = shards > 1 ? createHash('sha256').update(identity).digest().readUInt32BE(0) % shards : 0;
    for (let i = 0; i < shards && !this.stopped; i++) {
      const shard = (start + i) % shards;
      if (await this.tryAcquire(shard)) return;
    }
  }

  private async tryAcquire(shard: number): Promise<boolean> {
    const { namespace, identity } = this.options;
    const name = shardLeaseName(this.options.leaseName, shard, this.options.shards);
    const leaseDurationSeconds = Math.max(1, Math.ceil(this.options.leaseDurationMs / 1000));
    let current: V1Lease | undefined;
    try {
      current = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    const now = this.clock();
    if (current) {
      const s = current.spec ?? {};
      const fingerprint = `${s.holderIdentity}|${String(s.renewTime)}|${s.leaseTransitions}|${current.metadata?.resourceVersion}`;
      if (this.observations.get(shard)?.fingerprint !== fingerprint) {
        this.observations.set(shard, { fingerprint, observedAt: now, expiresAt: now + (s.leaseDurationSeconds ?? 15) * 1000 + 1 });
      }
      if (s.holderIdentity !== identity && !leaseIsFree(current, this.observations.get(shard), now)) return false;
    }
    const wallNow = this.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: microTime(wallNow) as unknown as Date,
      renewTime: microTime(wallNow) as unknown as Date,
      leaseTransitions: current ? (current.spec?.leaseTransitions ?? 0) + (current.spec?.holderIdentity === identity ? 0 : 1) : 0,
    };
    let lease: V1Lease;
    const sentAt = this.leaseFence.sendTime();
    try {
      lease = current
        ? await this.api.replaceNamespacedLease({ name, namespace, body: { ...current, spec } })
        : await this.api.createNamespacedLease({
            namespace,
            body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'vault-sync-operator' } }, spec },
          });
    } catch (error) {
      if (statusOf(error) === 409) return false; // another candidate was faster
      throw error;
    }
    this.leaseFence.acquired(sentAt);
    if (!this.leaseFence.holds()) {
      // Answered after the renew deadline: not trusted; the next round takes it again (it is ours in the API).
      this.options.log.warn({ lease: name, shard }, 'the acquisition was answered too late to be trusted; trying again');
      return false;
    }
    this.held = { shard, lease };
    this.setLeader(shard, true);
    this.transitions?.labels('acquired').inc();
    this.options.log.info(
      { lease: name, shard, shards: this.options.shards, previousHolder: current?.spec?.holderIdentity || undefined },
      this.options.shards > 1 ? 'acquired the lease of a shard: syncing it' : 'became the leader: syncing',
    );
    const previous = current?.spec?.holderIdentity;
    this.options.onStartedLeading(shard, {
      from: previous && previous !== identity ? previous : undefined,
      previousLeaseDurationMs: (current?.spec?.leaseDurationSeconds ?? leaseDurationSeconds) * 1000,
    });
    return true;
  }
}
