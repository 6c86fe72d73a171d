import { VaultPathGrammar as G } from './path-grammar.js';
import { formatPath, keySegmentsBelowMount, pathSegments, quoteForMessage, segmentProblem, type KvPath } from './path.js';

/** A cluster-scoped VaultSyncPolicy: more path prefixes for some namespaces. */
export interface TenancyGrant {
  name: string;
  namespaces: string[];
  allowedPathPrefixes: string[];
}

/** A prefix parsed into segments: a path is inside it when its mount and key start with these segments. */
export interface PathPrefix {
  mount: string;
  key: readonly string[];
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

/** The canonical text of a prefix, as messages show it: `secret/team-a/`. */
export function formatPrefix(prefix: PathPrefix): string {
  return prefix.key.length === 0 ? `${prefix.mount}/` : `${formatPath({ mount: prefix.mount, key: prefix.key.join('/') })}/`;
}

/** Pure: is the path inside the prefix, comparing whole segments (never strings)? */
export function isInside(path: KvPath, prefix: PathPrefix): boolean {
  const [mount, ...key] = pathSegments(path);
  return mount === prefix.mount && prefix.key.length <= key.length && prefix.key.every((segment, i) => key[i] === segment);
}

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
    for (const prefix of grant.allowedPathPrefixes) add(prefix, `VaultSyncPolicy ${quoteForMessage(grant.name)}`);
  }
  return { prefixes: [...prefixes.values()], ignored };
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
