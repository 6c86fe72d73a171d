import type { KvPath } from './path.js';

/** Metadata of a KV v2 secret: enough to check ownership and drift without reading the data. */
export interface KvMetadata {
  currentVersion: number;
  customMetadata: Record<string, string>;
  /** The latest version was soft-deleted or destroyed (its data is gone although the version number stays). */
  currentVersionDeleted?: boolean;
}

/**
 * The narrow interface the rest of the operator sees; only the adapter imports the Vault SDK.
 * Every method goes through the operator's single rate limiter.
 */
export interface VaultPort {
  /** Writes the data as a new version; `cas` makes it conditional (0 = only if the path is new). */
  writeData(path: KvPath, data: Record<string, string>, options?: { cas?: number }): Promise<{ version: number }>;
  /** Replaces the path's custom_metadata (ownership marks). */
  writeMetadata(path: KvPath, customMetadata: Record<string, string>): Promise<void>;
  /** Undefined when nothing exists at the path. */
  readMetadata(path: KvPath): Promise<KvMetadata | undefined>;
  /** Soft-deletes the latest version (recoverable with `undelete`; older versions stay). */
  deleteLatest(path: KvPath): Promise<void>;
  /** Deletes every version and the metadata. */
  deleteAll(path: KvPath): Promise<void>;
  /** Reads the data (tests, drift repair). Undefined when absent or deleted. */
  readData(path: KvPath): Promise<Record<string, string> | undefined>;
}
