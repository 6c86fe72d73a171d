import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { validateBatchSize } from './batcher.js';
import { VaultRateLimiter, type LimiterStart } from './limiter.js';
import type { VaultMetrics } from './metrics.js';
import { NodeVaultClient } from './node-vault-client.js';
import { VaultPipeline } from './pipeline.js';
import type { VaultPort } from './port.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';

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
  /** The KV version of a mount (asked once per mount): a read-only plan reads no data, so on KV v1 it checks no marks. */
  kvVersion(mount: string): Promise<1 | 2>;
  /** Rejects what still waits, stops renewing the token, closes connections. */
  stop(): Promise<void>;
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
}

/** `metrics`: the narrow recorder the Vault layer reports to (the composition root adapts its registry to it). */
export function createVaultStack(config: Config, log: Logger, metrics?: VaultMetrics, tuning: VaultStackTuning = {}): VaultStackParts {
  validateBatchSize(config.batchSize);
  // The pipeline is built after the limiter it sends through; the limiter asks it whether work waits upstream.
  let upstream: { waitingSince: number | undefined } | undefined;
  const limiter = new VaultRateLimiter({
    ...config.rateLimit,
    marginMs: tuning.limiterMarginMs,
    upstreamWaitingSince: () => upstream?.waitingSince,
    onStart: (event) => {
      metrics?.rateLimited(event.operation, event.waitedMs / 1000);
      tuning.onLimiterStart?.(event);
    },
  });
  const client = new NodeVaultClient({
    connection: config.vault,
    auth: config.vault.auth,
    limiter,
    log,
    metrics,
    retry: { ...DEFAULT_RETRY_POLICY, ...config.vaultRetry, ...tuning.retry },
  });
  const vault = new VaultPipeline({
    client,
    batchSize: config.batchSize,
    largeSecretThresholdBytes: config.largeSecretThresholdBytes,
    maxSecretBytes: config.maxSecretBytes,
    log,
    metrics,
  });
  upstream = vault;
  let stopped: Promise<void> | undefined;
  return {
    vault,
    client,
    limiter,
    login: async () => {
      await client.login();
      await client.checkMounts(config.vault.kvMounts);
    },
    authenticated: () => client.authenticated,
    kvVersion: (mount) => client.kvVersion(mount),
    stop: () =>
      (stopped ??= (async () => {
        await vault.stop();
        await limiter.stop();
        client.close();
      })()),
  };
}
