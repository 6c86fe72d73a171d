import type { DesiredEntry } from './desired.js';
import { formatPath, type KvPath } from '../vault/path.js';

/** What was last written at a path, as recorded by the operator. */
export interface SyncedEntry {
  path: KvPath;
  hash: string;
  version?: number;
  /** Keys written as base64 (marked in custom_metadata); the marks are rewritten when these change. */
  binaryKeys?: string[];
  /** The data landed, the ownership marks did not yet: the next reconcile writes them (no new version). */
  marksPending?: boolean;
  /** Hash of the user custom_metadata written with the marks (src/sync/user-metadata.ts); absent: none. */
  metadataHash?: string;
}

export type PlannedOperation =
  | { type: 'write'; entry: DesiredEntry; hash: string; reason: string }
  | { type: 'delete'; path: KvPath; reason: string }
  | { type: 'unchanged'; path: KvPath; hash: string; reason: string };

export interface PlanOptions {
  /** `vault-sync.io/rotation-check: disabled`: write every time. */
  changeDetection: boolean;
  /** A new force-sync token: write once even when equal. */
  force: boolean;
}

/**
 * Pure: compare the desired entries (with their content hashes) to what was last synced.
 * Equal means no-op; a path synced before but no longer desired is deleted.
 */
export function planSync(
  desired: Array<{ entry: DesiredEntry; hash: string }>,
  synced: readonly SyncedEntry[],
  options: PlanOptions,
): PlannedOperation[] {
  const previous = new Map(synced.map((s) => [formatPath(s.path), s]));
  const operations: PlannedOperation[] = [];
  for (const { entry, hash } of desired) {
    const before = previous.get(formatPath(entry.path));
    previous.delete(formatPath(entry.path));
    if (!before) operations.push({ type: 'write', entry, hash, reason: 'not synced yet' });
    else if (options.force) operations.push({ type: 'write', entry, hash, reason: 'force-sync requested' });
    else if (!options.changeDetection) operations.push({ type: 'write', entry, hash, reason: 'change detection disabled' });
    else if (before.hash !== hash) operations.push({ type: 'write', entry, hash, reason: 'content changed' });
    else operations.push({ type: 'unchanged', path: entry.path, hash, reason: 'content unchanged' });
  }
  for (const gone of previous.values()) {
    operations.push({ type: 'delete', path: gone.path, reason: 'no longer produced by the source' });
  }
  return operations;
}
