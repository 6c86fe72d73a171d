import Bottleneck from 'bottleneck';

export interface RateLimit {
  /** Sustained requests per second. */
  rate: number;
  /** Requests that may start at once after an idle period. */
  burst: number;
}

/**
 * One token bucket in front of EVERY Vault call (rate limiting, not batching): `burst` tokens at start,
 * one more every 1/rate s, never more than `burst` held.
 *
 * Bottleneck only refills on its heartbeat (250 ms by default, one increment per beat), which would
 * silently cap the rate at 4/s for rate 10; so the heartbeat runs at a small fraction of the refill
 * interval.
 */
export function createVaultLimiter(limit: RateLimit): Bottleneck {
  if (!(limit.rate > 0) || !Number.isFinite(limit.rate)) throw new Error(`rate limit must be a positive number, got ${limit.rate}`);
  if (!(limit.burst >= 1) || !Number.isInteger(limit.burst)) throw new Error(`burst must be a whole number >= 1, got ${limit.burst}`);
  const refillIntervalMs = 1000 / limit.rate;
  return new Bottleneck({
    reservoir: limit.burst,
    reservoirIncreaseAmount: 1,
    reservoirIncreaseInterval: refillIntervalMs,
    reservoirIncreaseMaximum: limit.burst,
    heartbeatInterval: Math.max(1, Math.floor(refillIntervalMs / 20)),
  });
}
