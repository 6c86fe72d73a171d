// The pure pieces every verdict (src/sync/verdict.ts) relies on: the scope of a
// source, and the one delete-ownership check.
import { ownershipMetadata } from '../../src/sync/ownership.js';
import { decideDelete } from '../../src/sync/delete-policy.js';
import { scopedRecord } from '../../src/sync/source-scope.js';
import { permits } from '../../src/vault/scope.js';
import { scopeOf } from '../../src/vault/tenancy.js';
import type { PathView } from '../../src/sync/write-policy.js';
import { syncWorld } from './fakes/sync-world.js';
import { createOnce } from '../../src/sync/create-once.js';
import { hasDrifted } from '../../src/sync/change-detection.js';
import { composeCustomMetadata, updatePolicyOf, userMetadataDrifted, userMetadataHash, userMetadataOf } from '../../src/sync/user-metadata.js';

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

describe('create once (update-policy IfNotExists): a path is written only without a live version', () => {
  const present = (currentVersion: number, currentVersionDeleted = false) => ({ state: 'present' as const, metadata: { currentVersion, customMetadata: ownershipMetadata(source, 'c'), currentVersionDeleted } });
  test.each([
    { why: 'a new path is created', decision: { action: 'create', cas: 0, reason: 'r' }, vault: { state: 'absent' }, expected: { action: 'write' } },
    { why: 'our live version is kept, at the version Vault has', decision: { action: 'update', cas: 3, reason: 'r' }, vault: present(5), expected: { action: 'keep', version: 5 } },
    { why: 'our version deleted out of band: no live version, written', decision: { action: 'update', cas: 3, reason: 'r' }, vault: present(3, true), expected: { action: 'write' } },
    { why: 'recorded, nothing looked up: kept at the recorded version', decision: { action: 'update', cas: 3, reason: 'r' }, vault: { state: 'unknown' }, expected: { action: 'keep', version: 3 } },
    { why: 'an unmarked live path is refused, never adopted over', decision: { action: 'adopt', cas: 2, previousMetadata: {}, reason: 'r' }, vault: present(2), expected: { action: 'write', decision: { action: 'refuse' } } },
    { why: 'our own landed write is recorded', decision: { action: 'recover', version: 1, markMissing: false, reason: 'r' }, vault: present(1), expected: { action: 'write', decision: { action: 'recover' } } },
  ] as const)('$why', ({ decision, vault, expected }) => {
    expect(createOnce(decision as any, vault as any)).toMatchObject(expected);
  });

  test('a new version made in Vault is not drift under create once; a deleted or missing one is', () => {
    const entry = { path: { mount: 'secret', key: 'a' }, hash: 'h', version: 1 };
    expect(hasDrifted(entry, { currentVersion: 2, customMetadata: {} }, true, true)).toBe(false);
    expect(hasDrifted(entry, { currentVersion: 2, customMetadata: {} }, false, false)).toBe(true);
    expect(hasDrifted(entry, { currentVersion: 1, customMetadata: {}, currentVersionDeleted: true }, false, true)).toBe(true);
    expect(hasDrifted(entry, undefined, false, true)).toBe(true);
  });

  test('the policy: Replace by default, IfNotExists in any case, a bad value read as IfNotExists', () => {
    expect(updatePolicyOf({})).toBe('Replace');
    expect(updatePolicyOf({ 'vault-sync.io/update-policy': ' replace ' })).toBe('Replace');
    expect(updatePolicyOf({ 'vault-sync.io/update-policy': 'IFNOTEXISTS' })).toBe('IfNotExists');
    expect(updatePolicyOf({ 'vault-sync.io/update-policy': 'Overwrite' })).toBe('IfNotExists');
  });
});

describe('the user custom_metadata as the decisions read it', () => {
  const marks = ownershipMetadata(source, 'c');
  test('a bad annotation is ignored as a whole; an absent one is none; the hash ignores key order and is absent for none', () => {
    expect([...userMetadataOf({ 'vault-sync.io/custom-metadata': '{"a":"1","managed-by":"x"}' })]).toEqual([]);
    expect(userMetadataHash(userMetadataOf({}))).toBeUndefined();
    expect(userMetadataHash(new Map([['a', '1'], ['b', '2']]))).toBe(userMetadataHash(new Map([['b', '2'], ['a', '1']])));
    expect(userMetadataHash(new Map([['a', '1']]))).not.toBe(userMetadataHash(new Map([['a', '2']])));
  });

  test('composed with the marks; when the marks alone fill Vault\'s 64 keys (an adoption), the marks go alone', () => {
    expect(composeCustomMetadata(marks, new Map([['team', 'a']]))).toEqual({ customMetadata: { team: 'a', ...marks }, userDropped: false });
    // Keys are data: JavaScript's own property names are written as keys like any other.
    const tricky = composeCustomMetadata(marks, userMetadataOf({ 'vault-sync.io/custom-metadata': '{"__proto__":"p","constructor":"c"}' })).customMetadata;
    expect(Object.keys(tricky).slice(0, 2)).toEqual(['__proto__', 'constructor']);
    expect(JSON.parse(JSON.stringify(tricky))).toMatchObject({ constructor: 'c' });
    expect(Object.hasOwn(JSON.parse(JSON.stringify(tricky)), '__proto__')).toBe(true);
    expect(userMetadataDrifted(new Map([['__proto__', 'p']]), JSON.parse(JSON.stringify(tricky)))).toBe(false);
    const crowded = { ...marks, ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`previous-k${i}`, 'v'])) };
    expect(composeCustomMetadata(crowded, new Map([['team', 'a']]))).toEqual({ customMetadata: crowded, userDropped: true });
  });

  test('drift: a user key missing or changed in Vault; keys added there are not ours to judge', () => {
    const user = new Map([['team', 'a']]);
    expect(userMetadataDrifted(user, { ...marks, team: 'a', extra: 'x' })).toBe(false);
    expect(userMetadataDrifted(user, marks)).toBe(true);
    expect(userMetadataDrifted(user, { ...marks, team: 'b' })).toBe(true);
    expect(userMetadataDrifted(new Map(), marks)).toBe(false);
  });
});
