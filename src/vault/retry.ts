import pRetry from 'p-retry';
import { VaultRequestError } from './errors.js';

export interface RetryPolicy {
  /** Retries after the first attempt; then the error goes up and the source is re-queued with its own backoff. */
  retries: number;
  /** First backoff; doubles per retry, each with full jitter in [delay, 2 x delay). */
  minDelayMs: number;
  /** Cap of one backoff. */
  maxDelayMs: number;
  /** Cap of a Retry-After that Vault (or a proxy in front of it) asks for. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 5, minDelayMs: 250, maxDelayMs: 30_000, maxRetryAfterMs: 120_000 };

export interface RetryHooks {
  /** A retryable failure; the next attempt follows after delayMs. */
  onRetry?(error: VaultRequestError, attempt: number, delayMs: number): void;
  /** Injected for tests. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Exponential backoff with jitter, and never sooner than Retry-After: the longer delay wins. */
export function retryDelayMs(error: VaultRequestError, retryNumber: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** Math.max(0, retryNumber - 1));
  const jittered = Math.min(policy.maxDelayMs, Math.round(exponential * (1 + random())));
  const retryAfter = error.retryAfterSeconds === undefined ? 0 : Math.min(policy.maxRetryAfterMs, Math.ceil(error.retryAfterSeconds * 1000));
  return Math.max(jittered, retryAfter);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` (one Vault request, which takes its own token from the limiter each time) until it
 * succeeds, fails terminally (400, 403, 404, a CAS mismatch, ...: not retried) or the retries are spent
 * (the last error is thrown). p-retry counts attempts and decides; the delay is computed here because
 * p-retry's own cannot honour Retry-After, so p-retry's is zero and ours is slept in onFailedAttempt.
 */
export async function withRetries<T>(attempt: (attemptNumber: number) => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  if (!Number.isInteger(policy.retries) || policy.retries < 0) throw new RangeError(`Vault retries must be a whole number >= 0, got ${policy.retries}`);
  const sleep = hooks.sleep ?? defaultSleep;
  return pRetry(attempt, {
    retries: policy.retries,
    minTimeout: 0,
    maxTimeout: 0,
    shouldRetry: ({ error }) => error instanceof VaultRequestError && error.retryable,
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (!(error instanceof VaultRequestError) || !error.retryable || retriesLeft <= 0) return;
      const delayMs = retryDelayMs(error, attemptNumber, policy, hooks.random);
      hooks.onRetry?.(error, attemptNumber, delayMs);
      await sleep(delayMs);
    },
  });
}
