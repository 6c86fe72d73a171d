import { formatPath, type KvPath } from './path.js';
import type { KvMetadata, WriteResult } from './port.js';
import type { RequestHooks } from './request-core.js';
import { apiPath, listKeys, readOrUndefined, stringEntries, type KvStrategy, type WriteOptions } from './kv-strategy.js';
import type { VaultRequests } from './vault-api.js';

/**
 * KV version 2: versioned data under `<mount>/data/`, the ownership marks in the path's custom_metadata
 * under `<mount>/metadata/`, check-and-set on writes.
 */
export class KvV2 implements KvStrategy {
  readonly version = 2;

  constructor(private readonly requests: VaultRequests) {}

  async writeData(path: KvPath, data: ReadonlyMap<string, string>, options: WriteOptions): Promise<WriteResult> {
    const body = options.cas === undefined ? { data } : { data, options: { cas: options.cas } };
    const result = await this.requests.write('write', formatPath(path), apiPath(path, 'data'), body, options, options.stream === true ? { streamBody: true } : undefined);
    const customMetadata: unknown = result?.data?.custom_metadata;
    return { version: Number(result?.data?.version ?? 0), ...(customMetadata && typeof customMetadata === 'object' ? { customMetadata: Object.fromEntries(stringEntries(customMetadata)) } : {}) };
  }

  async writeMetadata(path: KvPath, customMetadata: Record<string, string>, hooks?: RequestHooks): Promise<void> {
    await this.requests.write('write-metadata', formatPath(path), apiPath(path, 'metadata'), { custom_metadata: customMetadata }, hooks);
  }

  async readMetadata(path: KvPath, hooks?: RequestHooks): Promise<KvMetadata | undefined> {
    const result = await readOrUndefined(this.requests, 'read-metadata', path, 'metadata', hooks);
    if (result === undefined) return undefined;
    const currentVersion = Number(result?.data?.current_version ?? 0);
    const current = result?.data?.versions?.[String(currentVersion)];
    return {
      currentVersion,
      customMetadata: result?.data?.custom_metadata ?? {},
      // A soft-deleted or destroyed latest version leaves current_version unchanged: drift all the same.
      currentVersionDeleted: current ? Boolean(current.destroyed) || (current.deletion_time ?? '') !== '' : false,
    };
  }

  listFolder(folder: KvPath, hooks?: RequestHooks): Promise<string[]> {
    return listKeys(this.requests, folder, 'metadata', hooks);
  }

  async readData(path: KvPath, hooks?: RequestHooks): Promise<ReadonlyMap<string, string> | undefined> {
    const result = await readOrUndefined(this.requests, 'read', path, 'data', hooks);
    const data = result?.data?.data;
    return data && typeof data === 'object' ? stringEntries(data) : undefined;
  }

  /** Soft-deletes the latest version (older versions stay). */
  async deleteLatest(path: KvPath, hooks?: RequestHooks): Promise<void> {
    await this.requests.delete('delete', formatPath(path), apiPath(path, 'data'), hooks);
  }

  /** Every version and the metadata. */
  async deleteAll(path: KvPath, hooks?: RequestHooks): Promise<void> {
    await this.requests.delete('delete', formatPath(path), apiPath(path, 'metadata'), hooks);
  }
}
