import type { Logger } from 'pino';
import { toVaultError, VaultRequestError } from './errors.js';
import { LimiterStoppedError, Priority, type VaultRateLimiter } from './limiter.js';
import type { VaultMetrics } from './metrics.js';
import type { RequestContext } from './port.js';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryPolicy } from './retry.js';

/** Per-operation hooks (the batcher's), with the request's context (which source it is for). */
export interface RequestHooks extends Pick<RequestContext, 'source'> {
  /** The operation's first request got its rate-limit token and is being sent. */
  onStart?(): void;
}

/** What each attempt hands the SDK call, which passes it on to the transport: `onSent` tells the limiter the request left. */
export interface PerRequest {
  onSent(): void;
}

/** One attempt of a request: the SDK call, given the attempt's per-request options. */
export type Send<T> = (perRequest: PerRequest) => Promise<T>;

export interface CoreRequestOptions {
  /** The limiter priority; by default the auth operations' for those, the normal one for the rest. */
  priority?: number;
  /** Called once, when the first attempt got its rate-limit token. */
  onStart?: () => void;
  /** The source the request is for: its flow in the limiter's fair line. */
  source?: string;
}

/** The request core as the token session uses it (a unit test of the session hands it a fake). */
export interface Requester {
  request<T>(operation: string, target: string, send: Send<T>, options?: CoreRequestOptions): Promise<T>;
}

export interface RequestCoreOptions {
  limiter: VaultRateLimiter;
  log: Logger;
  metrics?: VaultMetrics;
  retry?: RetryPolicy;
}

/** Operations of the auth level (see pipeline.ts `Level`): they skip the batcher and go first in the limiter. */
const AUTH_OPERATIONS: ReadonlySet<string> = new Set(['login', 'renew', 'token-lookup', 'mount-lookup']);

/**
 * One logical Vault request, whatever it is for: each attempt takes a token from the shared limiter (a retry
 * too, at retry priority); transient failures are retried with backoff (retry.ts); every attempt is timed and
 * counted; whatever fails leaves as a VaultRequestError (errors.ts), which never carries a request body.
 * It knows nothing of tokens or KV versions: the token session and the KV strategies build on it.
 */
export class RequestCore implements Requester {
  private readonly retry: RetryPolicy;

  constructor(private readonly options: RequestCoreOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
  }

  request<T>(operation: string, target: string, send: Send<T>, options: CoreRequestOptions = {}): Promise<T> {
    const { limiter, log, metrics } = this.options;
    // The auth level: requests that keep the operator able to talk to Vault at all go before any write.
    const priority = options.priority ?? (AUTH_OPERATIONS.has(operation) ? Priority.auth : undefined);
    let unanswered = false; // an attempt went out and no answer came back: it may have been applied
    return withRetries(
      (attempt) =>
        limiter
          .schedule(
            operation,
            (permit) => {
              if (attempt === 1) options.onStart?.();
              return this.timed(operation, target, send, permit.sent).catch((error: unknown) => {
                if (error instanceof VaultRequestError) {
                  if (unanswered) error.earlierAttemptUnanswered = true;
                  if (error.statusCode === undefined) unanswered = true;
                }
                throw error;
              });
            },
            { priority: attempt > 1 ? Math.min(priority ?? Priority.retry, Priority.retry) : priority, label: target, source: options.source },
          )
          .catch((error: unknown) => {
            if (error instanceof LimiterStoppedError) throw new VaultRequestError(operation, target, undefined, 'stopped', 'the operator is shutting down');
            throw error;
          }),
      this.retry,
      {
        onRetry: (error, attempt, delayMs) => {
          metrics?.retried(operation, error.kind);
          log.debug({ operation, target, attempt, delayMs, status: error.statusCode, kind: error.kind }, 'Vault request failed; retrying');
        },
      },
    );
  }

  private async timed<T>(operation: string, target: string, send: Send<T>, onSent: () => void): Promise<T> {
    const { metrics } = this.options;
    const started = performance.now();
    try {
      const result = await send({ onSent });
      metrics?.requestDone(operation, '200', (performance.now() - started) / 1000);
      return result;
    } catch (raw) {
      const error = toVaultError(operation, target, raw);
      metrics?.requestDone(operation, error.statusCode === undefined ? 'none' : String(error.statusCode), (performance.now() - started) / 1000);
      metrics?.requestFailed(operation, error.kind);
      throw error;
    }
  }
}
