import type { VaultMetrics } from '../vault/metrics.js';
import type { Metrics } from './metrics.js';

/** The operator's Prometheus registry, seen through the narrow recorder the Vault layer declares. */
export function vaultMetricsOf(metrics: Metrics): VaultMetrics {
  return {
    rateLimited(operation, waitedSeconds) {
      metrics.rateLimitRequests.labels(operation).inc();
      metrics.rateLimitWait.labels(operation).observe(waitedSeconds);
    },
    requestDone: (operation, status, seconds) => metrics.vaultRequestDuration.labels(operation, status).observe(seconds),
    requestFailed: (operation, errorKind) => metrics.vaultRequestErrors.labels(operation, errorKind).inc(),
    retried: (operation, errorKind) => metrics.vaultRetries.labels(operation, errorKind).inc(),
    auth: (event, result) => metrics.vaultAuth.labels(event, result).inc(),
    tokenTtlFrom(secondsLeft) {
      metrics.tokenTtlSource = secondsLeft;
    },
    largeSecret: () => metrics.largeSecrets.inc(),
    bodyStreamed: () => metrics.memoryOptimizations.inc(),
    batchDispatched: (size) => metrics.batchSize.observe(size),
    batchSettled(succeeded, failed, seconds) {
      if (failed > 0) metrics.batchOperations.labels('failure').inc(failed);
      if (succeeded > 0) metrics.batchOperations.labels('success').inc(succeeded);
      metrics.batchDuration.observe(seconds);
    },
    coalesced: (operation) => metrics.batchCoalesced.labels(operation).inc(),
    waiting: (count) => metrics.pendingOperations.set(count),
    refused: (reason) => metrics.refusals.labels(reason).inc(),
    fenced: () => metrics.fencedRequests.labels('vault').inc(),
  };
}
