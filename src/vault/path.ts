/** A location in a KV secrets engine: the mount (`secret`) and the key below it (`team/app`). */
export interface KvPath {
  mount: string;
  key: string;
}

export type PathResult = { ok: true; path: KvPath } | { ok: false; reason: string };

/**
 * Parses the `vault-sync.io/path` annotation. `secret/my-app` and the KV v2 API form `secret/data/my-app`
 * name the same place. Refuses what could escape the intended place: traversal (`..`, `.`), empty
 * segments, and mounts that are not an allowed KV mount (so `sys/`, `auth/` and friends are refused).
 */
export function parseVaultPath(raw: string | undefined, allowedMounts: readonly string[]): PathResult {
  const text = (raw ?? '').trim();
  if (text === '') return { ok: false, reason: 'the Vault path is empty' };
  if (text.startsWith('/')) return { ok: false, reason: `the Vault path "${text}" must not start with "/"` };
  const withoutTrailingSlash = text.replace(/\/+$/, '');
  const segments = withoutTrailingSlash.split('/');
  if (segments.some((s) => s === '')) return { ok: false, reason: `the Vault path "${text}" has an empty segment` };
  if (segments.some((s) => s === '..' || s === '.')) return { ok: false, reason: `the Vault path "${text}" contains "." or ".." (path traversal)` };
  if (segments.some((s) => /[\s\x00-\x1f\x7f?#%*+]/.test(s))) return { ok: false, reason: `the Vault path "${text}" contains characters not allowed in a Vault path` };
  const [mount, ...rest] = segments;
  if (!allowedMounts.includes(mount)) {
    return { ok: false, reason: `the Vault path "${text}" is not under an allowed KV mount (${allowedMounts.map((m) => m + '/').join(', ')})` };
  }
  const keySegments = rest[0] === 'data' ? rest.slice(1) : rest;
  if (keySegments.length === 0) return { ok: false, reason: `the Vault path "${text}" names the mount itself, not a secret below it` };
  return { ok: true, path: { mount, key: keySegments.join('/') } };
}

export function childPath(parent: KvPath, child: string): KvPath {
  return { mount: parent.mount, key: `${parent.key}/${child}` };
}

/** The human form, as users write it in annotations: `secret/team/app`. */
export function formatPath(path: KvPath): string {
  return `${path.mount}/${path.key}`;
}

/** Parses a path this operator wrote itself (`mount/key`), without policy checks. */
export function parseKvPathLoose(text: string): KvPath {
  const slash = text.indexOf('/');
  return { mount: text.slice(0, slash), key: text.slice(slash + 1) };
}
