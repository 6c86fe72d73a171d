import { formatPath, type KvPath } from './path.js';
import type { KvMetadata, WriteResult } from './port.js';
import type { RequestHooks } from './request-core.js';
import { apiPath, listKeys, readOrUndefined, stringEntries, type KvStrategy, type WriteOptions } from './kv-strategy.js';
import type { VaultRequests } from './vault-api.js';
import { classifyListingError, ListingFormatError, parseDetailedPage, type PageAnswer } from './detailed-listing.js';
import { classifyScanError, parseDetailedScan, type ScanAnswer } from './detailed-scan.js';
import { VaultRequestError } from './errors.js';
import type { ListPage } from './transport.js';

/** A token refused a detailed listing (no `list` on <mount>/detailed-metadata/*): per-path reads until then, then asked again. */
export const FORBIDDEN_LISTING_RECHECK_MS = 5 * 60_000;

/**
 * KV version 2: versioned data under `<mount>/data/`, the ownership marks in the path's custom_metadata
 * under `<mount>/metadata/`, check-and-set on writes.
 */
export class KvV2 implements KvStrategy {
  readonly version = 2;
  /**
   * Whether this mount's server lists detailed metadata, learned from the first listing's answer and kept (one
   * KvV2 per mount, like its KV version): `unsupported` sends no more listings; a 403 is kept for a while only,
   * since a policy fix cures it.
   */
  private detailedListing: { state: 'unknown' | 'supported' | 'unsupported' } | { state: 'forbidden'; until: number } = { state: 'unknown' };

  /** Whether this mount's server scans (OpenBao's SCAN), learned like the detailed listing: a 403 for a while only. */
  private detailedScan: { state: 'unknown' | 'supported' | 'unsupported' } | { state: 'forbidden'; until: number } = { state: 'unknown' };

  constructor(
    private readonly requests: VaultRequests,
    private readonly now: () => number = Date.now,
    /** Told when what the server says about detailed listings changes (the operator logs it once). */
    private readonly onListingSupport?: (state: 'supported' | 'unsupported' | 'forbidden') => void,
  ) {}

  private learn(next: KvV2['detailedListing']): void {
    const changed = next.state !== this.detailedListing.state;
    this.detailedListing = next;
    if (changed && next.state !== 'unknown') this.onListingSupport?.(next.state);
  }

  /** Known so far: `unknown` until the first listing answered. */
  get detailedListingSupport(): 'unknown' | 'supported' | 'unsupported' | 'forbidden' {
    return this.detailedListing.state;
  }

  async listDetailedPage(folder: KvPath, page: ListPage, hooks?: RequestHooks): Promise<PageAnswer> {
    const known = this.detailedListing;
    if (known.state === 'unsupported' || (known.state === 'forbidden' && this.now() < known.until)) {
      hooks?.onStart?.();
      return { kind: 'refused', why: known.state };
    }
    let answer: unknown;
    try {
      answer = await this.requests.read('list-detailed', formatPath(folder), apiPath(folder, 'detailed-metadata'), hooks, { listQuery: true, listPage: page });
    } catch (error) {
      const meaning = classifyListingError(error);
      if (meaning === undefined) throw error;
      if (meaning.kind === 'empty') {
        this.learn({ state: 'supported' });
        return { kind: 'page', page: { names: [], entries: new Map() } };
      }
      this.learn(meaning.why === 'forbidden' ? { state: 'forbidden', until: this.now() + FORBIDDEN_LISTING_RECHECK_MS } : { state: 'unsupported' });
      return { kind: 'refused', why: meaning.why };
    }
    this.learn({ state: 'supported' });
    try {
      return { kind: 'page', page: parseDetailedPage(answer, page.after, page.limit) };
    } catch (error) {
      if (!(error instanceof ListingFormatError)) throw error;
      throw new VaultRequestError('list-detailed', formatPath(folder), 200, 'bad-request', `the server's detailed listing could not be read: ${error.message}`);
    }
  }

  /**
   * The detailed metadata of every key below the folder in one answer, read with a byte cap. Not sent where the
   * server is known to have no scan (or no detailed listing at all) or the token was refused it lately.
   */
  async scanDetailed(folder: KvPath, maxBytes: number, hooks?: RequestHooks): Promise<ScanAnswer> {
    const known = this.detailedScan;
    if (known.state === 'unsupported' || this.detailedListing.state === 'unsupported' || (known.state === 'forbidden' && this.now() < known.until)) {
      hooks?.onStart?.();
      return { kind: 'refused', why: known.state === 'forbidden' ? 'forbidden' : 'unsupported' };
    }
    let answer: unknown;
    try {
      answer = await this.requests.read('scan-detailed', formatPath(folder), apiPath(folder, 'detailed-metadata'), hooks, { scanQuery: true, maxResponseBytes: maxBytes });
    } catch (error) {
      const meaning = classifyScanError(error);
      if (meaning === undefined) throw error;
      if (meaning.kind === 'empty') {
        this.detailedScan = { state: 'supported' };
        return { kind: 'scan', entries: new Map() };
      }
      if (meaning.why === 'forbidden') this.detailedScan = { state: 'forbidden', until: this.now() + FORBIDDEN_LISTING_RECHECK_MS };
      if (meaning.why === 'unsupported') this.detailedScan = { state: 'unsupported' };
      return { kind: 'refused', why: meaning.why };
    }
    this.detailedScan = { state: 'supported' };
    try {
      return { kind: 'scan', entries: parseDetailedScan(answer) };
    } catch (error) {
      if (!(error instanceof ListingFormatError)) throw error;
      throw new VaultRequestError('scan-detailed', formatPath(folder), 200, 'bad-request', `the server's detailed scan could not be read: ${error.message}`);
    }
  }

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
