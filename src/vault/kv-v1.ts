import type { ScanAnswer } from './detailed-scan.js';
import { VaultRequestError } from './errors.js';
import { formatPath, type KvPath } from './path.js';
import type { KvMetadata, WriteResult } from './port.js';
import type { RequestHooks } from './request-core.js';
import { apiPath, listKeys, readOrUndefined, stringEntries, type KvStrategy, type WriteOptions } from './kv-strategy.js';
import type { PageAnswer } from './detailed-listing.js';
import type { ListPage } from './transport.js';
import type { VaultRequests } from './vault-api.js';

/** KV v1 has no metadata endpoint: the ownership marks ride in the data under this key (as External Secrets does). */
export const KV1_METADATA_KEY = 'custom_metadata';

interface Kv1Entry {
  data: ReadonlyMap<string, string>;
  marks?: Record<string, string>;
}

/**
 * KV version 1: one unversioned document per path. The ownership marks are kept in it under
 * KV1_METADATA_KEY, so a marks write rewrites the data and a data write carries the marks; there is no
 * check-and-set (writes answer version 0).
 */
export class KvV1 implements KvStrategy {
  readonly version = 1;
  /** The marks last read or written per path, so a data write keeps them without a read. */
  private readonly marks = new Map<string, Record<string, string>>();

  constructor(private readonly requests: VaultRequests) {}

  async writeData(path: KvPath, data: ReadonlyMap<string, string>, options: WriteOptions): Promise<WriteResult> {
    if (data.has(KV1_METADATA_KEY)) {
      throw new VaultRequestError('write', formatPath(path), undefined, 'bad-request', `the key "${KV1_METADATA_KEY}" is reserved on a KV version 1 mount (it holds the ownership marks)`);
    }
    const marks = this.marks.get(formatPath(path)) ?? (await this.readEntry(path, options))?.marks ?? {};
    const body = Object.keys(marks).length > 0 ? new Map<string, unknown>([...data, [KV1_METADATA_KEY, marks]]) : data;
    await this.requests.write('write', formatPath(path), apiPath(path, undefined), body, options, options.stream === true ? { streamBody: true } : undefined);
    return { version: 0 };
  }

  /** Rewrites the data with the new marks; a path not written yet gets them with its data. */
  async writeMetadata(path: KvPath, customMetadata: Record<string, string>, hooks?: RequestHooks): Promise<void> {
    const current = await this.readEntry(path, hooks);
    this.marks.set(formatPath(path), { ...customMetadata });
    if (current) await this.requests.write('write-metadata', formatPath(path), apiPath(path, undefined), new Map<string, unknown>([...current.data, [KV1_METADATA_KEY, customMetadata]]));
    else hooks?.onStart?.();
  }

  async readMetadata(path: KvPath, hooks?: RequestHooks): Promise<KvMetadata | undefined> {
    const current = await this.readEntry(path, hooks);
    return current ? { currentVersion: 0, customMetadata: current.marks ?? {} } : undefined;
  }

  listFolder(folder: KvPath, hooks?: RequestHooks): Promise<string[]> {
    return listKeys(this.requests, folder, undefined, hooks);
  }

  /** KV v1 keeps no metadata: nothing to list, no request sent. */
  async listDetailedPage(_folder: KvPath, _page: ListPage, hooks?: RequestHooks): Promise<PageAnswer> {
    hooks?.onStart?.();
    return { kind: 'refused', why: 'unsupported' };
  }

  /** KV v1 keeps no metadata: nothing to scan, no request sent. */
  async scanDetailed(_folder: KvPath, _maxBytes: number, hooks?: RequestHooks): Promise<ScanAnswer> {
    hooks?.onStart?.();
    return { kind: 'refused', why: 'unsupported' };
  }

  async readData(path: KvPath, hooks?: RequestHooks): Promise<ReadonlyMap<string, string> | undefined> {
    return (await this.readEntry(path, hooks))?.data;
  }

  /** No versions to keep: the same as deleteAll. */
  deleteLatest(path: KvPath, hooks?: RequestHooks): Promise<void> {
    return this.deleteAll(path, hooks);
  }

  async deleteAll(path: KvPath, hooks?: RequestHooks): Promise<void> {
    await this.requests.delete('delete', formatPath(path), apiPath(path, undefined), hooks);
    this.marks.delete(formatPath(path));
  }

  /** The data without the marks, and the marks apart; remembers the marks for the next data write. */
  private async readEntry(path: KvPath, hooks?: RequestHooks): Promise<Kv1Entry | undefined> {
    const result = await readOrUndefined(this.requests, 'read', path, undefined, hooks);
    if (result === undefined) return undefined;
    const data = stringEntries(result?.data ?? {});
    const marks = Object.hasOwn(result?.data ?? {}, KV1_METADATA_KEY) ? (result.data as Record<string, unknown>)[KV1_METADATA_KEY] : undefined;
    data.delete(KV1_METADATA_KEY);
    const validMarks = marks && typeof marks === 'object' ? (marks as Record<string, string>) : undefined;
    if (validMarks) this.marks.set(formatPath(path), validMarks);
    else this.marks.delete(formatPath(path));
    return { data, marks: validMarks };
  }
}
