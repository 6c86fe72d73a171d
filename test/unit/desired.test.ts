import { deriveTargets, materialize, parseSecretsAnnotation, type SyncSource, type Target } from '../../src/sync/desired.js';

const deployment = (annotations: Record<string, string>, podSpec = { containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'db' } }, { secretRef: { name: 'api', optional: true } }] }] }): SyncSource => ({
  kind: 'Deployment',
  namespace: 'team-a',
  name: 'web',
  uid: 'uid-1',
  annotations,
  podSpec,
});
const options = { allowedMounts: ['secret'] };
const bytes = (text: string) => new Uint8Array(Buffer.from(text));
const kv = <V>(record: Record<string, V>): ReadonlyMap<string, V> => new Map(Object.entries(record));

describe('deriveTargets: where a source writes and from which Secrets', () => {
  test('auto-discovery writes each referenced Secret to <path>/<secretName>', () => {
    const result = deriveTargets(deployment({ 'vault-sync.io/path': 'secret/team-a/web' }), options);
    expect(result).toEqual({
      ok: true,
      targets: [
        { path: { mount: 'secret', key: 'team-a/web/api' }, selections: [{ secretName: 'api', prefix: '', optional: true }] },
        { path: { mount: 'secret', key: 'team-a/web/db' }, selections: [{ secretName: 'db', prefix: '', optional: false }] },
      ],
    });
  });

  test('an explicit list merges the Secrets into one write at the path itself', () => {
    const result = deriveTargets(
      deployment({ 'vault-sync.io/path': 'secret/data/team-a/web', 'vault-sync.io/secrets': '[{"name":"db","keys":["user"],"prefix":"db_"},{"name":"api"}]' }),
      options,
    );
    expect(result).toEqual({
      ok: true,
      targets: [
        {
          path: { mount: 'secret', key: 'team-a/web' },
          selections: [
            { secretName: 'db', keys: ['user'], prefix: 'db_', optional: false },
            { secretName: 'api', keys: undefined, prefix: '', optional: false },
          ],
        },
      ],
    });
  });

  test('an annotated Secret writes its own keys at the path itself', () => {
    const source: SyncSource = { kind: 'Secret', namespace: 'n', name: 's', uid: 'u', annotations: { 'vault-sync.io/path': 'secret/n/s' } };
    expect(deriveTargets(source, options)).toEqual({ ok: true, targets: [{ path: { mount: 'secret', key: 'n/s' }, selections: [{ secretName: 's', prefix: '', optional: false }] }] });
  });

  test('a bad path is refused with the annotation named', () => {
    const result = deriveTargets(deployment({ 'vault-sync.io/path': 'sys/x' }), options);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatchObject({ code: 'InvalidPath', message: expect.stringContaining('vault-sync.io/path') });
  });

  test('invalid JSON in the secrets annotation is refused with the annotation named', () => {
    const result = deriveTargets(deployment({ 'vault-sync.io/path': 'secret/x', 'vault-sync.io/secrets': '[{name:' }), options);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatchObject({ code: 'InvalidSecretsAnnotation', message: expect.stringContaining('vault-sync.io/secrets') });
  });
});

describe('parseSecretsAnnotation: names the first thing wrong', () => {
  test.each([
    { reason: 'not JSON', text: 'db,api', says: 'not valid JSON' },
    { reason: 'an object instead of a list', text: '{"name":"db"}', says: 'JSON list' },
    { reason: 'an empty list', text: '[]', says: 'no Secrets' },
    { reason: 'an item without a name', text: '[{"keys":["a"]}]', says: '"name"' },
    { reason: 'keys that are not strings', text: '[{"name":"db","keys":[1]}]', says: '"keys"' },
    { reason: 'an empty keys list', text: '[{"name":"db","keys":[]}]', says: '"keys"' },
    { reason: 'a prefix that is not a string', text: '[{"name":"db","prefix":3}]', says: '"prefix"' },
  ])('refuses $reason', ({ text, says }) => {
    const result = parseSecretsAnnotation(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(says);
  });
});

describe('materialize: the data that lands in Vault', () => {
  const target = (selections: Target['selections'], key = 'x'): Target => ({ path: { mount: 'secret', key }, selections });
  const limits = { maxEntryBytes: 1024 };

  test('UTF-8 values are written as text; other bytes as base64 and listed as binary', () => {
    const secrets = new Map([['s', kv({ text: bytes('héllo'), blob: new Uint8Array([0xff, 0x00, 0xfe]) })]]);
    const result = materialize([target([{ secretName: 's', prefix: '', optional: false }])], secrets, limits);
    expect(result).toEqual({ ok: true, entries: [{ path: { mount: 'secret', key: 'x' }, data: new Map([['blob', '/wD+'], ['text', 'héllo']]), binaryKeys: ['blob'], secretNames: ['s'], sizeBytes: 4 + 4 + 4 + 6 }] });
  });

  test('keys and prefix select and rename', () => {
    const secrets = new Map([['db', kv({ user: bytes('u'), pass: bytes('p'), other: bytes('o') })]]);
    const result = materialize([target([{ secretName: 'db', keys: ['user', 'pass'], prefix: 'db_', optional: false }])], secrets, limits);
    expect(result.ok && result.entries[0].data).toEqual(new Map([['db_user', 'u'], ['db_pass', 'p']]));
  });

  test('a missing optional Secret is skipped, and a target with nothing left is not written', () => {
    const result = materialize([target([{ secretName: 'gone', prefix: '', optional: true }])], new Map([['gone', undefined]]), limits);
    expect(result).toEqual({ ok: true, entries: [] });
  });

  test.each([
    {
      reason: 'a required Secret that does not exist',
      selections: [{ secretName: 'missing', prefix: '', optional: false }],
      secrets: new Map([['missing', undefined]]),
      code: 'SecretNotFound',
      says: 'Secret "missing" does not exist',
    },
    {
      reason: 'a listed key that does not exist',
      selections: [{ secretName: 'db', keys: ['nope'], prefix: '', optional: false }],
      secrets: new Map([['db', kv({ user: bytes('u') })]]),
      code: 'KeyNotFound',
      says: 'no key "nope"',
    },
    {
      reason: 'two Secrets writing the same key to one path',
      selections: [
        { secretName: 'a', prefix: '', optional: false },
        { secretName: 'b', prefix: '', optional: false },
      ],
      secrets: new Map([
        ['a', kv({ token: bytes('1') })],
        ['b', kv({ token: bytes('2') })],
      ]),
      code: 'KeyConflict',
      says: 'both Secret "a" and Secret "b"',
    },
    {
      reason: 'data over the size limit',
      selections: [{ secretName: 'big', prefix: '', optional: false }],
      secrets: new Map([['big', kv({ blob: bytes('x'.repeat(2000)) })]]),
      code: 'TooLarge',
      says: 'over the limit of 1024 bytes',
    },
  ])('refuses $reason, naming it without values', ({ selections, secrets, code, says }) => {
    const result = materialize([target(selections)], secrets, limits);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems[0]).toMatchObject({ code, message: expect.stringContaining(says) });
      for (const problem of result.problems) expect(problem.message).not.toMatch(/xxxx|"1"|"2"/);
    }
  });
});
