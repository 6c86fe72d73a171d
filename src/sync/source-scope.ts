// The scope of a source: where its requests may go. Its namespace's default prefix plus the VaultSyncPolicy
// grants, on the allowed KV mounts, every segment in the path grammar. Pure.
import { formatPath, segmentProblem, type KvPath } from '../vault/path.js';
import { allowedPrefixes, isInside, type PathPrefix, type TenancyGrant } from '../vault/tenancy.js';
import type { SyncState } from './state-store.js';

/** The scope a source's requests stay in: its namespace's prefixes (default template + grants) on the allowed mounts. */
export interface Scope {
  namespace: string;
  mounts: readonly string[];
  /** 'any': no tenant path template, every path on the mounts. */
  prefixes: readonly PathPrefix[] | 'any';
}

export function scopeOf(namespace: string, settings: { kvMounts: readonly string[]; tenantPathTemplate?: string }, grants: readonly TenancyGrant[]): Scope {
  const prefixes = settings.tenantPathTemplate === undefined ? 'any' : allowedPrefixes(namespace, settings.tenantPathTemplate, grants).prefixes;
  return { namespace, mounts: settings.kvMounts, prefixes };
}

/** Pure: is the path canonical (every segment in the grammar), on an allowed mount, and inside the scope? */
export function inScope(path: KvPath, scope: Scope): boolean {
  if (!scope.mounts.includes(path.mount) || path.key === '') return false;
  if ([path.mount, ...path.key.split('/')].some((segment) => segmentProblem(segment) !== undefined)) return false;
  return scope.prefixes === 'any' || scope.prefixes.some((prefix) => isInside(path, prefix));
}

/** The record with every path checked against the scope: what is outside is counted, never used. */
export function scopedRecord(record: SyncState | undefined, scope: Scope): { record: SyncState | undefined; outside: number } {
  if (!record) return { record: undefined, outside: 0 };
  const outside = new Set<string>();
  const keep = <T extends { path: KvPath }>(items: readonly T[] | undefined): T[] =>
    (items ?? []).filter((item) => (inScope(item.path, scope) ? true : (outside.add(formatPath(item.path)), false)));
  const scoped = { ...record, entries: keep(record.entries), intents: keep(record.intents), failures: keep(record.failures) };
  return { record: scoped, outside: outside.size };
}
