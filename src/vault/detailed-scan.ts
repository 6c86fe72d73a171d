// `GET <mount>/detailed-metadata/<folder>?scan=true` (OpenBao's SCAN, the `scan` capability): the detailed
// metadata of every key below a folder, recursively, in one answer. Not paged, so the answer is read with a byte
// cap (the transport aborts past it). Pure here: the strict parse, and what a refusal means.
import { VaultRequestError } from './errors.js';
import { segmentProblem } from './path.js';
import type { KvMetadata } from './port.js';
import { isObject, ListingFormatError, parseKeyInfo } from './detailed-listing.js';

/** Keys one scan may name: more than a capped answer can hold (about 100 bytes a key at the least). */
export const SCAN_MAX_KEYS = 1_000_000;

/**
 * Why no scan result: `unsupported` (HashiCorp Vault, OpenBao without SCAN, KV v1: for good), `forbidden` (no
 * `scan` capability: asked again later), `too-large` (the answer passed the byte cap: that root only).
 */
export type ScanRefusal = 'unsupported' | 'forbidden' | 'too-large';

/** The metadata below the scanned folder, by path relative to it (`app/s1`): canonical paths only. */
export type ScanEntries = Map<string, KvMetadata>;

export type ScanAnswer = { kind: 'scan'; entries: ScanEntries } | { kind: 'refused'; why: ScanRefusal };

/**
 * Pure, strict: a scan's answer. `keys` is a list of distinct strings; each relative path whose every segment is
 * canonical has an object in `key_info` (parseKeyInfo). A name ending in `/` (a sub-folder) or with a segment
 * outside the grammar is no path of ours and is skipped. `data: {}` is an empty or absent folder.
 */
export function parseDetailedScan(answer: unknown, maxKeys = SCAN_MAX_KEYS): ScanEntries {
  const data = (answer as { data?: unknown } | undefined)?.data;
  if (!isObject(data)) throw new ListingFormatError('the scan has no data object');
  const entries: ScanEntries = new Map();
  if (data.keys === undefined && data.key_info === undefined) return entries;
  const keys = data.keys;
  const info = data.key_info;
  if (!Array.isArray(keys) || !keys.every((k): k is string => typeof k === 'string')) throw new ListingFormatError('the scan has no list of key names');
  if (keys.length > maxKeys) throw new ListingFormatError(`the scan names ${keys.length} keys, more than ${maxKeys}`);
  if (!isObject(info)) throw new ListingFormatError('the scan has no key_info object');
  for (const name of keys) {
    if (!isCanonicalRelative(name)) continue;
    if (entries.has(name)) throw new ListingFormatError('the scan names a key twice');
    entries.set(name, parseKeyInfo(Object.hasOwn(info, name) ? info[name] : undefined));
  }
  return entries;
}

function isCanonicalRelative(name: string): boolean {
  if (name === '' || name.endsWith('/')) return false;
  return name.split('/').every((segment) => segmentProblem(segment) === undefined);
}

/**
 * Pure: what a failed scan request says. 405, 400 (an older server's "unsupported operation") and a 404 that
 * says the path is invalid mean no scan on this server; 403 means no `scan` capability; `too-large` is the
 * byte cap; a bare 404 is an empty folder. Anything else is an error like any request's.
 */
export function classifyScanError(error: unknown): { kind: 'empty' } | { kind: 'refused'; why: ScanRefusal } | undefined {
  if (!(error instanceof VaultRequestError)) return undefined;
  if (error.kind === 'too-large' && error.statusCode !== 400 && error.statusCode !== 413) return { kind: 'refused', why: 'too-large' };
  if (error.statusCode === 405 || error.statusCode === 400 || (error.kind === 'not-found' && /invalid path|unsupported (path|operation)/i.test(error.message))) return { kind: 'refused', why: 'unsupported' };
  if (error.kind === 'not-found') return { kind: 'empty' };
  if (error.kind === 'forbidden') return { kind: 'refused', why: 'forbidden' };
  return undefined;
}
