// vault-sync.io/custom-metadata: what is accepted is exactly what is written to Vault; Vault's bounds, the
// operator's marks and duplicates are refused by name. The apiserver's verdict on the same values is compared
// in test/e2e/admission-policy.test.ts.
import fc from 'fast-check';
import { CUSTOM_METADATA_LIMITS, parseCustomMetadata } from '../../src/kube/custom-metadata.js';
import { ownershipMarks } from '../../src/sync/write-policy.js';
import { isMarkKey, MAX_MARKS } from '../../src/vault/mark-keys.js';

const accepted = (value: string) => {
  const parsed = parseCustomMetadata(value);
  if (!parsed.ok) throw new Error(`refused: ${parsed.problem}`);
  return [...parsed.metadata];
};
const problemOf = (value: string) => {
  const parsed = parseCustomMetadata(value);
  return parsed.ok ? undefined : parsed.problem;
};

describe('parseCustomMetadata', () => {
  test('a JSON object of strings is read in order, its escapes decoded; whitespace between tokens is free', () => {
    expect(accepted(' {\n "team" : "payments",\t"wiki":"https:\\/\\/wiki\\/a?b=1&c=\\"d\\"", "note.x/y_z-1": "é ü 日本" } ')).toEqual([
      ['team', 'payments'],
      ['wiki', 'https://wiki/a?b=1&c="d"'],
      ['note.x/y_z-1', 'é ü 日本'],
    ]);
    expect(accepted('{}')).toEqual([]);
    expect(accepted('{"empty":""}')).toEqual([['empty', '']]);
  });

  test.each([
    ['not an object', '["a"]'],
    ['a number value', '{"a":1}'],
    ['a nested object', '{"a":{"b":"c"}}'],
    ['a key with a space', '{"a b":"c"}'],
    ['an empty key', '{"":"c"}'],
    ['a \\u escape (it could hide a character that is not printable)', '{"a":"\\u0041"}'],
    ['a \\n escape', '{"a":"x\\ny"}'],
    ['an escaped key', '{"\\u0061":"b"}'],
    ['a trailing comma', '{"a":"b",}'],
    ['two objects', '{"a":"b"}{"c":"d"}'],
    ['single quotes', "{'a':'b'}"],
  ])('refused: %s', (_why, value) => {
    expect(problemOf(value)).toMatch(/^must be a JSON object of string values/);
  });

  test('characters Vault does not call printable are refused, also inside a value (a raw control character, a zero-width space)', () => {
    expect(problemOf('{"a":"x\u0001"}')).toMatch(/not printable/);
    expect(problemOf('{"a":"x\u200by"}')).toMatch(/not printable/);
    expect(problemOf('{"a":"\ud800"}')).toMatch(/not printable/);
  });

  test('a key given twice is refused by name (JSON.parse would silently keep the last)', () => {
    expect(problemOf('{"team":"a","other":"b","team":"c"}')).toBe('has a key twice: "team"');
  });

  test('Vault\'s bounds: 128 bytes a key, 512 bytes a value after decoding (multi-byte characters counted in bytes)', () => {
    const k = (n: number) => 'k'.repeat(n);
    expect(problemOf(JSON.stringify({ [k(128)]: 'v' }))).toBeUndefined();
    expect(problemOf(JSON.stringify({ [k(129)]: 'v' }))).toMatch(/^has a key longer than 128 bytes/);
    expect(problemOf(JSON.stringify({ a: 'é'.repeat(256) }))).toBeUndefined();
    expect(problemOf(JSON.stringify({ a: 'é'.repeat(257) }))).toMatch(/^has a value longer than 512 bytes \(Vault's limit\): the value of "a"/);
    // An escape is two characters in the annotation and one byte in Vault.
    expect(problemOf(`{"a":"${'\\"'.repeat(512)}"}`)).toBeUndefined();
    expect(problemOf(`{"a":"${'\\"'.repeat(513)}"}`)).toMatch(/^has a value longer than 512/);
  });

  test(`Vault's 64 keys include the operator's ${MAX_MARKS} marks: a user gets ${CUSTOM_METADATA_LIMITS.userKeys}`, () => {
    const keys = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v'])));
    expect(CUSTOM_METADATA_LIMITS.userKeys + MAX_MARKS).toBe(64);
    expect(problemOf(keys(CUSTOM_METADATA_LIMITS.userKeys))).toBeUndefined();
    expect(problemOf(keys(CUSTOM_METADATA_LIMITS.userKeys + 1))).toMatch(new RegExp(`^has more than ${CUSTOM_METADATA_LIMITS.userKeys} keys .*: ${CUSTOM_METADATA_LIMITS.userKeys + 1}$`));
  });

  test('the annotation itself is bounded', () => {
    expect(problemOf(`{"a":"${'x'.repeat(CUSTOM_METADATA_LIMITS.annotationLength)}"}`)).toMatch(/^is longer than/);
  });

  test('every key the operator writes (marks, content hash, base64 keys, adoption\'s previous-*) is refused, in any case', () => {
    const written = Object.keys(ownershipMarks({ kind: 'Deployment', namespace: 'n', name: 'a', uid: 'u' }, 'c', { hash: 'h', binaryKeys: ['b'], previousMetadata: { owner: 'x' } }));
    expect(written.length).toBe(MAX_MARKS + 1);
    for (const key of [...written, 'Managed-By', 'SOURCE-anything', 'previous-team', 'CLUSTER']) {
      expect(isMarkKey(key)).toBe(true);
      expect(problemOf(JSON.stringify({ team: 'a', [key]: 'x' }))).toMatch(new RegExp(`^has a key that is, or looks like, one of the operator's ownership marks .*: "${key}"$`));
    }
    expect(problemOf(JSON.stringify({ 'managed-by-team': 'x', clusterwide: 'y', 'my-source': 'z' }))).toBeUndefined();
  });

  test('property: whatever is accepted is written byte for byte as JSON.parse reads the same text', () => {
    const key = fc.stringMatching(/^[A-Za-z0-9._/-]{1,20}$/).filter((k) => !isMarkKey(k));
    const value = fc.string({ maxLength: 30 }).filter((v) => /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u.test(v));
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 10 }), (object) => {
        const text = JSON.stringify(object).replace(/\\u[0-9a-f]{4}/g, (e) => String.fromCharCode(parseInt(e.slice(2), 16)));
        const parsed = parseCustomMetadata(text);
        expect(parsed.ok && Object.fromEntries(parsed.metadata)).toEqual(JSON.parse(text));
      }),
      { seed: 20261203, numRuns: 300 },
    );
  });
});
