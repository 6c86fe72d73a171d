import { VaultPathGrammar as G } from './path-grammar.js';

/**
 * A location in a KV secrets engine: the mount (`secret`) and the key below it (`team/app`). Built by
 * parseVaultPath (or childPath from one), so every segment is in the grammar of path-grammar.ts; kvApiPath
 * checks that again before anything reaches the wire.
 */
export interface KvPath {
  mount: string;
  key: string;
}

export type PathResult = { ok: true; path: KvPath } | { ok: false; reason: string };
export type SegmentsResult = { ok: true; segments: string[] } | { ok: false; reason: string };

const SEGMENT = new RegExp(G.segmentPattern);
const QUOTE_LIMIT = 80;

/**
 * The input as it may appear in a message: at most QUOTE_LIMIT characters, and every character outside
 * printable ASCII (control, bidi, zero-width, look-alike) shown as a \u escape, so a message never carries
 * the hostile bytes themselves, nor an unbounded amount of them.
 */
export function quoteForMessage(text: string): string {
  const chars = [...text];
  const shown = chars
    .slice(0, QUOTE_LIMIT)
    .map((c) => (/^[\x20-\x7e]$/.test(c) && c !== '"' && c !== '\\' ? c : escapeChar(c)))
    .join('');
  return `"${shown}${chars.length > QUOTE_LIMIT ? `…(${chars.length} characters)` : ''}"`;
}

function escapeChar(c: string): string {
  if (c === '"') return '\\"';
  if (c === '\\') return '\\\\';
  return [...c].map((u) => `\\u{${u.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}}`).join('');
}

/** Why one segment is not in the grammar, or undefined when it is. */
export function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'has an empty segment';
  if ((G.dotSegments as readonly string[]).includes(segment)) return `contains a "${segment}" segment (path traversal)`;
  if (segment.length > G.maxSegmentLength) return `has a segment longer than ${G.maxSegmentLength} characters`;
  if (!SEGMENT.test(segment)) {
    const bad = [...segment].find((c) => !new RegExp(`^${G.segmentCharClass}$`).test(c))!;
    return `contains the character ${quoteForMessage(bad)}; a segment may hold only letters, digits, ".", "_" and "-"`;
  }
  return undefined;
}

/**
 * The segments of a path in the grammar (surrounding ASCII whitespace and one trailing "/" tolerated), or
 * why it is not. Shared by the annotation parser and the tenancy prefixes, so both read a path alike.
 */
export function splitPath(raw: string): SegmentsResult {
  const trimmed = trimAscii(raw);
  const shown = quoteForMessage(trimmed);
  if (trimmed === '') return { ok: false, reason: 'the Vault path is empty' };
  if (trimmed.length > G.maxPathLength) return { ok: false, reason: `the Vault path ${shown} is longer than ${G.maxPathLength} characters` };
  if (trimmed.startsWith('/')) return { ok: false, reason: `the Vault path ${shown} must not start with "/"` };
  const text = G.trailingSlashTolerated && trimmed.endsWith('/') ? trimmed.slice(0, -1) : trimmed;
  const segments = text.split('/');
  if (segments.length > G.maxSegments) return { ok: false, reason: `the Vault path ${shown} has more than ${G.maxSegments} segments` };
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem) return { ok: false, reason: `the Vault path ${shown} ${problem}` };
  }
  return { ok: true, segments };
}

function trimAscii(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && G.trimmedCharacters.includes(text[start])) start++;
  while (end > start && G.trimmedCharacters.includes(text[end - 1])) end--;
  return text.slice(start, end);
}

/**
 * The key segments below a mount: `data` right after the mount is the KV v2 API form of the same path
 * (dropped); the other API segments (`metadata`, `destroy`, …) right after the mount are refused.
 */
export function keySegmentsBelowMount(afterMount: readonly string[], shown: string): SegmentsResult {
  const [first, ...rest] = afterMount;
  if ((G.reservedAfterMount as readonly string[]).includes(first)) {
    return { ok: false, reason: `the Vault path ${shown} names the KV API endpoint "${first}/" right after the mount; write the path as mount/key (or mount/data/key)` };
  }
  return { ok: true, segments: first === G.kvV2DataSegment ? rest : [...afterMount] };
}

/**
 * Parses the `vault-sync.io/path` annotation into a KvPath: the grammar of path-grammar.ts, then an allowed
 * KV mount, then the KV v2 API segments. `secret/my-app` and `secret/data/my-app` name the same place.
 * Every refusal says why, quoting the input bounded and escaped.
 */
export function parseVaultPath(raw: string | undefined, allowedMounts: readonly string[]): PathResult {
  const split = splitPath(raw ?? '');
  if (!split.ok) return split;
  const shown = quoteForMessage(trimAscii(raw ?? ''));
  const [mount, ...afterMount] = split.segments;
  if (!allowedMounts.includes(mount)) {
    return { ok: false, reason: `the Vault path ${shown} is not under an allowed KV mount (${allowedMounts.map((m) => m + '/').join(', ')})` };
  }
  const below = keySegmentsBelowMount(afterMount, shown);
  if (!below.ok) return below;
  if (below.segments.length === 0) return { ok: false, reason: `the Vault path ${shown} names the mount itself, not a secret below it` };
  return { ok: true, path: { mount, key: below.segments.join('/') } };
}

/** The path of one child below a parent (an auto-discovered Secret): the child must be a segment itself. */
export function childPath(parent: KvPath, child: string): PathResult {
  const problem = segmentProblem(child);
  if (problem) return { ok: false, reason: `the child path segment ${quoteForMessage(child)} ${problem}` };
  const key = `${parent.key}/${child}`;
  if (parent.mount.length + 1 + key.length > G.maxPathLength) return { ok: false, reason: `the Vault path "${parent.mount}/${key}" would be longer than ${G.maxPathLength} characters` };
  return { ok: true, path: { mount: parent.mount, key } };
}

/**
 * The human form, as users write it in annotations and as status and Events show it: `secret/team/app`.
 * A key whose first segment is `data` or another KV API segment is shown in the explicit API form
 * (`secret/data/data/x`), so that parsing the shown form gives back the same path, never another one.
 */
export function formatPath(path: KvPath): string {
  const first = path.key.split('/', 1)[0];
  const ambiguous = first === G.kvV2DataSegment || (G.reservedAfterMount as readonly string[]).includes(first);
  return ambiguous ? `${path.mount}/${G.kvV2DataSegment}/${path.key}` : `${path.mount}/${path.key}`;
}

/** The segments of a KvPath: the mount, then the key's. */
export function pathSegments(path: KvPath): string[] {
  return [path.mount, ...path.key.split('/')];
}

/**
 * Parses a path this operator wrote itself (formatPath's output, from a VaultSync status), without policy
 * checks: the inverse of formatPath, so `secret/data/data/x` is the key `data/x`.
 */
export function parseKvPathLoose(text: string): KvPath {
  const slash = text.indexOf('/');
  const mount = text.slice(0, slash);
  const key = text.slice(slash + 1);
  const apiForm = `${G.kvV2DataSegment}/`;
  return { mount, key: key.startsWith(apiForm) ? key.slice(apiForm.length) : key };
}

/** The KV v2 endpoints a path is reached through. */
export type KvApi = 'data' | 'metadata' | 'detailed-metadata' | 'delete' | 'destroy';

/** A path that is not in the grammar reached the wire builder: a bug, never sent. */
export class NonCanonicalPathError extends Error {}

/**
 * The one builder of a KV request path below /v1/: `secret/data/team/app` (KV v2, with its API segment) or
 * `secret/team/app` (KV v1, api undefined). Every segment is checked against the grammar again and
 * percent-encoded (a no-op for the grammar's characters, so the path sent is the validated path).
 */
export function kvApiPath(path: KvPath, api: KvApi | undefined): string {
  const segments = pathSegments(path);
  for (const segment of segments) {
    if (segmentProblem(segment)) throw new NonCanonicalPathError(`refusing to send a Vault path that is not in canonical form: ${quoteForMessage(formatPath(path))}`);
  }
  const [mount, ...key] = segments.map(encodeURIComponent);
  return (api === undefined ? [mount, ...key] : [mount, api, ...key]).join('/');
}
