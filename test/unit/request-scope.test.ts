// The scope every Vault request carries: built by one function from the tenant template, the VaultSyncPolicy
// grants and the allowed KV mounts (scopeOf), checked by the port (permits). What the sync-time tenancy
// check accepts, the port lets through, and nothing else; folders are checked as folders; the adoption
// grant is read by the same parser. Property tests are seeded and reproducible.
import fc from 'fast-check';
import { adoptionPrefixes, checkTenancy, formatPrefix, scopeOf, type TenancyGrant } from '../../src/vault/tenancy.js';
import { adoptionAllowed } from '../../src/sync/write-policy.js';
import { pathsOfSource, type SyncSource } from '../../src/sync/desired.js';
import { parseVaultPath, type KvPath } from '../../src/vault/path.js';
import { describeScope, permits, wholeMounts } from '../../src/vault/scope.js';
import { nearlyValidPath } from './arbitraries.js';

const SEED = 15_2026_1;
const kvMounts = ['secret', 'kv'];
const settings = { tenantPathTemplate: 'secret/{namespace}/', kvMounts };
const parse = (text: string): KvPath => {
  const result = parseVaultPath(text, kvMounts);
  if (!result.ok) throw new Error(result.reason);
  return result.path;
};
const grants: TenancyGrant[] = [
  { name: 'shared', namespaces: ['team-*'], allowedPathPrefixes: ['secret/shared/', 'sys/policy/', 'cubbyhole/x/'] },
  { name: 'apps', namespaces: ['team-a'], allowedPathPrefixes: ['secret/data/apps-team-a/data/', 'kv/{namespace}/'] },
];

describe('scopeOf: one builder, from the tenant template, the grants and the allowed mounts', () => {
  test('the template prefix and every grant naming the namespace, on the allowed mounts only (sys/ and cubbyhole/ grant nothing)', () => {
    const scope = scopeOf('team-a', settings, grants);
    expect(scope.namespace).toBe('team-a');
    expect(scope.mounts).toEqual(['secret', 'kv']);
    expect(scope.prefixes.map(formatPrefix)).toEqual(['secret/team-a/', 'secret/shared/', 'secret/apps-team-a/data/', 'kv/team-a/']);
    expect(describeScope(scope)).toBe('namespace "team-a" (secret/team-a/, secret/shared/, secret/apps-team-a/data/, kv/team-a/)');
  });

  test('a namespace no grant names gets its template prefix alone', () => {
    expect(scopeOf('other', settings, grants).prefixes.map(formatPrefix)).toEqual(['secret/other/']);
  });

  test('without a tenant template the scope is every allowed mount, whole', () => {
    expect(scopeOf('team-a', { kvMounts }, grants)).toEqual(wholeMounts(kvMounts, 'team-a'));
  });
});

describe('permits: the port\'s check, whole segments on the canonical path', () => {
  const scope = scopeOf('team-a', settings, grants);
  test.each([
    { reason: 'a path below its own prefix', path: { mount: 'secret', key: 'team-a/web/db' }, ok: true },
    { reason: 'a path below a granted prefix', path: { mount: 'secret', key: 'shared/x' }, ok: true },
    { reason: 'another tenant', path: { mount: 'secret', key: 'team-b/x' }, ok: false },
    { reason: 'a neighbour whose name starts the same', path: { mount: 'secret', key: 'team-ab/x' }, ok: false },
    { reason: 'a grant of …/data/ does not reach its parent', path: { mount: 'secret', key: 'apps-team-a/x' }, ok: false },
    { reason: 'a mount that is not a KV mount of the operator', path: { mount: 'sys', key: 'policy/x' }, ok: false },
    { reason: 'an allowed mount, but not granted there', path: { mount: 'kv', key: 'team-b/x' }, ok: false },
    { reason: 'a dot segment that would walk out of the prefix', path: { mount: 'secret', key: 'team-a/../team-b/x' }, ok: false },
    { reason: 'an empty segment', path: { mount: 'secret', key: 'team-a//x' }, ok: false },
    { reason: 'a backslash', path: { mount: 'secret', key: 'team-a/x\\..\\..\\team-b' }, ok: false },
  ])('$reason → $ok', ({ path, ok }) => {
    expect(permits(scope, path)).toBe(ok);
  });

  test.each([
    { reason: 'its own folder', folder: { mount: 'secret', key: 'team-a/web' }, ok: true },
    { reason: 'its own prefix itself', folder: { mount: 'secret', key: 'team-a' }, ok: true },
    { reason: 'another tenant\'s folder', folder: { mount: 'secret', key: 'team-b' }, ok: false },
    { reason: 'the mount itself (secret/): every tenant\'s names', folder: { mount: 'secret', key: '' }, ok: false },
  ])('a folder LIST is checked as a folder: $reason → $ok', ({ folder, ok }) => {
    expect(permits(scope, folder)).toBe(ok);
  });

  test('a whole-mount scope lists the mount itself, and nothing on another mount', () => {
    expect(permits(wholeMounts(['secret'], 'a tool'), { mount: 'secret', key: '' })).toBe(true);
    expect(permits(wholeMounts(['secret'], 'a tool'), { mount: 'kv', key: 'x' })).toBe(false);
  });

  test('property: for every parsed path, namespace and set of grants, the port permits exactly what the tenancy check accepts', () => {
    const namespace = fc.constantFrom('team-a', 'team-b', 'data', 'metadata', 'apps');
    const prefix = fc.oneof(fc.constantFrom('secret/shared/', 'secret/data/{namespace}-x/', 'kv/{namespace}/', 'secret/data/', 'sys/', 'secret/a/data/'), nearlyValidPath);
    const grant = fc.record({ name: fc.constant('g'), namespaces: fc.array(fc.constantFrom('*', 'team-*', 'data', 'apps'), { maxLength: 2 }), allowedPathPrefixes: fc.array(prefix, { maxLength: 3 }) });
    // Paths made of the segments the grants and namespaces use, so that both answers come up often.
    const segment = fc.oneof(fc.constantFrom('team-a', 'team-b', 'data', 'metadata', 'apps', 'shared', 'team-a-x', 'x'), fc.stringMatching(/^[A-Za-z0-9._-]{1,4}$/));
    const likelyPath = fc.tuple(fc.constantFrom('secret', 'kv', 'sys'), fc.array(segment, { minLength: 1, maxLength: 4 })).map(([mount, segments]) => `${mount}/${segments.join('/')}`);
    const seen = { permitted: 0, refused: 0 };
    fc.assert(
      fc.property(namespace, fc.array(grant, { maxLength: 3 }), fc.oneof(likelyPath, nearlyValidPath), fc.boolean(), (ns, someGrants, text, withTemplate) => {
        const parsed = parseVaultPath(text, kvMounts);
        if (!parsed.ok) return; // the port never sees a path the parser refused (kvApiPath checks it again)
        const template = withTemplate ? settings.tenantPathTemplate : undefined;
        const permitted = permits(scopeOf(ns, { tenantPathTemplate: template, kvMounts }, someGrants), parsed.path);
        expect(permitted).toBe(checkTenancy(parsed.path, ns, template, someGrants).ok);
        seen[permitted ? 'permitted' : 'refused']++;
      }),
      { seed: SEED, numRuns: 3000 },
    );
    expect(seen.permitted).toBeGreaterThan(300);
    expect(seen.refused).toBeGreaterThan(300);
  });
});

describe('the adoption grant: the tenancy parser, whole segments, both path forms', () => {
  const adoption = [
    { name: 'legacy', namespaces: ['team-a'], adoptPathPrefixes: ['secret/data/legacy/', 'secret/old/{namespace}', 'secret/data/data/x/', 'secret/bad\\..\\/'] },
  ];
  test.each([
    { reason: 'secret/data/legacy/ covers secret/legacy/x (as in allowedPathPrefixes)', path: 'secret/legacy/x', ok: true },
    { reason: 'the API form of the path too', path: 'secret/data/legacy/x', ok: true },
    { reason: 'whole segments: not secret/legacy-2/x', path: 'secret/legacy-2/x', ok: false },
    { reason: '{namespace} is substituted as a segment', path: 'secret/old/team-a/db', ok: true },
    { reason: 'another namespace\'s substitution', path: 'secret/old/team-b/db', ok: false },
    { reason: 'a key segment named data is not the API form', path: 'secret/data/data/x/y', ok: true },
    { reason: 'and its API-form reading is not granted', path: 'secret/x/y', ok: false },
  ])('$reason → $ok', ({ path, ok }) => {
    expect(adoptionAllowed(parse(path), 'team-a', false, adoption)).toBe(ok);
  });

  test('the same parser as the tenancy prefixes: the canonical prefixes, and the bad one ignored with its policy named', () => {
    const { prefixes, ignored } = adoptionPrefixes('team-a', adoption);
    expect(prefixes.map(formatPrefix)).toEqual(['secret/legacy/', 'secret/old/team-a/', 'secret/data/data/x/']);
    expect(ignored).toEqual([expect.stringContaining('VaultSyncPolicy "legacy": the prefix "secret/bad\\\\..\\\\/"')]);
  });

  test('a source asking for adoption needs no grant; a namespace no grant names gets none', () => {
    expect(adoptionAllowed(parse('secret/anything/x'), 'team-a', true, [])).toBe(true);
    expect(adoptionAllowed(parse('secret/legacy/x'), 'team-b', false, adoption)).toBe(false);
  });
});

describe('pathsOfSource: cleanup touches only what the scope permits', () => {
  const source: SyncSource = { kind: 'Secret', namespace: 'team-a', name: 'web', uid: 'u', annotations: { 'vault-sync.io/path': 'secret/team-b/p' } };
  const scope = scopeOf('team-a', settings, []);

  test('a re-pointed annotation and a tampered record are set apart, never among the paths to delete; each list sorted', () => {
    const recorded = [{ path: parse('secret/team-a/web') }, { path: parse('secret/team-b/x') }, { path: parse('secret/team-a/api') }];
    const { inside, outside } = pathsOfSource(recorded, source, { allowedMounts: kvMounts, maxSecretsPerSource: 1000, maxKeysPerPath: 480, scope });
    expect(inside).toEqual([parse('secret/team-a/api'), parse('secret/team-a/web')]);
    expect(outside).toEqual([parse('secret/team-b/p'), parse('secret/team-b/x')]);
  });
});
