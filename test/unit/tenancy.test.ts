import { allowedPrefixes, checkTenancy } from '../../src/sync/tenancy.js';

const path = (text: string) => ({ mount: text.split('/')[0], key: text.split('/').slice(1).join('/') });
const template = 'secret/{namespace}/';

describe('checkTenancy: a namespace writes only under its own prefix unless a policy grants more', () => {
  const grants = [
    { name: 'shared', namespaces: ['team-*'], allowedPathPrefixes: ['secret/shared/'] },
    { name: 'platform', namespaces: ['platform'], allowedPathPrefixes: ['secret/data/infra/{namespace}'] },
  ];
  test.each([
    { reason: 'its own prefix', ns: 'team-a', p: 'secret/team-a/app', ok: true },
    { reason: 'exactly its own prefix', ns: 'team-a', p: 'secret/team-a', ok: true },
    { reason: 'a neighbour whose name starts the same (whole segments only)', ns: 'team', p: 'secret/team-a/app', ok: false },
    { reason: 'another namespace', ns: 'team-a', p: 'secret/team-b/app', ok: false },
    { reason: 'a prefix granted by a wildcard policy', ns: 'team-z', p: 'secret/shared/x', ok: true },
    { reason: 'a policy for another namespace does not apply', ns: 'other', p: 'secret/shared/x', ok: false },
    { reason: 'a granted prefix given in the data/ form with {namespace}', ns: 'platform', p: 'secret/infra/platform/db', ok: true },
  ])('$reason → $ok', ({ ns, p, ok }) => {
    expect(checkTenancy(path(p), ns, template, grants).ok).toBe(ok);
  });

  test('the refusal names the path, the namespace, what it may write to, and the way out', () => {
    const result = checkTenancy(path('secret/team-b/app'), 'team-a', template, grants);
    expect(result).toEqual({ ok: false, reason: 'the Vault path "secret/team-b/app" is outside what namespace "team-a" may write to (secret/team-a/, secret/shared/); a cluster admin can grant more with a VaultSyncPolicy' });
  });

  test('no template ("none") lifts the restriction', () => {
    expect(checkTenancy(path('secret/anything'), 'x', undefined, []).ok).toBe(true);
    expect(allowedPrefixes('x', undefined, [])).toEqual([]);
  });
});
