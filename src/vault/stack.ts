import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { validateBatchSize } from './batcher.js';
import { VaultRateLimiter, type LimiterOptions, type LimiterStart, type LiveLimit, type SendGate } from './limiter.js';
import type { VaultMetrics } from './metrics.js';
import { NodeVaultClient } from './node-vault-client.js';
import { VaultPipeline } from './pipeline.js';
import type { VaultPort } from './port.js';
import { DEFAULT_RETRY_POLICY, RetriesCancelled, type RetryPolicy } from './retry.js';
import { chooseWriteLimits, type WriteLimits } from './server-limits.js';

/** The Vault side as the operator sees it: one port (batched, rate limited, retried), login, stop. */
export interface VaultStack {
  vault: VaultPort;
  /**
   * Authenticates (or checks the static token) and checks every KV mount of --vault-kv-mounts (it exists,
   * this token may use it, KV version 1 or 2); rejects with a clear error otherwise.
   */
  login(): Promise<void>;
  /** Whether the client holds a usable token now (a failed re-login or an expired token makes it false). */
  authenticated(): boolean;
  /**
   * The limits of one write: --max-keys-per-path, else the default of the server detected by the first login
   * (src/vault/server-limits.ts). Before that login: the setting, else the default every server accepts.
   */
  writeLimits(): WriteLimits;
  /** The KV version of a mount (asked once per mount): a read-only plan reads no data, so on KV v1 it checks no marks. */
  kvVersion(mount: string): Promise<1 | 2>;
  /** Rejects what still waits, stops renewing the token, closes connections. */
  stop(): Promise<void>;
  /** Vault operations waiting (for a batch, or for a token): this engine's demand on a shared budget. */
  demand(): number;
  /**
   * The Lease is lost: stop at once, no drain. Waiting operations are rejected, the limiter's queue is
   * dropped, backoffs of retries end now (no further attempt), token renewal stops. Requests already sent
   * settle as they do. Resolves when the limiter has let go of its last job.
   */
  abort(reason: string): Promise<void>;
}

export interface VaultStackParts extends VaultStack {
  vault: VaultPipeline;
  client: NodeVaultClient;
  limiter: VaultRateLimiter;
}

/** Settings beyond Config that tests and the benchmark tune. */
export interface VaultStackTuning {
  retry?: Partial<RetryPolicy>;
  limiterMarginMs?: number;
  /** Sees every request the limiter lets go (benchmark, diagnostics). */
  onLimiterStart?(event: LimiterStart): void;
  /** Sees every request as it goes on the wire (tests: the bucket measured at the point it is exact). */
  onLimiterSent?: LimiterOptions['onSent'];
}

export interface VaultStackOptions extends VaultStackTuning {
  /** Asked immediately before each request leaves: the lease fence with leader election; absent = always send. */
  gate?: SendGate;
  /**
   * Sharding with a shared budget: the limiter follows this holder's share (instead of config.rateLimit), and a
   * request leaves only while the share is valid (src/budget/).
   */
  budget?: LiveLimit;
}

/** `metrics`: the narrow recorder the Vault layer reports to (the composition root adapts its registry to it). */
export function createVaultStack(config: Config, log: Logger, metrics?: VaultMetrics, tuning: VaultStackOptions = {}): VaultStackParts {
  validateBatchSize(config.batchSize);
  const cancelRetries = new AbortController();
  // The pipeline is built after the limiter it sends through; the limiter asks it whether work waits upstream.
  let upstream: { waitingSince: number | undefined } | undefined;
  const limiter = new VaultRateLimiter({
    ...config.rateLimit,
    marginMs: tuning.limiterMarginMs,
    ...(tuning.budget ? { initialCredit: 0 } : {}),
    upstreamWaitingSince: () => upstream?.waitingSince,
    onStart: (event) => {
      metrics?.rateLimited(event.operation, event.waitedMs / 1000);
      tuning.onLimiterStart?.(event);
    },
    gate: tuning.gate,
    shareGate: tuning.budget,
    onSent: tuning.onLimiterSent,
    onFenced: (event) => {
      metrics?.fenced(event.operation);
      // Once per loss: every request after the first is refused for the same reason.
      if (event.first) log.error({ operation: event.operation, target: event.label, reason: event.reason }, 'not sending Vault requests: this replica does not hold its Lease');
    },
  });
  // The share replaces the configured limit before anything is scheduled (and the limiter starts empty: a new
  // engine's bucket fills at its share's rate, whatever the previous engine of this replica spent).
  let unsubscribe = () => {};
  if (tuning.budget) {
    limiter.setLimit(tuning.budget.limit());
    unsubscribe = tuning.budget.subscribe((limit) => limiter.setLimit(limit));
  }
  const client = new NodeVaultClient({
    connection: config.vault,
    auth: config.vault.auth,
    limiter,
    log,
    metrics,
    retry: { ...DEFAULT_RETRY_POLICY, ...config.vaultRetry, ...tuning.retry, signal: cancelRetries.signal },
  });
  const vault = new VaultPipeline({
    client,
    batchSize: config.batchSize,
    marksMaxWaitServices: config.marksMaxWaitRequests,
    largeSecretThresholdBytes: config.largeSecretThresholdBytes,
    maxSecretBytes: config.maxSecretBytes,
    log,
    metrics,
  });
  upstream = vault;
  let limits = chooseWriteLimits(config.maxKeysPerPath, { kind: 'unknown' });
  let detected: Promise<void> | undefined;
  // Once per stack (a stack lives for one term of leadership): the server does not change under a running operator.
  const detect = () =>
    (detected ??= (async () => {
      const server = await client.detectServer();
      limits = chooseWriteLimits(config.maxKeysPerPath, server);
      const fields = { server: server.kind, version: server.version, evidence: server.evidence, maxKeysPerPath: limits.maxKeysPerPath, basis: limits.basis };
      if (server.kind === 'unknown' && limits.basis !== 'setting') log.warn(fields, 'Vault server not recognized: keys per path kept at the bound every server accepts; set --max-keys-per-path to change it');
      else log.info(fields, `Vault server detected; keys per path: ${limits.maxKeysPerPath} (${limits.basis})`);
    })());
  let stopped: Promise<void> | undefined;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      unsubscribe();
      await limiter.stop();
      client.close();
    })());
  return {
    vault,
    client,
    limiter,
    login: async () => {
      await client.login();
      await client.checkMounts(config.vault.kvMounts);
      await detect();
    },
    writeLimits: () => limits,
    authenticated: () => client.authenticated,
    kvVersion: (mount) => client.kvVersion(mount),
    demand: () => vault.waiting + limiter.queued,
    stop: () =>
      (stopped ??= (async () => {
        await vault.stop();
        await close();
      })()),
    abort: (reason) => {
      cancelRetries.abort(new RetriesCancelled('fenced', reason));
      vault.abort(reason);
      client.close(); // no token renewal or login of a term that is over
      return close();
    },
  };
}
