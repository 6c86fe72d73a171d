import { formatPath, pathSegments, segmentProblem, type KvPath } from './path.js';

/** A prefix parsed into segments: a path is inside it when its mount and key start with these segments. */
export interface PathPrefix {
  mount: string;
  key: readonly string[];
}

/**
 * What the requests made for one source may reach: its namespace's grant (the tenant prefix and the
 * VaultSyncPolicy prefixes), on the allowed KV mounts. Plain data, built by one function (`scopeOf` in
 * tenancy.ts) from the source's namespace, and checked by the port (pipeline.ts) on every KV request.
 */
export interface RequestScope {
  /** The namespace whose grant this is: what a refusal names. */
  readonly namespace: string;
  /** The KV mounts requests may use at all. */
  readonly mounts: readonly string[];
  /** Inside one of these (whole segments), on one of `mounts`. A prefix with an empty key is a whole mount. */
  readonly prefixes: readonly PathPrefix[];
}

/** The segments of a path or folder; a folder may be the mount itself (key ""). */
function segmentsOf(path: KvPath): string[] {
  return path.key === '' ? [path.mount] : pathSegments(path);
}

/** Pure: is the path (or folder) at or below the prefix, comparing whole segments (never strings)? */
export function isInside(path: KvPath, prefix: PathPrefix): boolean {
  return segmentsInside(segmentsOf(path), prefix);
}

function segmentsInside([mount, ...key]: readonly string[], prefix: PathPrefix): boolean {
  return mount === prefix.mount && prefix.key.length <= key.length && prefix.key.every((segment, i) => key[i] === segment);
}

/**
 * Pure: may a request reach this path (a secret, or a folder for a LIST) under this scope? A LIST shows every
 * name below its folder, so the folder itself must be at or below a granted prefix: a LIST of `secret/` or of a
 * sibling tenant's folder is outside. A path not in canonical form is outside every scope.
 */
export function permits(scope: RequestScope, path: KvPath): boolean {
  if (!scope.mounts.includes(path.mount)) return false;
  const segments = segmentsOf(path);
  if (segments.some((segment) => segmentProblem(segment) !== undefined)) return false;
  return scope.prefixes.some((prefix) => segmentsInside(segments, prefix));
}

/** The canonical text of a prefix, as messages show it: `secret/team-a/`. */
export function formatPrefix(prefix: PathPrefix): string {
  return prefix.key.length === 0 ? `${prefix.mount}/` : `${formatPath({ mount: prefix.mount, key: prefix.key.join('/') })}/`;
}

/** The scope as a message shows it: the namespace and its prefixes (never the path refused). */
export function describeScope(scope: RequestScope): string {
  return `namespace "${scope.namespace}" (${scope.prefixes.map(formatPrefix).join(', ') || 'nothing'})`;
}

/**
 * A scope of whole mounts: what a source may reach when no tenant template restricts it (see scopeOf in
 * tenancy.ts), and what a tool that acts for no source (a benchmark, a test of the Vault layer)
 * carries. `holder` names it in refusals.
 */
export function wholeMounts(mounts: readonly string[], holder: string): RequestScope {
  return { namespace: holder, mounts: [...mounts], prefixes: mounts.map((mount) => ({ mount, key: [] })) };
}
