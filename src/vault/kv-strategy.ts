import { VaultRequestError } from './errors.js';
import { formatPath, kvApiPath, NonCanonicalPathError, quoteForMessage, type KvApi, type KvPath } from './path.js';
import type { KvMetadata, WriteResult } from './port.js';
import type { RequestHooks } from './request-core.js';
import type { VaultRequests } from './vault-api.js';
import type { ScanAnswer } from './detailed-scan.js';
import type { PageAnswer } from './detailed-listing.js';
import type { ListPage } from './transport.js';

export interface WriteOptions extends RequestHooks {
  cas?: number;
  /** Stream the body (the memory-aware path for large secrets). */
  stream?: boolean;
}

/**
 * The KV operations of one mount, as its KV version does them (kv-v1.ts, kv-v2.ts). Chosen once per mount
 * (kv-mounts.ts), so no operation asks which version it is talking to.
 */
export interface KvStrategy {
  readonly version: 1 | 2;
  writeData(path: KvPath, data: ReadonlyMap<string, string>, options: WriteOptions): Promise<WriteResult>;
  writeMetadata(path: KvPath, customMetadata: Record<string, string>, hooks?: RequestHooks): Promise<void>;
  readMetadata(path: KvPath, hooks?: RequestHooks): Promise<KvMetadata | undefined>;
  listFolder(folder: KvPath, hooks?: RequestHooks): Promise<string[]>;
  /** One page of the folder's detailed metadata, or why the server or the token will not list it. */
  listDetailedPage(folder: KvPath, page: ListPage, hooks?: RequestHooks): Promise<PageAnswer>;
  /** The detailed metadata of every key below the folder (OpenBao's SCAN), its answer read with a byte cap; or why not. */
  scanDetailed(folder: KvPath, maxBytes: number, hooks?: RequestHooks): Promise<ScanAnswer>;
  readData(path: KvPath, hooks?: RequestHooks): Promise<ReadonlyMap<string, string> | undefined>;
  deleteLatest(path: KvPath, hooks?: RequestHooks): Promise<void>;
  deleteAll(path: KvPath, hooks?: RequestHooks): Promise<void>;
}

/**
 * The request path of a KV operation, from the one builder (path.ts kvApiPath). A path not in canonical
 * form is a terminal bad request, never sent and never retried.
 */
export function apiPath(path: KvPath, api: KvApi | undefined): string {
  try {
    return kvApiPath(path, api);
  } catch (error) {
    if (!(error instanceof NonCanonicalPathError)) throw error;
    throw new VaultRequestError('request', quoteForMessage(formatPath(path)), undefined, 'bad-request', error.message);
  }
}

/** A read whose 404 means "nothing there": undefined instead of an error. */
export async function readOrUndefined(requests: VaultRequests, operation: string, path: KvPath, api: KvApi | undefined, hooks?: RequestHooks): Promise<any> {
  try {
    return await requests.read(operation, formatPath(path), apiPath(path, api), hooks);
  } catch (error) {
    if (error instanceof VaultRequestError && error.kind === 'not-found') return undefined;
    throw error;
  }
}

/** The names directly below a folder; an empty or absent folder (404) lists nothing. */
export async function listKeys(requests: VaultRequests, folder: KvPath, api: KvApi | undefined, hooks?: RequestHooks): Promise<string[]> {
  const path = apiPath(folder, api);
  try {
    // A GET with the fixed query `list=true` (the LIST verb does not pass every HTTP parser on the way).
    const result = await requests.read('list', formatPath(folder), path, hooks, { listQuery: true });
    const keys: unknown = result?.data?.keys;
    return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
  } catch (error) {
    if (error instanceof VaultRequestError && error.kind === 'not-found') return [];
    throw error;
  }
}

/**
 * A JSON object from Vault (parsed by JSON.parse, so `__proto__` is an own property) as a Map of its
 * string-valued entries: what was written is text, anything else is not ours to hand on.
 */
export function stringEntries(object: object): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [key, value] of Object.entries(object)) if (typeof value === 'string') entries.set(key, value);
  return entries;
}
