// `LIST <mount>/detailed-metadata/<folder>` (OpenBao >= 2.2): the metadata of every key of a folder in one paged
// answer. Pure here: the strict parse of one page, what a refusal means, and the paging with its bounds. The
// requests themselves go through the port (pipeline.ts: each page one request, scope-checked, in the fair line).
import { VaultRequestError } from './errors.js';
import { segmentProblem } from './path.js';
import type { KvMetadata } from './port.js';

/** Keys asked for per page (`limit`): one answer of about 400 bytes a key stays well under a megabyte. */
export const LISTING_PAGE_LIMIT = 1_000;
/** Pages one listing may take: 20,000 keys. Past that, the names not reached are read one by one. */
export const LISTING_MAX_PAGES = 20;

/** One page as the server sent it: every name in order (sub-folders end in `/`), and the metadata of the canonical leaves. */
export interface DetailedPage {
  names: string[];
  entries: Map<string, KvMetadata>;
}

/** The metadata of a folder's keys, by leaf name (canonical leaves only: a name outside the grammar is no path of ours). */
export interface DetailedListing {
  entries: Map<string, KvMetadata>;
  /**
   * Undefined: the whole folder was listed, so a leaf without an entry is absent. Otherwise the listing stopped at
   * this name (its bound, or it had passed every name asked about): a leaf after it is not known either way.
   */
  stoppedAfter?: string;
}

/** Why the server will not list detailed metadata: `unsupported` (HashiCorp Vault, OpenBao < 2.2, KV v1) or `forbidden` (no `list` on the path). */
export type ListingRefusal = 'unsupported' | 'forbidden';

export type PageAnswer = { kind: 'page'; page: DetailedPage } | { kind: 'refused'; why: ListingRefusal };

/** Is this leaf covered by the listing (so a missing entry means nothing is there)? */
export function listingCovers(listing: DetailedListing, leaf: string): boolean {
  return listing.stoppedAfter === undefined || compareNames(leaf, listing.stoppedAfter) <= 0;
}

/** The server's order of names: byte order (names of the grammar are ASCII, where UTF-16 order is the same). */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An answer that is not a detailed listing: refused, never guessed at. */
export class ListingFormatError extends Error {}

/**
 * Pure, strict: one page of a detailed listing. `keys` is a list of strings in increasing order, all after
 * `after` and at most `limit` of them; every canonical leaf has an object in `key_info` with a whole
 * `current_version`, a string-valued `custom_metadata` (or null) and `versions` (or none).
 */
export function parseDetailedPage(answer: unknown, after: string | undefined, limit: number): DetailedPage {
  const data = (answer as { data?: unknown } | undefined)?.data;
  if (!isObject(data)) throw new ListingFormatError('the listing has no data object');
  const keys = data.keys;
  const info = data.key_info;
  if (!Array.isArray(keys) || !keys.every((k): k is string => typeof k === 'string')) throw new ListingFormatError('the listing has no list of key names');
  if (keys.length > limit) throw new ListingFormatError(`the listing page has ${keys.length} keys, more than the ${limit} asked for`);
  if (!isObject(info)) throw new ListingFormatError('the listing has no key_info object');
  const entries = new Map<string, KvMetadata>();
  let previous = after;
  for (const name of keys) {
    if (previous !== undefined && compareNames(name, previous) <= 0) throw new ListingFormatError('the listing is not in increasing order of names');
    previous = name;
    if (name.endsWith('/') || segmentProblem(name) !== undefined) continue; // a sub-folder, or no canonical leaf
    entries.set(name, parseKeyInfo(Object.hasOwn(info, name) ? info[name] : undefined));
  }
  return { names: keys, entries };
}

/** Pure, strict: one key's entry of `key_info` (a detailed listing's or a scan's). */
export function parseKeyInfo(raw: unknown): KvMetadata {
  if (!isObject(raw)) throw new ListingFormatError('a key of the listing has no metadata object');
  const currentVersion = raw.current_version;
  if (typeof currentVersion !== 'number' || !Number.isSafeInteger(currentVersion) || currentVersion < 0) throw new ListingFormatError('a key of the listing has no whole current_version');
  const custom = raw.custom_metadata ?? {};
  if (!isObject(custom) || !Object.values(custom).every((v) => typeof v === 'string')) throw new ListingFormatError('a key of the listing has a custom_metadata that is not an object of strings');
  const versions = raw.versions ?? {};
  if (!isObject(versions)) throw new ListingFormatError('a key of the listing has a versions field that is not an object');
  const current = Object.hasOwn(versions, String(currentVersion)) ? versions[String(currentVersion)] : undefined;
  const currentObject = isObject(current) ? current : undefined;
  return {
    currentVersion,
    customMetadata: Object.fromEntries(Object.entries(custom)) as Record<string, string>,
    // As readMetadata says it: a soft-deleted or destroyed latest version leaves current_version unchanged.
    currentVersionDeleted: currentObject ? currentObject.destroyed === true || (typeof currentObject.deletion_time === 'string' && currentObject.deletion_time !== '') : false,
  };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Pure: what a failed page request says about the server. A 404 that says the path is invalid (HashiCorp
 * Vault's and older OpenBao's KV v2 answer to an unknown endpoint, as a warning) and a 405 mean no detailed
 * listing; a bare 404 is OpenBao's answer for an empty or absent folder; a 403 means the token lacks `list`.
 */
export function classifyListingError(error: unknown): { kind: 'empty' } | { kind: 'refused'; why: ListingRefusal } | undefined {
  if (!(error instanceof VaultRequestError)) return undefined;
  if (error.statusCode === 405 || (error.kind === 'not-found' && /invalid path|unsupported (path|operation)/i.test(error.message))) return { kind: 'refused', why: 'unsupported' };
  if (error.kind === 'not-found') return { kind: 'empty' };
  if (error.kind === 'forbidden') return { kind: 'refused', why: 'forbidden' };
  return undefined;
}

/**
 * The pages of one folder, in order, until the folder ends (a page shorter than the limit), the listing has
 * passed `through` (the greatest leaf the caller asks about: later names cannot matter), or LISTING_MAX_PAGES
 * pages were taken. A refusal (of any page) is the answer for the whole listing.
 */
export async function collectPages(fetchPage: (after: string | undefined) => Promise<PageAnswer>, options: { through?: string; limit?: number; maxPages?: number } = {}): Promise<DetailedListing | { refused: ListingRefusal }> {
  const limit = options.limit ?? LISTING_PAGE_LIMIT;
  const maxPages = options.maxPages ?? LISTING_MAX_PAGES;
  const entries = new Map<string, KvMetadata>();
  let after: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const answer = await fetchPage(after);
    if (answer.kind === 'refused') return { refused: answer.why };
    for (const [name, metadata] of answer.page.entries) entries.set(name, metadata);
    const last = answer.page.names.at(-1);
    if (last === undefined || answer.page.names.length < limit) return { entries };
    after = last;
    if (options.through !== undefined && compareNames(last, options.through) >= 0) return { entries, stoppedAfter: last };
  }
  return { entries, stoppedAfter: after };
}
