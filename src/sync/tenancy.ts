import { formatPath, type KvPath } from '../vault/path.js';

/** A cluster-scoped VaultSyncPolicy: more path prefixes for some namespaces. */
export interface TenancyGrant {
  name: string;
  namespaces: string[];
  allowedPathPrefixes: string[];
}

export type TenancyDecision = { ok: true; prefix: string } | { ok: false; reason: string };

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/^\/+/, '').replace(/\/data\//, '/');
  return trimmed.endsWith('/') ? trimmed : trimmed + '/';
}

function namespaceMatches(pattern: string, namespace: string): boolean {
  if (pattern === '*') return true;
  return pattern.endsWith('*') ? namespace.startsWith(pattern.slice(0, -1)) : pattern === namespace;
}

/**
 * Pure: the prefixes a namespace may write under: the default template (e.g. `secret/{namespace}/`;
 * undefined = no default restriction) plus every VaultSyncPolicy that names the namespace.
 */
export function allowedPrefixes(namespace: string, template: string | undefined, grants: readonly TenancyGrant[]): string[] {
  const prefixes = template === undefined ? [] : [normalizePrefix(template.replaceAll('{namespace}', namespace))];
  for (const grant of grants) {
    if (grant.namespaces.some((pattern) => namespaceMatches(pattern, namespace))) {
      for (const prefix of grant.allowedPathPrefixes) prefixes.push(normalizePrefix(prefix.replaceAll('{namespace}', namespace)));
    }
  }
  return [...new Set(prefixes)];
}

/** Pure: may a source in this namespace write at this path? Prefixes match whole segments only. */
export function checkTenancy(path: KvPath, namespace: string, template: string | undefined, grants: readonly TenancyGrant[]): TenancyDecision {
  if (template === undefined) return { ok: true, prefix: '' };
  const prefixes = allowedPrefixes(namespace, template, grants);
  const candidate = formatPath(path) + '/';
  const match = prefixes.find((prefix) => candidate.startsWith(prefix));
  if (match) return { ok: true, prefix: match };
  return {
    ok: false,
    reason: `the Vault path "${formatPath(path)}" is outside what namespace "${namespace}" may write to (${prefixes.join(', ')}); a cluster admin can grant more with a VaultSyncPolicy`,
  };
}
