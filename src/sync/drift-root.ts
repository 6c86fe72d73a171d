// Where a source's drift check can share one recursive scan (OpenBao's SCAN) with the checks of other sources:
// its root. Pure. The root is a folder inside the source's scope, so one scan of it reaches nothing the source
// may not reach; the drift slots of all sources below one root are aligned on the root, so they fall due together
// and one scan per period serves them all (src/sync/drift-scans.ts keeps the shared result, on the I/O side).
import { formatPath, type KvPath } from '../vault/path.js';
import { compareUtf8 } from '../vault/path-order.js';
import { isInside, permits, type RequestScope } from '../vault/scope.js';

/**
 * Pure: the folder one scan of which covers this path for its source. The scope's narrowest grant is widest to
 * share: the shortest granted prefix (a tenant prefix, a VaultSyncPolicy prefix) strictly above the path; a scope
 * of whole mounts gives none, so the path's first folder below the mount, when the scope permits it. A path
 * right below the mount has no root.
 */
export function rootOfPath(scope: RequestScope, path: KvPath): KvPath | undefined {
  const segments = path.key.split('/');
  const granted = scope.prefixes
    .filter((prefix) => prefix.key.length > 0 && prefix.key.length < segments.length && isInside(path, prefix))
    .map((prefix) => ({ mount: prefix.mount, key: prefix.key.join('/') }))
    .sort((a, b) => a.key.split('/').length - b.key.split('/').length || compareUtf8(formatPath(a), formatPath(b)));
  if (granted.length > 0) return granted[0];
  if (segments.length < 2) return undefined;
  const firstFolder = { mount: path.mount, key: segments[0] };
  return permits(scope, firstFolder) ? firstFolder : undefined;
}

/**
 * Pure: the source's drift root, the root of most of its paths (ties: the first in path order), or undefined when
 * none of its paths has one. Its paths below other roots, or none, are checked folder by folder as before.
 */
export function driftRootOf(scope: RequestScope, paths: readonly KvPath[]): KvPath | undefined {
  const counts = new Map<string, { root: KvPath; paths: number }>();
  for (const path of paths) {
    const root = rootOfPath(scope, path);
    if (!root) continue;
    const key = formatPath(root);
    const held = counts.get(key) ?? { root, paths: 0 };
    held.paths++;
    counts.set(key, held);
  }
  const best = [...counts.entries()].sort(([a, x], [b, y]) => y.paths - x.paths || compareUtf8(a, b))[0];
  return best?.[1].root;
}

/**
 * Pure: what the drift slot is keyed on: the root, so the sources below one root fall due together (one scan per
 * period), or the source key, so sources without a shared scan stay spread over the period as before.
 */
export function driftPhaseKey(sourceKey: string, root: KvPath | undefined): string {
  return root === undefined ? sourceKey : `root ${formatPath(root)}/`;
}

/** Pure: the path relative to the folder (`app/s1`), or undefined when it is not strictly below it. */
export function relativeTo(folder: KvPath, path: KvPath): string | undefined {
  if (path.mount !== folder.mount || !path.key.startsWith(`${folder.key}/`)) return undefined;
  return path.key.slice(folder.key.length + 1);
}
