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
  /**
   * Cancels every retry of the requests made with this policy: a backoff in progress ends at once and no
   * further attempt is made (the stack's abort when the Lease is lost). Abort it with a RetriesCancelled.
   */
  signal?: AbortSignal;
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

/** Resolves after `ms`, or at once when `signal` aborts (whichever first). */
function sleepUnlessAborted(sleep: (ms: number) => Promise<void>, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return sleep(ms);
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void sleep(ms).then(done);
  });
}

/** Why the retries of a policy were cancelled: the abort reason of its signal. */
export class RetriesCancelled extends Error {
  override readonly name = 'RetriesCancelled';
  constructor(
    readonly kind: 'fenced' | 'stopped',
    reason: string,
  ) {
    super(reason);
  }
}

/** The error a cancelled retry ends with: the request's own operation and target, the abort's kind and reason. */
function cancelled(last: VaultRequestError, signal: AbortSignal): VaultRequestError {
  const reason = signal.reason instanceof RetriesCancelled ? signal.reason : undefined;
  return new VaultRequestError(last.operation, last.target, undefined, reason?.kind ?? 'stopped', `not retried after ${last.kind}: ${reason?.message ?? 'cancelled'}`);
}

/**
 * Runs `attempt` (one Vault request, which takes its own token from the limiter each time) until it
 * succeeds, fails terminally (400, 403, 404, a CAS mismatch, ...: not retried) or the retries are spent
 * (the last error is thrown). p-retry counts attempts and decides; the delay is computed here because
 * p-retry's own cannot honour Retry-After, so p-retry's is zero and ours is slept in onFailedAttempt.
 */
export async function withRetries<T>(attempt: (attemptNumber: number) => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  if (!Number.isInteger(policy.retries) || policy.retries < 0) throw new RangeError(`Vault retries must be a whole number >= 0, got ${policy.retries}`);
  const sleep = hooks.sleep ?? defaultSleep;
  const { signal } = policy;
  // The signal is not handed to p-retry: it would turn an attempt that succeeded while it aborted into a
  // failure. An attempt under way settles as it does; only the waits between attempts are cut short.
  return pRetry(attempt, {
    retries: policy.retries,
    minTimeout: 0,
    maxTimeout: 0,
    shouldRetry: ({ error }) => error instanceof VaultRequestError && error.retryable,
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (!(error instanceof VaultRequestError) || !error.retryable || retriesLeft <= 0) return;
      if (signal?.aborted) throw cancelled(error, signal);
      const delayMs = retryDelayMs(error, attemptNumber, policy, hooks.random);
      hooks.onRetry?.(error, attemptNumber, delayMs);
      await sleepUnlessAborted(sleep, delayMs, signal);
      if (signal?.aborted) throw cancelled(error, signal);
    },
  });
}
