import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import { VaultBatcher, type VaultOperation } from './batcher.js';
import { VaultRequestError } from './errors.js';
import type { NodeVaultClient } from './node-vault-client.js';
import { formatPath, type KvPath } from './path.js';
import type { KvMetadata, VaultPort, WriteResult } from './port.js';

export interface PipelineOptions {
  client: NodeVaultClient;
  batchSize: number;
  /** Payload size above which a write counts as a large secret (warning, metric, streamed body). */
  largeSecretThresholdBytes: number;
  /** Payload size above which a write is refused before it reaches Vault. */
  maxSecretBytes: number;
  log: Logger;
  metrics?: Metrics;
}

/** Bytes of a payload as sent (keys and values, UTF-8), computed without serializing or copying it. */
export function payloadBytes(data: ReadonlyMap<string, string>): number {
  let size = 0;
  for (const [key, value] of data) size += Buffer.byteLength(key) + Buffer.byteLength(value);
  return size;
}

/**
 * The VaultPort the reconciler sees: size checks on writes, then the batcher (grouping, merging waiting
 * writes to one path), then the client (rate limiter, retries, auth) for each operation.
 */
export class VaultPipeline implements VaultPort {
  private readonly batcher: VaultBatcher;

  constructor(private readonly options: PipelineOptions) {
    if (!(options.maxSecretBytes >= options.largeSecretThresholdBytes)) {
      throw new RangeError(`the maximum secret size (${options.maxSecretBytes}) must not be below the large-secret threshold (${options.largeSecretThresholdBytes})`);
    }
    this.batcher = new VaultBatcher({ batchSize: options.batchSize, metrics: options.metrics, execute: (operation, hooks) => this.execute(operation, hooks) });
  }

  get waiting(): number {
    return this.batcher.waiting;
  }

  writeData(path: KvPath, data: ReadonlyMap<string, string>, options?: { cas?: number }): Promise<WriteResult> {
    const size = payloadBytes(data);
    if (size > this.options.maxSecretBytes) {
      // Refused here, terminally: Vault would reject it on every retry (or its storage would).
      this.options.metrics?.vaultRequestErrors.labels('write', 'too-large').inc();
      return Promise.reject(new VaultRequestError('write', formatPath(path), undefined, 'too-large', `the payload is ${size} bytes, above the maximum of ${this.options.maxSecretBytes} bytes (--max-secret-size)`));
    }
    if (size > this.options.largeSecretThresholdBytes) {
      this.options.metrics?.largeSecrets.inc();
      this.options.log.warn({ path: formatPath(path), sizeBytes: size, keys: data.size, thresholdBytes: this.options.largeSecretThresholdBytes }, 'large secret: streaming it to Vault');
    }
    return this.batcher.submit({ kind: 'write', path, data, cas: options?.cas });
  }

  writeMetadata(path: KvPath, customMetadata: Record<string, string>): Promise<void> {
    return this.batcher.submit({ kind: 'write-metadata', path, customMetadata });
  }

  readMetadata(path: KvPath): Promise<KvMetadata | undefined> {
    return this.batcher.submit({ kind: 'read-metadata', path });
  }

  /** Not batched (nothing to group or merge): straight to the client, which takes a limiter token. */
  listFolder(folder: KvPath): Promise<string[]> {
    return this.options.client.listFolder(folder);
  }

  readData(path: KvPath): Promise<ReadonlyMap<string, string> | undefined> {
    return this.batcher.submit({ kind: 'read', path });
  }

  deleteLatest(path: KvPath): Promise<void> {
    return this.batcher.submit({ kind: 'delete-latest', path });
  }

  deleteAll(path: KvPath): Promise<void> {
    return this.batcher.submit({ kind: 'delete-all', path });
  }

  /** Rejects operations still waiting for a batch; waits for those in flight. */
  stop(): Promise<void> {
    return this.batcher.stop();
  }

  private execute(operation: VaultOperation, hooks: { onStart(): void }): Promise<unknown> {
    const { client } = this.options;
    switch (operation.kind) {
      case 'write':
        // Sized again: a merged write may have brought bigger content than the one first queued.
        return client.writeData(operation.path, operation.data, { cas: operation.cas, stream: payloadBytes(operation.data) > this.options.largeSecretThresholdBytes, ...hooks });
      case 'write-metadata':
        return client.writeMetadata(operation.path, operation.customMetadata, hooks);
      case 'read-metadata':
        return client.readMetadata(operation.path, hooks);
      case 'read':
        return client.readData(operation.path, hooks);
      case 'delete-latest':
        return client.deleteLatest(operation.path, hooks);
      case 'delete-all':
        return client.deleteAll(operation.path, hooks);
    }
  }
}
