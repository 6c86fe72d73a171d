import { parseVaultPath } from '../../src/vault/path.js';

describe('parseVaultPath: the vault-sync.io/path annotation', () => {
  const mounts = ['secret'];
  test.each([
    { reason: 'the short form', raw: 'secret/my-app', key: 'my-app' },
    { reason: 'the KV v2 API form names the same place', raw: 'secret/data/my-app', key: 'my-app' },
    { reason: 'nested keys are kept', raw: 'secret/team/app', key: 'team/app' },
    { reason: 'a trailing slash is tolerated', raw: 'secret/team/app/', key: 'team/app' },
  ])('accepts $reason', ({ raw, key }) => {
    expect(parseVaultPath(raw, mounts)).toEqual({ ok: true, path: { mount: 'secret', key } });
  });

  test.each([
    { reason: 'an empty path', raw: '  ', says: 'empty' },
    { reason: 'a missing annotation', raw: undefined, says: 'empty' },
    { reason: 'traversal with ..', raw: 'secret/team/../other', says: 'traversal' },
    { reason: 'a . segment', raw: 'secret/./x', says: 'traversal' },
    { reason: 'an empty segment', raw: 'secret//x', says: 'empty segment' },
    { reason: 'a leading slash', raw: '/secret/x', says: 'must not start' },
    { reason: 'the sys/ backend', raw: 'sys/policies/acl/x', says: 'allowed KV mount' },
    { reason: 'the auth/ backend', raw: 'auth/token/create', says: 'allowed KV mount' },
    { reason: 'another mount', raw: 'kv-other/x', says: 'allowed KV mount' },
    { reason: 'the mount itself', raw: 'secret', says: 'mount itself' },
    { reason: 'the data prefix with nothing after it', raw: 'secret/data', says: 'mount itself' },
    { reason: 'query characters', raw: 'secret/x?list=true', says: 'not allowed' },
  ])('refuses $reason', ({ raw, says }) => {
    const result = parseVaultPath(raw, mounts);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(says);
  });
});
