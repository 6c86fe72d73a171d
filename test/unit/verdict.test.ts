// The pure pieces every verdict (src/sync/verdict.ts) relies on: the scope of a
// source, and the one delete-ownership check.
import { ownershipMetadata } from '../../src/sync/ownership.js';
import { decideDelete } from '../../src/sync/delete-policy.js';
import { scopedRecord } from '../../src/sync/source-scope.js';
import { permits } from '../../src/vault/scope.js';
import { scopeOf } from '../../src/vault/tenancy.js';
import type { PathView } from '../../src/sync/write-policy.js';
import { syncWorld } from './fakes/sync-world.js';

const source = { kind: 'Deployment' as const, namespace: 'team-a', name: 'web', uid: 'u' };
const settings = { kvMounts: ['secret', 'kv'], tenantPathTemplate: 'secret/{namespace}/' };
const grants = [{ name: 'shared', namespaces: ['team-*'], allowedPathPrefixes: ['secret/data/shared/'] }];

describe('a record checked against the scope: what it names outside is set apart, never used', () => {
  const scope = scopeOf('team-a', settings, grants);
  const at = (key: string, mount = 'secret') => ({ mount, key });
  test('entries, intents and failures outside the grant leave the record; each such path listed once, sorted', () => {
    const record = {
      inputFingerprint: 'f',
      lastSyncTime: '',
      entries: [{ path: at('team-a/web'), hash: 'h', version: 1 }, { path: at('team-b/x'), hash: 'h', version: 1 }, { path: at('shared/y'), hash: 'h' }],
      intents: [{ path: at('team-b/x'), version: 2, hash: 'h' }, { path: at('team-a/new'), version: 1, hash: 'h' }],
      failures: [{ path: at('team-a/x', 'kv'), hash: 'h', kind: 'forbidden', message: 'm' }],
    };
    const { record: scoped, outside } = scopedRecord(record, scope);
    expect(scoped!.entries.map((e) => e.path.key)).toEqual(['team-a/web', 'shared/y']);
    expect(scoped!.intents!.map((i) => i.path.key)).toEqual(['team-a/new']);
    expect(scoped!.failures).toEqual([]);
    expect(outside).toEqual([at('team-a/x', 'kv'), at('team-b/x')]);
    expect(outside.every((path) => !permits(scope, path))).toBe(true);
  });
});

describe('decideDelete: a path is deleted only when it is provably ours', () => {
  const present = (currentVersion: number, customMetadata: Record<string, string>, currentVersionDeleted = false): PathView => ({ state: 'present', metadata: { currentVersion, customMetadata, currentVersionDeleted } });
  test.each([
    { why: 'ours by its marks', view: present(3, ownershipMetadata(source, 'c')), proofs: [], recorded: true, expected: { action: 'delete', proof: 'marks' } },
    { why: 'unmarked at the version the record names (its marks had not followed)', view: present(2, {}), proofs: [2], recorded: true, expected: { action: 'delete', proof: 'intent' } },
    { why: 'unmarked at another version: someone else wrote since', view: present(3, {}), proofs: [2], recorded: true, expected: { action: 'refuse' } },
    { why: 'unmarked at the version, but that version deleted since', view: present(2, {}, true), proofs: [2], recorded: true, expected: { action: 'refuse' } },
    { why: 'marked by another manager, whatever the record says', view: present(2, { 'managed-by': 'eso' }), proofs: [2], recorded: true, expected: { action: 'refuse' } },
    { why: 'only an intent named it and it never landed: dropped quietly', view: present(5, {}), proofs: [1], recorded: false, expected: { action: 'drop' } },
    { why: 'gone already', view: { state: 'absent' } as PathView, proofs: [], recorded: true, expected: { action: 'gone' } },
    { why: 'KV v1 in a read-only plan: not checked', view: { state: 'unchecked' } as PathView, proofs: [], recorded: true, expected: { action: 'unchecked' } },
  ])('$why', ({ view, proofs, recorded, expected }) => {
    expect(decideDelete(view, source, 'c', new Set(proofs), recorded)).toMatchObject(expected);
  });
});

test('DRY_RUN and plan on a KV v1 mount read nothing in Vault (the marks live in the data) and say so', async () => {
  const world = syncWorld({}, 1);
  world.cluster.putSecret('team-a', 'db', { password: 'one' });
  world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web' }, ['db']);
  const plan = await world.planner.planSource('Deployment/team-a/web');
  expect(plan!.paths).toEqual([{ path: 'secret/team-a/web/db', action: 'update', reason: 'not synced yet (KV v1: ownership not checked, plan reads no data)' }]);
  expect(world.vault.requests).toEqual([]);
});
