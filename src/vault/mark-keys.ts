// The custom_metadata keys the operator writes or reads on a path: its ownership marks. One list, used by the
// code that writes the marks (src/sync/ownership.ts, src/sync/write-policy.ts) and by the check that keeps a
// user's own custom_metadata (vault-sync.io/custom-metadata) from setting or shadowing any of them.

export const MarkKeys = {
  managedBy: 'managed-by',
  cluster: 'cluster',
  sourceKind: 'source-kind',
  sourceNamespace: 'source-namespace',
  sourceName: 'source-name',
  sourceUid: 'source-uid',
  /** Only with --content-hash-in-metadata. */
  contentHash: 'content-hash',
  /** Only when some keys are written as base64. */
  base64Keys: 'base64-keys',
} as const;

/** An adoption keeps the path's old custom_metadata under this prefix. */
export const PREVIOUS_PREFIX = 'previous-';

/** Families of keys: every `previous-*` (adoption) and every `source-*` (the source's identity, now and later). */
export const MARK_PREFIXES: readonly string[] = [PREVIOUS_PREFIX, 'source-'];

/** Every exact key the operator writes or reads. */
export const MARK_NAMES: readonly string[] = Object.values(MarkKeys);

/**
 * The most marks one path carries outside an adoption: every exact key above. Vault allows 64 keys in
 * custom_metadata; a user's own keys get the rest.
 */
export const MAX_MARKS = MARK_NAMES.length;

/**
 * Is this key one of the marks, or would a reader take it for one? Compared in ASCII lower case: `Managed-By`
 * is another key to Vault, but not to a person reading the metadata.
 */
export function isMarkKey(key: string): boolean {
  const lower = key.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return MARK_NAMES.includes(lower) || MARK_PREFIXES.some((prefix) => lower.startsWith(prefix));
}
