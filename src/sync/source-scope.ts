// A source's record checked against its scope (the grant of its namespace, src/vault/tenancy.ts scopeOf): the
// status is writable by anyone with write on vaultsyncs/status, so a recorded path proves nothing. Pure.
import { formatPath, type KvPath } from '../vault/path.js';
import { sortedByPath } from '../vault/path-order.js';
import { permits, type RequestScope } from '../vault/scope.js';
import type { SyncState } from './state-store.js';

/** The record with only what the scope permits; the rest (entries, intents, failures) listed once, sorted, never used. */
export function scopedRecord(record: SyncState | undefined, scope: RequestScope): { record: SyncState | undefined; outside: KvPath[] } {
  if (!record) return { record: undefined, outside: [] };
  const outside = new Map<string, KvPath>();
  const keep = <T extends { path: KvPath }>(items: readonly T[] | undefined): T[] =>
    (items ?? []).filter((item) => (permits(scope, item.path) ? true : (outside.set(formatPath(item.path), item.path), false)));
  const scoped = { ...record, entries: keep(record.entries), intents: keep(record.intents), failures: keep(record.failures) };
  return { record: scoped, outside: sortedByPath([...outside.values()], formatPath) };
}
