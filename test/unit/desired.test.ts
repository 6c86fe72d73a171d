import { deriveTargets, describeProblems, materialize, parseSecretsAnnotation, type SyncSource, type Target } from '../../src/sync/desired.js';
import fc from 'fast-check';

const deployment = (annotations: Record<string, string>, podSpec = { containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'db' } }, { secretRef: { name: 'api', optional: true } }] }] }): SyncSource => ({
  kind: 'Deployment',
  namespace: 'team-a',
  name: 'web',
  uid: 'uid-1',
  annotations,
  podSpec,
});
/** The operator's default (--max-secrets-per-source). */
const options = { allowedMounts: ['secret'], maxSecretsPerSource: 1000, maxKeysPerPath: 480 };
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
    const result = parseSecretsAnnotation(text, 1000, 480);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(says);
  });
});

describe('materialize: the data that lands in Vault', () => {
  const target = (selections: Target['selections'], key = 'x'): Target => ({ path: { mount: 'secret', key }, selections });
  const limits = { maxEntryBytes: 1024, maxKeysPerPath: 480 };

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

describe('bounds: every input has a limit, checked before any read or write', () => {
  const names = (n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ name: `s-${i}` })));

  test.each([
    { reason: 'more listed Secrets than the setting allows', annotation: names(1001), code: 'TooManySecrets', says: "lists 1001 Secrets, more than the 1000 one source may sync (the operator's --max-secrets-per-source)" },
    { reason: 'an annotation over 256 KiB (Kubernetes\' bound on all annotations)', annotation: names(20_000), code: 'TooManySecrets', says: 'characters long, more than the 262144 allowed' },
    { reason: 'more keys in one item than one Vault write may hold', annotation: JSON.stringify([{ name: 'db', keys: Array.from({ length: 481 }, (_, i) => `k${i}`) }]), code: 'TooManySecrets', says: '"keys" lists 481 keys, more than the 480 one Vault write may hold' },
    { reason: 'a listed key that no Secret can hold', annotation: JSON.stringify([{ name: 'db', keys: ['a\u202Eb'] }]), code: 'InvalidSecretsAnnotation', says: '"a\\u{202E}b" is not a Secret key name' },
    { reason: 'the same Secret listed twice with the same prefix', annotation: JSON.stringify([{ name: 'db' }, { name: 'db' }]), code: 'InvalidSecretsAnnotation', says: 'lists the same Secret with the same prefix again' },
  ])('refuses $reason', ({ annotation, code, says }) => {
    const result = deriveTargets(deployment({ 'vault-sync.io/path': 'secret/team-a/web', 'vault-sync.io/secrets': annotation }), options);
    expect(result).toEqual({ ok: false, problem: { code, message: expect.stringContaining(says) } });
    if (!result.ok) expect(result.problem.message.length).toBeLessThan(300);
  });

  const usingSecrets = (n: number) => deployment({ 'vault-sync.io/path': 'secret/team-a/web' }, { containers: [{ name: 'app', envFrom: Array.from({ length: n }, (_, i) => ({ secretRef: { name: `s-${i}` } })) }] });
  const listing = (n: number) => deployment({ 'vault-sync.io/path': 'secret/team-a/web', 'vault-sync.io/secrets': names(n) });

  test.each([80, 500, 1000])('a workload of %i Secrets is not refused: one target per Secret used, or one merged target for a list', (n) => {
    const used = deriveTargets(usingSecrets(n), options);
    expect(used.ok && used.targets.length).toBe(n);
    const listed = deriveTargets(listing(n), options);
    expect(listed.ok && listed.targets.map((t) => t.selections.length)).toEqual([n]);
  });

  test('auto-discovery of more Secrets than the setting allows is refused, naming the setting and the way out', () => {
    expect(deriveTargets(usingSecrets(1001), options)).toEqual({ ok: false, problem: { code: 'TooManySecrets', message: expect.stringContaining("uses 1001 Secrets, more than the 1000 one source may sync (the operator's --max-secrets-per-source); list the ones to sync in vault-sync.io/secrets") } });
  });

  test('the bound is the setting: a lower one refuses what the default accepts', () => {
    const strict = { ...options, maxSecretsPerSource: 64 };
    expect(deriveTargets(usingSecrets(80), strict)).toEqual({ ok: false, problem: { code: 'TooManySecrets', message: expect.stringContaining('uses 80 Secrets, more than the 64 one source') } });
    expect(deriveTargets(listing(65), strict)).toEqual({ ok: false, problem: { code: 'TooManySecrets', message: expect.stringContaining('lists 65 Secrets, more than the 64 one source') } });
    expect(deriveTargets(usingSecrets(64), strict).ok).toBe(true);
  });

  test('more keys than one Vault write may hold is refused before anything is sent', () => {
    const secret = new Map(Array.from({ length: 1000 }, (_, i) => [`k${i}`, bytes('v')] as [string, Uint8Array]));
    const target: Target = { path: { mount: 'secret', key: 'x' }, selections: [{ secretName: 's', prefix: '', optional: false }] };
    const result = materialize([target], new Map([['s', secret]]), { maxEntryBytes: 1 << 20, maxKeysPerPath: 480 });
    expect(result).toEqual({ ok: false, problems: [{ code: 'TooManyKeys', message: "the data for secret/x has 1000 keys, more than the 480 one Vault write may hold (the operator's --max-keys-per-path)" }] });
  });

  test('the keys per path are the setting: a raised one lets 1000 keys through, in key order; a listed item is bounded by it too', () => {
    const secret = new Map(Array.from({ length: 1000 }, (_, i) => [`k${String(i).padStart(4, '0')}`, new TextEncoder().encode('v')] as [string, Uint8Array]));
    const target: Target = { path: { mount: 'secret', key: 'x' }, selections: [{ secretName: 's', prefix: '', optional: false }] };
    const result = materialize([target], new Map([['s', secret]]), { maxEntryBytes: 1 << 20, maxKeysPerPath: 2000 });
    expect(result.ok && result.entries.map((e) => [...e.data.keys()])).toEqual([[...secret.keys()]]);
    const listing = JSON.stringify([{ name: 's', keys: [...secret.keys()] }]);
    expect(parseSecretsAnnotation(listing, 1000, 2000)).toMatchObject({ ok: true });
    expect(parseSecretsAnnotation(listing, 1000, 999)).toEqual({ ok: false, tooMany: true, reason: `item 0 (s): "keys" lists 1000 keys, more than the 999 one Vault write may hold (the operator's --max-keys-per-path)` });
  });

  test('describeProblems keeps the first five in byte order and counts the rest', () => {
    const problems = Array.from({ length: 64 }, (_, i) => ({ code: 'SecretNotFound' as const, message: `Secret "s-${String(63 - i).padStart(2, '0')}" does not exist` }));
    expect(describeProblems(problems)).toBe(`${['00', '01', '02', '03', '04'].map((n) => `Secret "s-${n}" does not exist`).join('; ')}; …and 59 more`);
  });

  test('property: whatever the annotation text, deriveTargets answers within the setting or with one bounded problem, and never throws', () => {
    const limited = { ...options, maxSecretsPerSource: 64 };
    const item = fc.record({ name: fc.oneof(fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.string()), keys: fc.option(fc.array(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor')), { maxLength: 300 }), { nil: undefined }), prefix: fc.option(fc.string(), { nil: undefined }) });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(item, { maxLength: 100 }).map((items) => JSON.stringify(items))), (annotation) => {
        const result = deriveTargets(deployment({ 'vault-sync.io/path': 'secret/team-a/web', 'vault-sync.io/secrets': annotation }), limited);
        return result.ok ? result.targets.length <= 64 && result.targets.every((t) => t.selections.length <= 64) : result.problem.message.length < 500;
      }),
      { seed: 8_2026_11, numRuns: 3000 },
    );
  });
});
