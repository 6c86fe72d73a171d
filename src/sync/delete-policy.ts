// The one delete-ownership check: a path is deleted only when it is provably this source's. Pure.
import { formatPath, type KvPath } from '../vault/path.js';
import type { SyncSource } from './desired.js';
import { describeOwner, ownershipOf } from './ownership.js';
import type { SyncState } from './state-store.js';
import type { PathView } from './write-policy.js';

export type DeleteAction =
  | { action: 'delete'; proof: 'marks' | 'intent' }
  | { action: 'gone' }
  /** Recorded by this source but not provably ours now: an Event, never a delete. */
  | { action: 'refuse'; reason: string }
  /** Only an intent named it, and that write never landed: nothing of ours is there. */
  | { action: 'drop' }
  | { action: 'unchecked' };

/**
 * Pure, the one delete-ownership check: a path is deleted only when it is ours — by its marks, or, with no
 * marks at all, by this source's record: its data landed at exactly the version an intent or a
 * marks-pending entry names (the marks had not followed yet).
 */
export function decideDelete(view: PathView, source: Pick<SyncSource, 'kind' | 'namespace' | 'name'>, clusterName: string, proofVersions: ReadonlySet<number>, recorded: boolean): DeleteAction {
  if (view.state === 'unchecked') return { action: 'unchecked' };
  if (view.state !== 'present') return { action: 'gone' };
  const { metadata } = view;
  const owner = ownershipOf(metadata.customMetadata, source, clusterName);
  if (owner === 'ours') return { action: 'delete', proof: 'marks' };
  if (owner === 'unowned' && !metadata.currentVersionDeleted && proofVersions.has(metadata.currentVersion)) return { action: 'delete', proof: 'intent' };
  return recorded ? { action: 'refuse', reason: `it is ${describeOwner(metadata.customMetadata)}` } : { action: 'drop' };
}

/** By path: the versions this source's record says it wrote there without the marks (yet). */
export function deleteProofs(record: SyncState | undefined): Map<string, Set<number>> {
  const proofs = new Map<string, Set<number>>();
  const add = (path: KvPath, version: number) => {
    const shown = formatPath(path);
    proofs.set(shown, (proofs.get(shown) ?? new Set<number>()).add(version));
  };
  for (const e of record?.entries ?? []) if (e.marksPending && e.version !== undefined) add(e.path, e.version);
  for (const i of record?.intents ?? []) add(i.path, i.version);
  return proofs;
}
