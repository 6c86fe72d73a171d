import type { KvPath } from './path.js';
import type { RequestScope } from './scope.js';
import type { ScanAnswer } from './detailed-scan.js';
import type { DetailedListing, ListingRefusal } from './detailed-listing.js';

/** Metadata of a KV v2 secret: enough to check ownership and drift without reading the data. */
export interface KvMetadata {
  currentVersion: number;
  customMetadata: Record<string, string>;
  /** The latest version was soft-deleted or destroyed (its data is gone although the version number stays). */
  currentVersionDeleted?: boolean;
}

export interface WriteResult {
  version: number;
  /** The path's custom_metadata in the write's answer (KV v2); undefined when Vault did not say. */
  customMetadata?: Record<string, string>;
}

/**
 * On whose behalf a request is made, and what it may reach. The rate limiter's waiting line is shared fairly
 * between sources (round-robin per source key), so one big source cannot hold back a small one; the scope is
 * the grant of that source's namespace, which the port enforces on every KV request.
 */
export interface RequestContext {
  /** The source key (`Kind/namespace/name`) the request is for; requests without one share one flow. */
  source?: string;
  /**
   * What this request may reach. The port refuses a KV request outside it, never sending it (a caller bug).
   * Only login, token renewal and lookup, and mount lookup go without one: they pass no port method.
   */
  scope: RequestScope;
  /**
   * A drift check's read: it waits in the fair line while changes' requests wait (its own lowest level, aged
   * into the data level like the marks, so it is never starved), so a drift check never delays a change's write.
   */
  drift?: boolean;
}

/**
 * The narrow interface the rest of the operator sees; only the adapter imports the Vault SDK.
 * Every method goes through the operator's single rate limiter, and every KV request carries its scope.
 */
export interface VaultPort {
  /**
   * Writes the data as a new version; `cas` makes it conditional (0 = only if the path has no version). KV v2
   * answers with the path's custom_metadata as it is: a claim that appeared since the ownership check shows.
   * Key names are user input: a Map (serialized as a JSON object), never a plain object.
   */
  writeData(path: KvPath, data: ReadonlyMap<string, string>, options: { cas?: number }, context: RequestContext): Promise<WriteResult>;
  /** Replaces the path's custom_metadata (ownership marks). */
  writeMetadata(path: KvPath, customMetadata: Record<string, string>, context: RequestContext): Promise<void>;
  /** Undefined when nothing exists at the path. */
  readMetadata(path: KvPath, context: RequestContext): Promise<KvMetadata | undefined>;
  /** Soft-deletes the latest version (recoverable with `undelete`; older versions stay). */
  deleteLatest(path: KvPath, context: RequestContext): Promise<void>;
  /** Deletes every version and the metadata. */
  deleteAll(path: KvPath, context: RequestContext): Promise<void>;
  /**
   * The names directly below a folder that have metadata (with or without a version; sub-folders end in `/`).
   * Empty when the folder does not exist. One request for any number of children: the ownership pre-check of
   * new paths (docs/adr/0003-claim-with-the-data-write.md).
   */
  listFolder(folder: KvPath, context: RequestContext): Promise<string[]>;
  /**
   * The metadata of a folder's keys by leaf name, from `LIST <mount>/detailed-metadata/<folder>` (OpenBao >= 2.2),
   * paged until the folder ends, its name `through` is passed, or the page bound is reached (then `stoppedAfter`
   * says where). Each page is one request, scope-checked and in the fair line. `{ refused }` where the server has
   * no such listing (HashiCorp Vault, KV v1: learned once per mount) or the token lacks `list` on it: read per path.
   */
  listDetailedMetadata(folder: KvPath, context: RequestContext, options?: { through?: string }): Promise<DetailedListing | { refused: ListingRefusal }>;
  /**
   * The metadata of every key below a folder, recursively, by relative path, from one unpaged
   * `GET <mount>/detailed-metadata/<folder>?scan=true` (OpenBao's SCAN, the `scan` capability), its answer read
   * with a byte cap. Scope-checked like a LIST (the folder must be inside the scope) and in the fair line.
   * `refused`: no scan on this server (learned once per mount), none for this token (for a while), or over the cap.
   */
  scanDetailedMetadata(folder: KvPath, context: RequestContext, options: { maxBytes: number }): Promise<ScanAnswer>;
  /** Reads the data (tests, drift repair). Undefined when absent or deleted. */
  readData(path: KvPath, context: RequestContext): Promise<ReadonlyMap<string, string> | undefined>;
}
