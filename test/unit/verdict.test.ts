// The pure pieces every verdict (src/sync/verdict.ts) relies on: the scope of a
// source, and the one delete-ownership check.
import { ownershipMetadata } from '../../src/sync/ownership.js';
import { decideDelete } from '../../src/sync/delete-policy.js';
import { inScope, scopeOf } from '../../src/sync/source-scope.js';
import type { PathView } from '../../src/sync/write-policy.js';
import { syncWorld } from './fakes/sync-world.js';

const source = { kind: 'Deployment' as const, namespace: 'team-a', name: 'web', uid: 'u' };
const settings = { kvMounts: ['secret', 'kv'], tenantPathTemplate: 'secret/{namespace}/' };
const grants = [{ name: 'shared', namespaces: ['team-*'], allowedPathPrefixes: ['secret/data/shared/'] }];

describe('the scope of a source: its namespace prefix and grants, on the allowed mounts, in the path grammar', () => {
  const scope = scopeOf('team-a', settings, grants);
  test.each([
    { path: { mount: 'secret', key: 'team-a/web/db' }, inside: true, why: 'under the namespace prefix' },
    { path: { mount: 'secret', key: 'shared/x' }, inside: true, why: 'under a granted prefix written in the KV v2 API form' },
    { path: { mount: 'secret', key: 'team-ab/x' }, inside: false, why: 'segments, not characters' },
    { path: { mount: 'secret', key: 'team-b/x' }, inside: false, why: "another tenant's prefix" },
    { path: { mount: 'sys', key: 'team-a/x' }, inside: false, why: 'not an allowed KV mount' },
    { path: { mount: 'kv', key: 'team-a/x' }, inside: false, why: 'an allowed mount, but no prefix there' },
    { path: { mount: 'secret', key: 'team-a/../team-b/x' }, inside: false, why: 'a dot segment (a tampered record) is not canonical' },
    { path: { mount: 'secret', key: 'team-a//x' }, inside: false, why: 'an empty segment is not canonical' },
    { path: { mount: 'secret', key: '' }, inside: false, why: 'the mount itself' },
  ])('$why → $inside', ({ path, inside }) => {
    expect(inScope(path, scope)).toBe(inside);
  });
  test('without a tenant path template every canonical path on the mounts is in scope', () => {
    const open = scopeOf('team-a', { kvMounts: ['secret'] }, []);
    expect([inScope({ mount: 'secret', key: 'team-b/x' }, open), inScope({ mount: 'sys', key: 'x' }, open)]).toEqual([true, false]);
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
