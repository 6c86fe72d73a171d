// Key names are user input: a Secret key named `__proto__`, `constructor`, `toString`, `valueOf` or
// `hasOwnProperty` must sync like any other key. Everything keyed by them is a Map, from the API answer to
// the JSON body sent to Vault; these tests hold each hop to that, over generated key names too.
import fc from 'fast-check';
import { secretDataOf, slimSecret } from '../../src/kube/objects.js';
import { materialize, type Target } from '../../src/sync/desired.js';
import { Fingerprinter } from '../../src/sync/fingerprint.js';
import { jsonPieces } from '../../src/vault/transport.js';

const JS_PROPERTY_NAMES = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__', 'toLocaleString'];
const SEED = 20261129;
const bytes = (text: string) => new Uint8Array(Buffer.from(text));
const target = (selections: Target['selections']): Target => ({ path: { mount: 'secret', key: 'team-a/app' }, selections });
const all = (secretName: string, prefix = '') => ({ secretName, prefix, optional: false });

/** Key names from the risky list and from arbitrary unicode text, distinct, at least one. */
const keyNames = fc.uniqueArray(fc.oneof(fc.constantFrom(...JS_PROPERTY_NAMES), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 12 })), { minLength: 1, maxLength: 12 });

describe('JavaScript property names are keys like any other', () => {
  test('the Secret data of an API answer (parsed by JSON.parse) keeps every key, __proto__ included', () => {
    const answer = JSON.parse('{"data":{"__proto__":"YQ==","constructor":"Yg==","toString":"Yw==","valueOf":"ZA==","hasOwnProperty":"ZQ=="}}');
    expect([...secretDataOf(answer).entries()]).toEqual([
      ['__proto__', 'YQ=='],
      ['constructor', 'Yg=='],
      ['toString', 'Yw=='],
      ['valueOf', 'ZA=='],
      ['hasOwnProperty', 'ZQ=='],
    ]);
  });

  test('materialize writes each of them, with no bogus key conflict, whether listed or discovered', () => {
    const secret = new Map(JS_PROPERTY_NAMES.map((k) => [k, bytes(`value of ${k}`)]));
    for (const selection of [all('s'), { ...all('s'), keys: [...JS_PROPERTY_NAMES] }]) {
      const result = materialize([target([selection])], new Map([['s', secret]]), { maxEntryBytes: 1 << 20, maxKeysPerPath: 480 });
      expect(result.ok).toBe(true);
      if (result.ok) expect(new Map(result.entries[0].data)).toEqual(new Map(JS_PROPERTY_NAMES.map((k) => [k, `value of ${k}`])));
    }
  });

  test('a listed key that the Secret lacks is KeyNotFound even when it is an Object.prototype name', () => {
    const result = materialize([target([{ ...all('s'), keys: ['constructor', '__proto__'] }])], new Map([['s', new Map([['user', bytes('u')]])]]), { maxEntryBytes: 1024, maxKeysPerPath: 480 });
    expect(result).toEqual({
      ok: false,
      problems: [
        { code: 'KeyNotFound', message: 'Secret "s" has no key "constructor"' },
        { code: 'KeyNotFound', message: 'Secret "s" has no key "__proto__"' },
      ],
    });
  });

  test('property: any set of key names materializes to exactly those keys and values, and the JSON body carries each of them', () => {
    fc.assert(
      fc.property(keyNames, fc.constantFrom('', 'p_', '__'), (names, prefix) => {
        const secret = new Map(names.map((k, i) => [k, bytes(`v${i}`)]));
        const result = materialize([target([all('s', prefix)])], new Map([['s', secret]]), { maxEntryBytes: 1 << 20, maxKeysPerPath: 480 });
        if (!result.ok) return false;
        const expected = new Map(names.map((k, i) => [prefix + k, `v${i}`]));
        expect(new Map(result.entries[0].data)).toEqual(expected);
        // What the transport sends: a JSON object holding exactly those keys (JSON.parse keeps __proto__ as a key).
        const sent = JSON.parse([...jsonPieces({ data: result.entries[0].data })].join('')).data;
        expect(new Map(Object.entries(sent))).toEqual(expected);
        return true;
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  test('property: two Secrets conflict exactly on the key names they share, whatever those names are', () => {
    fc.assert(
      fc.property(keyNames, keyNames, (a, b) => {
        const secrets = new Map([
          ['a', new Map(a.map((k) => [k, bytes('1')]))],
          ['b', new Map(b.map((k) => [k, bytes('2')]))],
        ]);
        const result = materialize([target([all('a'), all('b')])], secrets, { maxEntryBytes: 1 << 20, maxKeysPerPath: 480 });
        const shared = a.filter((k) => b.includes(k));
        if (shared.length === 0) return result.ok && result.entries[0].data.size === new Set([...a, ...b]).size;
        return !result.ok && result.problems.length === shared.length && result.problems.every((p) => p.code === 'KeyConflict');
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  test('the Secret cache hash covers a __proto__ key: changing its value changes the hash', () => {
    const f = new Fingerprinter(Buffer.from('k'.repeat(32)));
    const hashOf = (json: string) => slimSecret(JSON.parse(json), (data) => f.secretData(data)).dataHash;
    expect(hashOf('{"data":{"__proto__":"YQ=="}}')).not.toBe(hashOf('{"data":{"__proto__":"Yg=="}}'));
    expect(hashOf('{"data":{"__proto__":"YQ=="}}')).not.toBe(hashOf('{"data":{}}'));
  });

  test('a Map body serializes as the JSON object of its entries, in insertion order', () => {
    const body = { data: new Map([['__proto__', 'a'], ['constructor', 'b']]), options: { cas: 0 } };
    expect([...jsonPieces(body)].join('')).toBe('{"data":{"__proto__":"a","constructor":"b"},"options":{"cas":0}}');
  });
});
