import { VaultPathGrammar as G } from './path-grammar.js';
import { formatPath, keySegmentsBelowMount, quoteForMessage, segmentProblem, type KvPath } from './path.js';
import { formatPrefix, isInside, wholeMounts, type PathPrefix, type RequestScope } from './scope.js';

export { formatPrefix, isInside, type PathPrefix } from './scope.js';

/** A cluster-scoped VaultSyncPolicy: more path prefixes for some namespaces. */
export interface TenancyGrant {
  name: string;
  namespaces: string[];
  allowedPathPrefixes: string[];
}

export type TenancyDecision = { ok: true; prefix: string } | { ok: false; reason: string };
export type PrefixResult = { ok: true; prefix: PathPrefix } | { ok: false; reason: string };

/**
 * Parses a tenant path template or a VaultSyncPolicy prefix (`secret/{namespace}/`, `secret/data/apps/`) for
 * one namespace, with the grammar of the path annotation. `{namespace}` is substituted AFTER the text is
 * split into segments, as a literal key segment: a namespace named `data` gives the key segment `data`,
 * never the KV v2 API form; only a `data` written in the template itself, right after the mount, is the API
 * form. A namespace that is not a valid segment matches nothing.
 */
export function parsePrefix(template: string, namespace: string): PrefixResult {
  const shown = quoteForMessage(template);
  const text = template.trim().replace(/\/$/, '');
  if (text === '' || text.startsWith('/')) return { ok: false, reason: `the prefix ${shown} is empty or starts with "/"` };
  const raw = text.split('/');
  if (raw.length > G.maxSegments || text.length > G.maxPathLength) return { ok: false, reason: `the prefix ${shown} is too long` };
  const substituted: string[] = [];
  for (const segment of raw) {
    const value = segment.replaceAll(G.namespacePlaceholder, namespace);
    const problem = segmentProblem(value);
    if (problem) return { ok: false, reason: `the prefix ${shown} (namespace ${quoteForMessage(namespace)}) ${problem}` };
    substituted.push(value);
  }
  const [mount, ...afterMount] = substituted;
  if (raw[0].includes(G.namespacePlaceholder)) return { ok: false, reason: `the prefix ${shown} puts ${G.namespacePlaceholder} in the mount` };
  // The API form is decided on the template's own text: a substituted namespace is always a key segment.
  if (raw[1] === G.kvV2DataSegment) return { ok: true, prefix: { mount, key: afterMount.slice(1) } };
  if (raw.length > 1 && raw[1].includes(G.namespacePlaceholder)) return { ok: true, prefix: { mount, key: afterMount } };
  const below = keySegmentsBelowMount(afterMount, shown);
  if (!below.ok) return { ok: false, reason: below.reason.replace('the Vault path', 'the prefix') };
  return { ok: true, prefix: { mount, key: below.segments } };
}

/** Does a VaultSyncPolicy's `namespaces` entry (a name, `prefix*` or `*`) name this namespace? */
export function namespaceMatches(pattern: string, namespace: string): boolean {
  if (pattern === '*') return true;
  return pattern.endsWith('*') ? namespace.startsWith(pattern.slice(0, -1)) : pattern === namespace;
}

export interface AllowedPrefixes {
  prefixes: PathPrefix[];
  /** Prefixes that could not be parsed (named with their VaultSyncPolicy): they grant nothing. */
  ignored: string[];
}

/**
 * Pure: the prefixes a namespace may write under: the default template (e.g. `secret/{namespace}/`;
 * undefined = no default restriction) plus every VaultSyncPolicy that names the namespace.
 */
export function allowedPrefixes(namespace: string, template: string | undefined, grants: readonly TenancyGrant[]): AllowedPrefixes {
  return grantedPrefixes(namespace, template, grants, (grant) => grant.allowedPathPrefixes);
}

/** A VaultSyncPolicy that also lets unmarked paths be adopted below some prefixes. */
export interface AdoptionGrant {
  name?: string;
  namespaces: readonly string[];
  adoptPathPrefixes?: readonly string[];
}

/**
 * Pure: the prefixes below which a source in this namespace may adopt an unmarked path. Parsed and matched
 * exactly like the tenancy prefixes (the same parser, whole segments, both path forms: `secret/data/legacy/`
 * covers `secret/legacy/x`).
 */
export function adoptionPrefixes(namespace: string, grants: readonly AdoptionGrant[]): AllowedPrefixes {
  return grantedPrefixes(namespace, undefined, grants, (grant) => grant.adoptPathPrefixes ?? []);
}

/** The one reader of prefix lists: the template, then each grant naming the namespace; each prefix once. */
function grantedPrefixes<T extends { name?: string; namespaces: readonly string[] }>(namespace: string, template: string | undefined, grants: readonly T[], prefixesOf: (grant: T) => readonly string[]): AllowedPrefixes {
  const prefixes = new Map<string, PathPrefix>();
  const ignored: string[] = [];
  const add = (text: string, from: string) => {
    const parsed = parsePrefix(text, namespace);
    if (parsed.ok) prefixes.set(formatPrefix(parsed.prefix), parsed.prefix);
    else ignored.push(`${from}: ${parsed.reason}`);
  };
  if (template !== undefined) add(template, 'the tenant path template');
  for (const grant of grants) {
    if (!grant.namespaces.some((pattern) => namespaceMatches(pattern, namespace))) continue;
    for (const prefix of prefixesOf(grant)) add(prefix, `VaultSyncPolicy ${quoteForMessage(grant.name ?? '')}`);
  }
  return { prefixes: [...prefixes.values()], ignored };
}

/** The settings a scope is built from (the operator's, as syncSettings gives them). */
export interface ScopeSettings {
  /** Undefined: no default restriction (every allowed mount, whole). */
  tenantPathTemplate?: string;
  kvMounts: readonly string[];
}

/**
 * Pure: the scope every Vault request made for a source in this namespace carries, and the port enforces:
 * the tenant template's prefix and the VaultSyncPolicy grants for the namespace (exactly what checkTenancy
 * accepts), on the allowed KV mounts only. Without a template, every allowed mount is the scope, as
 * checkTenancy then accepts any path the path parser does. The one builder: the reconciler, the planner
 * and DRY_RUN all call it.
 */
export function scopeOf(namespace: string, settings: ScopeSettings, grants: readonly TenancyGrant[]): RequestScope {
  if (settings.tenantPathTemplate === undefined) return wholeMounts(settings.kvMounts, namespace);
  const mounts = [...settings.kvMounts];
  const prefixes = allowedPrefixes(namespace, settings.tenantPathTemplate, grants).prefixes.filter((prefix) => mounts.includes(prefix.mount));
  return { namespace, mounts, prefixes };
}

/** Pure: may a source in this namespace write at this path? Prefixes match whole segments only. */
export function checkTenancy(path: KvPath, namespace: string, template: string | undefined, grants: readonly TenancyGrant[]): TenancyDecision {
  if (template === undefined) return { ok: true, prefix: '' };
  const { prefixes, ignored } = allowedPrefixes(namespace, template, grants);
  const match = prefixes.find((prefix) => isInside(path, prefix));
  if (match) return { ok: true, prefix: formatPrefix(match) };
  const shownPrefixes = prefixes.map(formatPrefix).join(', ') || 'nothing';
  const ignoredNote = ignored.length > 0 ? `; ignored: ${ignored.slice(0, 3).join('; ')}${ignored.length > 3 ? ` …and ${ignored.length - 3} more` : ''}` : '';
  return {
    ok: false,
    reason: `the Vault path "${formatPath(path)}" is outside what namespace "${namespace}" may write to (${shownPrefixes}); a cluster admin can grant more with a VaultSyncPolicy${ignoredNote}`,
  };
}
