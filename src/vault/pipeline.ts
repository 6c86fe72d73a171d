import { MARKS_MAX_WAIT_DEFAULT } from '../config.js';
import type { Logger } from 'pino';
import { VaultBatcher, type VaultOperation } from './batcher.js';
import { VaultRequestError } from './errors.js';
import type { VaultMetrics } from './metrics.js';
import type { NodeVaultClient } from './node-vault-client.js';
import { formatPath, quoteForMessage, type KvPath } from './path.js';
import type { KvMetadata, RequestContext, VaultPort, WriteResult } from './port.js';
import { describeScope, permits } from './scope.js';
import type { ScanAnswer } from './detailed-scan.js';
import { collectPages, LISTING_PAGE_LIMIT, type DetailedListing, type ListingRefusal, type PageAnswer } from './detailed-listing.js';

export interface PipelineOptions {
  client: NodeVaultClient;
  batchSize: number;
  /** Payload size above which a write counts as a large secret (warning, metric, streamed body). */
  largeSecretThresholdBytes: number;
  /** Payload size above which a write is refused before it reaches Vault. */
  maxSecretBytes: number;
  log: Logger;
  metrics?: VaultMetrics;
  /** A waiting metadata write (marks) is served as data after this many services of the line (default MARKS_MAX_WAIT_DEFAULT, --vault-marks-max-wait: marks trail their data but must not starve under steady churn). */
  marksMaxWaitServices?: number;
}


/**
 * Priority levels of the fair line, decided from the operation kind: values first. Auth requests (login,
 * renewal, token lookup, mount lookup) do not pass through the batcher: they go straight to the limiter
 * with its highest priority, so they are the top level in effect; level 0 is kept for them here too.
 * Data (writes, deletes, reads, folder lists) comes next; the ownership marks of a new path may trail its data (the
 * intent record covers the gap), so metadata writes wait while data waits.
 */
export const Level = { auth: 0, data: 1, marks: 2, drift: 3 } as const;

/** Drift checks' reads go last: a change's data and marks go first (both age into data, so neither starves). */
export function levelOf(kind: VaultOperation['kind'], drift = false): number {
  if (drift) return Level.drift;
  return kind === 'write-metadata' ? Level.marks : Level.data;
}

/** Bytes of a payload as sent (keys and values, UTF-8), computed without serializing or copying it. */
export function payloadBytes(data: ReadonlyMap<string, string>): number {
  let size = 0;
  for (const [key, value] of data) size += Buffer.byteLength(key) + Buffer.byteLength(value);
  return size;
}

/** The reason a request refused at the port is counted under (vault_sync_refusals_total{reason}). */
export const OUTSIDE_SCOPE = 'OutsideScope';

/**
 * The VaultPort the reconciler and the planner see, the one entrance of every KV request: first its scope
 * (a request outside the grant it carries, or carrying none, is refused and never sent), then the size
 * check on writes, then the batcher (grouping, merging waiting writes to one path), then the client (rate
 * limiter, retries, auth) for each operation. Login, token renewal and lookup and mount lookup are the
 * only requests that do not come through here: they serve no source and reach no KV path.
 */
export class VaultPipeline implements VaultPort {
  private readonly batcher: VaultBatcher;

  constructor(private readonly options: PipelineOptions) {
    if (!(options.maxSecretBytes >= options.largeSecretThresholdBytes)) {
      throw new RangeError(`the maximum secret size (${options.maxSecretBytes}) must not be below the large-secret threshold (${options.largeSecretThresholdBytes})`);
    }
    this.batcher = new VaultBatcher({
      batchSize: options.batchSize,
      metrics: options.metrics,
      aging: { afterServices: options.marksMaxWaitServices ?? MARKS_MAX_WAIT_DEFAULT, toLevel: Level.data },
      execute: (operation, hooks) => this.execute(operation, hooks),
    });
  }

  get waiting(): number {
    return this.batcher.waiting;
  }

  /** When the current stretch of waiting work began (performance.now()); undefined while nothing waits. */
  get waitingSince(): number | undefined {
    return this.batcher.waitingSince;
  }

  writeData(path: KvPath, data: ReadonlyMap<string, string>, options: { cas?: number }, context: RequestContext): Promise<WriteResult> {
    return this.submit({ kind: 'write', path, data, cas: options.cas }, context);
  }

  writeMetadata(path: KvPath, customMetadata: Record<string, string>, context: RequestContext): Promise<void> {
    return this.submit({ kind: 'write-metadata', path, customMetadata }, context);
  }

  readMetadata(path: KvPath, context: RequestContext): Promise<KvMetadata | undefined> {
    return this.submit({ kind: 'read-metadata', path }, context);
  }

  /**
   * Through the fair line like every KV operation (data level, the source's flow): sent straight to the
   * limiter, each new source's LIST would go ahead of every waiting operation of the others.
   */
  listFolder(folder: KvPath, context: RequestContext): Promise<string[]> {
    return this.submit({ kind: 'list', path: folder }, context);
  }

  /** Page by page through the fair line: each page is its own operation, scope-checked like every request. */
  listDetailedMetadata(folder: KvPath, context: RequestContext, options: { through?: string } = {}): Promise<DetailedListing | { refused: ListingRefusal }> {
    return collectPages((after) => this.submit<PageAnswer>({ kind: 'list-detailed', path: folder, limit: LISTING_PAGE_LIMIT, ...(after !== undefined ? { after } : {}) }, context), options);
  }

  /** One request through the fair line, scope-checked like a LIST: the folder itself must be inside the scope. */
  scanDetailedMetadata(folder: KvPath, context: RequestContext, options: { maxBytes: number }): Promise<ScanAnswer> {
    return this.submit({ kind: 'scan-detailed', path: folder, maxBytes: options.maxBytes }, context);
  }

  readData(path: KvPath, context: RequestContext): Promise<ReadonlyMap<string, string> | undefined> {
    return this.submit({ kind: 'read', path }, context);
  }

  deleteLatest(path: KvPath, context: RequestContext): Promise<void> {
    return this.submit({ kind: 'delete-latest', path }, context);
  }

  deleteAll(path: KvPath, context: RequestContext): Promise<void> {
    return this.submit({ kind: 'delete-all', path }, context);
  }

  private submit<T>(operation: VaultOperation, context: RequestContext): Promise<T> {
    const refused = this.refuseOutsideScope(operation.kind, operation.path, context) ?? (operation.kind === 'write' ? this.refuseTooLarge(operation.path, operation.data) : undefined);
    if (refused) return Promise.reject(refused);
    return this.batcher.submit<T>(operation, { source: context.source, level: levelOf(operation.kind, context.drift === true) });
  }

  /** Refused here, terminally: Vault would reject it on every retry (or its storage would). */
  private refuseTooLarge(path: KvPath, data: ReadonlyMap<string, string>): VaultRequestError | undefined {
    const size = payloadBytes(data);
    if (size > this.options.maxSecretBytes) {
      this.options.metrics?.requestFailed('write', 'too-large');
      return new VaultRequestError('write', formatPath(path), undefined, 'too-large', `the payload is ${size} bytes, above the maximum of ${this.options.maxSecretBytes} bytes (--max-secret-size)`);
    }
    if (size > this.options.largeSecretThresholdBytes) {
      this.options.metrics?.largeSecret();
      this.options.log.warn({ path: formatPath(path), sizeBytes: size, keys: data.size, thresholdBytes: this.options.largeSecretThresholdBytes }, 'large secret: streaming it to Vault');
    }
    return undefined;
  }

  /**
   * The grant, enforced below every caller and before the line and the limiter. A refusal means a caller
   * asked for a path its own checks should have kept out (or forgot the scope): an internal error, logged
   * and counted, and terminal (no retry can change it). The error names the path as the caller gave it;
   * the log names the scope too.
   */
  private refuseOutsideScope(operation: VaultOperation['kind'], path: KvPath, context: RequestContext | undefined): VaultRequestError | undefined {
    const scope = context?.scope;
    if (scope && permits(scope, path)) return undefined;
    const shown = quoteForMessage(formatPath(path));
    const why = scope ? `outside the scope of ${describeScope(scope)}` : 'the request carries no scope';
    this.options.metrics?.refused(OUTSIDE_SCOPE);
    this.options.log.error({ operation, path: shown, source: context?.source, scope: scope ? describeScope(scope) : undefined }, `internal error: a Vault request was refused before sending: ${why}`);
    return new VaultRequestError(operation, shown, undefined, 'outside-scope', `refused before sending: ${why}`);
  }

  /** Rejects operations still waiting for a batch; waits for those in flight. */
  stop(): Promise<void> {
    return this.batcher.stop();
  }

  /** Rejects operations still waiting for a batch as not sent ('fenced'), at once; takes no more. */
  abort(reason: string): void {
    this.batcher.abort(reason);
  }

  private execute(operation: VaultOperation, hooks: { onStart(): void; source?: string }): Promise<unknown> {
    const { client } = this.options;
    switch (operation.kind) {
      case 'write':
        // Sized again: a merged write may have brought bigger content than the one first queued.
        return client.writeData(operation.path, operation.data, { cas: operation.cas, stream: payloadBytes(operation.data) > this.options.largeSecretThresholdBytes }, hooks);
      case 'write-metadata':
        return client.writeMetadata(operation.path, operation.customMetadata, hooks);
      case 'read-metadata':
        return client.readMetadata(operation.path, hooks);
      case 'read':
        return client.readData(operation.path, hooks);
      case 'list':
        return client.listFolder(operation.path, hooks);
      case 'list-detailed':
        return client.listDetailedPage(operation.path, { limit: operation.limit, ...(operation.after !== undefined ? { after: operation.after } : {}) }, hooks);
      case 'scan-detailed':
        return client.scanDetailed(operation.path, operation.maxBytes, hooks);
      case 'delete-latest':
        return client.deleteLatest(operation.path, hooks);
      case 'delete-all':
        return client.deleteAll(operation.path, hooks);
    }
  }
}
