/**
 * What the Vault layer reports, and nothing more: the layer declares it, the composition root adapts the
 * operator's Prometheus registry to it (src/observability/vault-metrics.ts). So src/vault depends on no
 * metrics library and no registry, and a test or a benchmark can hand it any recorder.
 *
 * Labels are operation names and error kinds chosen by this layer, never paths or values.
 */
export interface VaultMetrics {
  /** A request got its rate-limit token after waiting this long. */
  rateLimited(operation: string, waitedSeconds: number): void;
  /** One request attempt answered (status: the HTTP status, or "none" when there was no answer). */
  requestDone(operation: string, status: string, seconds: number): void;
  /** One failed request attempt, by error kind. */
  requestFailed(operation: string, errorKind: string): void;
  /** A retryable failure that will be retried. */
  retried(operation: string, errorKind: string): void;
  auth(event: 'login' | 'renew', result: 'success' | 'failure'): void;
  /** Where the current token's remaining TTL (seconds, 0 = does not expire) can be read at scrape time. */
  tokenTtlFrom(secondsLeft: () => number): void;
  /** A write above the large-secret threshold. */
  largeSecret(): void;
  /** A write whose body was streamed (the memory-aware path). */
  bodyStreamed(): void;
  batchDispatched(size: number): void;
  batchSettled(succeeded: number, failed: number, seconds: number): void;
  /** An operation merged into one still waiting for the same path. */
  coalesced(operation: string): void;
  /** Operations waiting for a batch or for their first token. */
  waiting(count: number): void;
  /** A request the port refused before it reached the line (reason: `OutsideScope`); it was never sent. */
  refused(reason: string): void;
  /** A request not sent: this replica did not hold its Lease at the moment of sending. */
  fenced(operation: string): void;
}
