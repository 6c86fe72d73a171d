/**
 * The grammar of a Vault path in `vault-sync.io/path`, in VaultSyncPolicy `allowedPathPrefixes` and in the
 * tenant path template: data only (regex sources, numbers, lists), so that the same rules can be turned into
 * CEL for a ValidatingAdmissionPolicy. src/vault/path.ts is the one parser that applies them.
 *
 *   path     = mount "/" [ "data" "/" ] key        ; `secret/data/x` is the KV v2 API form of `secret/x`
 *   key      = segment *( "/" segment )
 *   segment  = 1*SEGMENT_CHAR, not "." nor ".."
 *
 * Why this character set: it covers every Kubernetes object name (auto-discovered child paths are Secret
 * names) and the usual Vault key names, and it holds nothing that any layer between here and Vault's
 * router reads specially: no `\` (a URL parser turns it into `/`), no `%` (percent-decoding), no `?#`
 * (query, fragment), no `*+` (Vault policy globs), no whitespace, control or non-ASCII characters (look-alikes,
 * bidi overrides, zero-width and NEL characters that Vault itself refuses). Anything else is refused, never
 * rewritten.
 */
export const VaultPathGrammar = {
  /** One character of a segment, as a regex character class. */
  segmentCharClass: '[A-Za-z0-9._-]',
  /** A whole segment (anchored); `.` and `..` match it and are refused separately (dotSegments). */
  segmentPattern: '^[A-Za-z0-9._-]+$',
  /** Segments that would walk the path: refused wherever they appear. */
  dotSegments: ['.', '..'],
  /** Longest segment: 253, the longest Kubernetes object name (a Secret name becomes a segment). */
  maxSegmentLength: 253,
  /** Longest path, in characters (all ASCII, so bytes too), as written (the mount included). */
  maxPathLength: 512,
  /** Most segments in one path, the mount included. */
  maxSegments: 32,
  /** Right after the mount, `data` is the KV v2 API form of the same path (`secret/data/x` = `secret/x`). */
  kvV2DataSegment: 'data',
  /**
   * Other KV v2 API segments: right after the mount they would address another endpoint (metadata, version
   * destruction, engine config), so a path may not start with them below the mount.
   */
  reservedAfterMount: ['metadata', 'delete', 'destroy', 'undelete', 'subkeys', 'config'],
  /** Tolerated and removed before parsing: ASCII spaces/tabs/newlines around the path, and one trailing `/`. */
  trimmedCharacters: ' \t\r\n',
  trailingSlashTolerated: true,
  /** The placeholder of the tenant path template and of VaultSyncPolicy prefixes; replaced by a whole segment. */
  namespacePlaceholder: '{namespace}',
} as const;

/** The limits of the `vault-sync.io/secrets` annotation and of what a source may send: data, like the grammar. */
export const InputLimits = {
  /**
   * Longest text of the `vault-sync.io/secrets` annotation: Kubernetes' own bound on all of an object's
   * annotations together (256 KiB), so a list the apiserver accepts is never refused for its length. How many
   * Secrets one source may sync is a setting (--max-secrets-per-source), not a constant here.
   */
  maxSecretsAnnotationLength: 256 * 1024,
  /**
   * Longest key name and `prefix` (Kubernetes allows 253 for a Secret key). How many keys one path may hold
   * depends on the Vault server: --max-keys-per-path (src/vault/server-limits.ts).
   */
  maxKeyNameLength: 253,
  /** Longest message of a status condition or an Event (the API server allows 32 KiB for conditions, 1 KiB shown by kubectl). */
  maxMessageLength: 1024,
} as const;
