import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric of the operator, on its own registry (never the global one, so tests and two operators in
 * one process do not collide). Names of the performance guide (seed 003) are used exactly. Labels never
 * carry secret values: operation, result, error type, status code, reflector name.
 */
export class Metrics {
  readonly registry = new Registry();

  // --- from the performance guide, exact names ---
  readonly rateLimitWait = new Histogram({
    name: 'vault_rate_limit_wait_duration_seconds',
    help: 'Time a Vault request waited for a token of the rate limiter',
    labelNames: ['operation'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly rateLimitRequests = new Counter({
    name: 'vault_rate_limit_requests_total',
    help: 'Vault requests that passed through the rate limiter',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  readonly batchOperations = new Counter({
    name: 'vault_batch_operations_total',
    help: 'Operations processed in batches, by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'vault_batch_size_histogram',
    help: 'Operations per batch',
    buckets: [1, 2, 3, 5, 10, 20, 50, 100],
    registers: [this.registry],
  });
  readonly batchDuration = new Histogram({
    name: 'vault_batch_duration_seconds',
    help: 'Time to complete a batch',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly largeSecrets = new Counter({
    name: 'vault_large_secret_count',
    help: 'Secrets processed whose payload is above the large-secret threshold',
    registers: [this.registry],
  });
  readonly memoryOptimizations = new Counter({
    name: 'vault_memory_optimization_applied_total',
    help: 'Times the memory-aware path for large secrets was used',
    registers: [this.registry],
  });

  // --- more ---
  readonly syncOperations = new Counter({
    name: 'vault_sync_operations_total',
    help: 'Reconciles of a source, by result',
    labelNames: ['kind', 'result'],
    registers: [this.registry],
  });
  readonly vaultRequestDuration = new Histogram({
    name: 'vault_request_duration_seconds',
    help: 'Duration of Vault requests (after the rate limiter), by operation and HTTP status code',
    labelNames: ['operation', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly vaultRetries = new Counter({
    name: 'vault_request_retries_total',
    help: 'Retried Vault requests, by operation and error type',
    labelNames: ['operation', 'error_type'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'vault_sync_errors_total',
    help: 'Errors, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'vault_sync_queue_depth',
    help: 'Sources waiting in the work queue',
    registers: [this.registry],
  });
  readonly pendingOperations = new Gauge({
    name: 'vault_pending_operations',
    help: 'Vault operations waiting for a batch or a rate-limit token',
    registers: [this.registry],
  });
  readonly informerEvents = new Counter({
    name: 'vault_sync_informer_events_total',
    help: 'Watch events received, by resource and type',
    labelNames: ['resource', 'type'],
    registers: [this.registry],
  });
  readonly lastSuccessfulSync = new Gauge({
    name: 'vault_sync_last_success_timestamp_seconds',
    help: 'Unix time of the last successful reconcile',
    registers: [this.registry],
  });
  /** Set by the Vault client: seconds the current token has left (0 = does not expire). */
  tokenTtlSource?: () => number;
  readonly tokenTtl = new Gauge({
    name: 'vault_token_ttl_seconds',
    help: 'Remaining TTL of the operator\'s Vault token (0 = does not expire)',
    registers: [this.registry],
    // Computed at scrape time, so it counts down between renewals.
    collect: ((metrics: Metrics) =>
      function (this: Gauge) {
        if (metrics.tokenTtlSource) this.set(Math.max(0, metrics.tokenTtlSource()));
      })(this),
  });
  readonly vaultRequestErrors = new Counter({
    name: 'vault_request_errors_total',
    help: 'Failed Vault request attempts, by operation and error type (connection, timeout, server, rate-limited, forbidden, not-found, cas-mismatch, bad-request, too-large)',
    labelNames: ['operation', 'error_type'],
    registers: [this.registry],
  });
  readonly batchCoalesced = new Counter({
    name: 'vault_batch_coalesced_total',
    help: 'Operations merged into one still waiting for the same path (newest content wins), by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  readonly vaultAuth = new Counter({
    name: 'vault_auth_total',
    help: 'Vault logins and token renewals, by event (login, renew) and result',
    labelNames: ['event', 'result'],
    registers: [this.registry],
  });
  readonly driftScanRefusals = new Counter({
    name: 'vault_sync_drift_scan_refusals_total',
    help: 'Drift scans not to be had, by reason (unsupported: the server has none; forbidden: no scan capability; too-large: the answer passed --vault-drift-scan-max-bytes): those roots are checked folder by folder',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: 'vault_sync_refusals_total',
    help: 'Sources refused, by reason code (invalid annotation, path outside tenancy, not owned, too large, ...)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly driftCorrections = new Counter({
    name: 'vault_sync_drift_corrections_total',
    help: 'Out-of-band changes in Vault that were restored',
    registers: [this.registry],
  });
  readonly fencedRequests = new Counter({
    name: 'vault_sync_fenced_requests_total',
    help: 'Requests not sent because this replica did not hold its Lease at the moment of sending, by target (vault: a Vault request; status: a VaultSync status write)',
    labelNames: ['target'],
    registers: [this.registry],
  });
  /** DRY_RUN only (absent otherwise): the plan of every source, summed. */
  readonly plannedOperations = new Gauge({
    name: 'vault_sync_planned_operations',
    help: 'DRY_RUN: Vault path operations the current plan would do, by action (create, update, adopt, delete, refuse, unchanged, keep)',
    labelNames: ['action'],
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry }); // standard names (process_*, nodejs_*) so stock dashboards work
    // Initialise labelled series at zero so rate() and alerts work before the first event.
    for (const result of ['synced', 'unchanged', 'deleted', 'refused', 'invalid', 'suspended', 'error']) {
      for (const kind of ['Deployment', 'Secret']) this.syncOperations.labels(kind, result).inc(0);
    }
    for (const result of ['success', 'failure']) this.batchOperations.labels(result).inc(0);
    for (const target of ['vault', 'status']) this.fencedRequests.labels(target).inc(0);
    for (const reason of ['unsupported', 'forbidden', 'too-large']) this.driftScanRefusals.labels(reason).inc(0);
    for (const event of ['login', 'renew']) for (const result of ['success', 'failure']) this.vaultAuth.labels(event, result).inc(0);
    for (const operation of ['write', 'write-metadata', 'read-metadata', 'read', 'delete', 'login', 'renew', 'token-lookup', 'mount-lookup', 'server-detect']) {
      this.rateLimitRequests.labels(operation).inc(0);
    }
    this.largeSecrets.inc(0);
    this.memoryOptimizations.inc(0);
  }
}
