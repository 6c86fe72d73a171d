// Pure decisions of the write path: may this path be written, how (which check-and-set version), and what
// to do after Vault answered. No I/O here: the reconciler gathers the inputs and does the requests, and the
// `plan` command calls the same functions with metadata it read (docs/adr/0003-claim-with-the-data-write.md).
import type { KvMetadata } from '../vault/port.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { SyncSource } from './desired.js';
import { describeOwner, ownershipMetadata, ownershipOf } from './ownership.js';
import { MarkKeys, PREVIOUS_PREFIX } from '../vault/mark-keys.js';
import { adoptionPrefixes, isInside, type AdoptionGrant } from '../vault/tenancy.js';

export type { AdoptionGrant } from '../vault/tenancy.js';

/** A write about to be made, recorded in VaultSync status BEFORE it is sent: what version it will create. */
export interface WriteIntent {
  path: KvPath;
  /** The KV version the write creates when it lands (the check-and-set version + 1). */
  version: number;
  /** Content hash of what is written. */
  hash: string;
  binaryKeys?: string[];
  /** An adoption: the custom_metadata found there, written back under `previous-` with our marks. */
  previousMetadata?: Record<string, string>;
}

/** What is known about a path in Vault before writing it. */
export type VaultView =
  /** Nothing looked up (the normal case for a path with a record or an intent). */
  | { state: 'unknown' }
  /** A LIST of its folder, or a metadata read, found nothing there (no metadata, no version). */
  | { state: 'absent' }
  | { state: 'present'; metadata: KvMetadata };

/** What Vault says about a path as a gatherer read it; `unchecked`: a read-only plan on KV v1 (the marks live in the data, never read). */
export type PathView = VaultView | { state: 'unchecked' };

export interface WriteInput {
  source: Pick<SyncSource, 'kind' | 'namespace' | 'name'>;
  clusterName: string;
  /** The version this source last recorded for the path (its VaultSync status), if any. */
  recordedVersion?: number;
  /** A write recorded as intended but not as landed (a crash or failure in between). */
  intent?: Pick<WriteIntent, 'version' | 'hash'>;
  vault: VaultView;
  /** The source asks for adoption (`vault-sync.io/adopt: "true"`) or a VaultSyncPolicy allows it here. */
  adoptAllowed: boolean;
}

export type WriteDecision =
  /** Not enough known: look the path up (a LIST of its folder or a metadata read) and decide again. */
  | { action: 'lookup'; reason: string }
  /** A new path: the data write with cas=0 is the claim; the ownership marks follow. */
  | { action: 'create'; cas: 0; reason: string }
  /** Ours: a check-and-set data write on the version we know. */
  | { action: 'update'; cas: number; reason: string }
  /** An unmarked path taken over on purpose: write, then our marks with the old ones kept under `previous-`. */
  | { action: 'adopt'; cas: number; previousMetadata: Record<string, string>; reason: string }
  /** Our intended write had landed: record it (and mark it if the marks had not followed yet); no write. */
  | { action: 'recover'; version: number; markMissing: boolean; reason: string }
  | { action: 'refuse'; reason: string };

/**
 * Pure: what to do with one path that the plan wants written. Chained in order, each step with its reason:
 * record → intent → lookup → what Vault says.
 */
export function decideWrite(input: WriteInput): WriteDecision {
  const { vault } = input;
  if (vault.state === 'unknown') {
    // A write recorded as intended may have landed with its answer lost: Vault is asked first, so a landed
    // write is recorded from its intent (no second version) and a version that moved is never overwritten.
    if (input.intent) return { action: 'lookup', reason: 'an intended write may have landed: Vault is asked before anything is sent' };
    if (input.recordedVersion !== undefined) return { action: 'update', cas: input.recordedVersion, reason: `ours at version ${input.recordedVersion} (recorded)` };
    return { action: 'lookup', reason: 'not recorded: who owns it must be known before any write reaches it' };
  }
  if (vault.state === 'absent') return { action: 'create', cas: 0, reason: 'a new path' };

  const { metadata } = vault;
  const owner = ownershipOf(metadata.customMetadata, input.source, input.clusterName);
  const where = `at version ${metadata.currentVersion}`;
  const intent = input.intent;
  if (intent && metadata.currentVersion === intent.version && !metadata.currentVersionDeleted && (owner === 'ours' || owner === 'unowned')) {
    return { action: 'recover', version: intent.version, markMissing: owner === 'unowned', reason: `our intended write landed (${where}, as recorded before sending it)` };
  }
  if (owner === 'ours') {
    // Ours with no version (an empty claim left by an older release) is claimed again by the data write.
    return metadata.currentVersion === 0 ? { action: 'create', cas: 0, reason: 'our own empty claim' } : { action: 'update', cas: metadata.currentVersion, reason: `ours ${where} (not recorded: the record was lost or the version moved)` };
  }
  if (owner === 'unowned') {
    if (input.adoptAllowed) return { action: 'adopt', cas: metadata.currentVersion, previousMetadata: { ...metadata.customMetadata }, reason: `not marked by any manager; adoption allowed` };
    return { action: 'refuse', reason: `it is ${describeOwner(metadata.customMetadata)} (adopt it with vault-sync.io/adopt: "true" or a VaultSyncPolicy's adoptPathPrefixes)` };
  }
  return { action: 'refuse', reason: `it is ${describeOwner(metadata.customMetadata)}` };
}

/** How new paths are checked before a data write with cas=0 may be sent. */
export type LookupPlan = { kind: 'read-metadata'; path: KvPath } | { kind: 'list-folder'; folder: KvPath; paths: KvPath[] };

/**
 * Pure: group the paths to look up by folder. A folder with one such path gets a metadata read (the same one
 * request, and it tells the owner directly); a folder with several gets ONE LIST, and only the names found
 * there need a metadata read. A path right below the mount has no folder to list: metadata read.
 */
export function planLookups(paths: readonly KvPath[]): LookupPlan[] {
  const byFolder = new Map<string, { folder: KvPath; paths: KvPath[] }>();
  const lookups: LookupPlan[] = [];
  for (const path of paths) {
    const slash = path.key.lastIndexOf('/');
    if (slash < 0) {
      lookups.push({ kind: 'read-metadata', path });
      continue;
    }
    const folder = { mount: path.mount, key: path.key.slice(0, slash) };
    const id = formatPath(folder);
    const group = byFolder.get(id) ?? { folder, paths: [] };
    group.paths.push(path);
    byFolder.set(id, group);
  }
  for (const { folder, paths: children } of byFolder.values()) {
    if (children.length === 1) lookups.push({ kind: 'read-metadata', path: children[0] });
    else lookups.push({ kind: 'list-folder', folder, paths: children });
  }
  return lookups;
}

/** Pure: the child's name as a LIST of its folder shows it. */
export function leafName(path: KvPath): string {
  return path.key.slice(path.key.lastIndexOf('/') + 1);
}

/** The custom_metadata written after the data: ownership marks, base64 keys, the content hash on request. */
export function ownershipMarks(
  source: Pick<SyncSource, 'kind' | 'namespace' | 'name' | 'uid'>,
  clusterName: string,
  options: { hash?: string; binaryKeys: readonly string[]; previousMetadata?: Record<string, string> },
): Record<string, string> {
  const previous: Record<string, string> = {};
  // Kept on adoption, so whoever wrote the path before can still be told from the marks.
  for (const [key, value] of Object.entries(options.previousMetadata ?? {})) previous[`${PREVIOUS_PREFIX}${key}`] = value;
  return {
    ...previous,
    ...ownershipMetadata(source, clusterName),
    ...(options.hash !== undefined ? { [MarkKeys.contentHash]: options.hash } : {}),
    ...(options.binaryKeys.length ? { [MarkKeys.base64Keys]: options.binaryKeys.join(',') } : {}),
  };
}

/**
 * Pure: may an unmarked path be adopted: the source asks for it, or a VaultSyncPolicy's adoptPathPrefixes
 * covers it. The prefixes are read by the tenancy parser and compared on whole segments (`secret/legacy`
 * covers `secret/legacy/x`, not `secret/legacy-2`; `secret/data/legacy/` covers `secret/legacy/x`).
 */
export function adoptionAllowed(path: KvPath, namespace: string, sourceAsks: boolean, grants: readonly AdoptionGrant[]): boolean {
  if (sourceAsks) return true;
  return adoptionPrefixes(namespace, grants).prefixes.some((prefix) => isInside(path, prefix));
}

// ---------------------------------------------------------------------------------------------------------
// Vault answers that a retry will not change.

/** The Vault error kinds that are answers about the request itself (not about Vault's health). */
const TERMINAL_KINDS = new Set(['bad-request', 'forbidden', 'not-found', 'too-large', 'unknown']);
/** A policy fix can cure these without the source changing: retried slowly. */
export const SLOW_RETRY_MS = 5 * 60_000;
const SLOW_RETRY_KINDS = new Set(['forbidden', 'unknown']);

export interface FailureInput {
  kind: string;
  retryable: boolean;
  /** What Vault (or the socket) said: `HTTP 400: <Vault's first error string>`; never our request. */
  detail: string;
}

export type FailureDecision =
  | { terminal: false; message: string }
  /** Recorded against the content hash: not retried until the content changes (or `retryAfterMs` passes). */
  | { terminal: true; message: string; retryAfterMs?: number };

/** Pure: is this Vault failure terminal, and how is it shown (bounded, with anything quoted redacted). */
export function classifyFailure(error: FailureInput): FailureDecision {
  const message = sanitizeVaultMessage(error.detail);
  if (error.retryable || !TERMINAL_KINDS.has(error.kind)) return { terminal: false, message };
  return { terminal: true, message, ...(SLOW_RETRY_KINDS.has(error.kind) ? { retryAfterMs: SLOW_RETRY_MS } : {}) };
}

const MAX_MESSAGE = 240;

/**
 * Vault's error strings describe the request, but some echo a piece of it ("invalid key \"…\""): anything
 * quoted and any long unbroken token (a value, a base64 blob) is replaced by "…", control characters dropped,
 * and the whole bounded.
 */
export function sanitizeVaultMessage(text: string): string {
  const cleaned = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/g, ' ')
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '"…"')
    .replace(/[A-Za-z0-9+/=_-]{33,}/g, '…')
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned.length <= MAX_MESSAGE ? cleaned : `${cleaned.slice(0, MAX_MESSAGE - 1)}…`;
}
