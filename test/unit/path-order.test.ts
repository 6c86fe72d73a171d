// The one order output lists paths in: the byte order of their UTF-8 form, whatever the locale.
import fc from 'fast-check';
import { compareUtf8, sortedByPath, sortedTexts } from '../../src/vault/path-order.js';

const sign = (n: number) => Math.sign(n);

describe('compareUtf8 is the byte order of the UTF-8 encoding', () => {
  test('property: it agrees with comparing the encoded bytes, for any well-formed text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(sign(compareUtf8(a, b))).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2_000 },
    );
  });

  test('an astral character sorts after U+FFFD (UTF-16 code-unit order would put it first)', () => {
    expect(compareUtf8('secret/\u{1F600}', 'secret/\uFFFD')).toBe(1);
    expect('secret/\u{1F600}' < 'secret/\uFFFD').toBe(true); // why a plain comparison is not used
  });

  test('upper case before lower case, a prefix before its extensions, no locale folding', () => {
    expect(sortedTexts(['secret/b', 'secret/B', 'secret/a/x', 'secret/a', 'secret/ä'])).toEqual(['secret/B', 'secret/a', 'secret/a/x', 'secret/b', 'secret/ä']);
  });
});

describe('sortedByPath', () => {
  test('returns a sorted copy and leaves its input as it was', () => {
    const input = [{ path: 'secret/c' }, { path: 'secret/a' }, { path: 'secret/b' }];
    expect(sortedByPath(input, (e) => e.path).map((e) => e.path)).toEqual(['secret/a', 'secret/b', 'secret/c']);
    expect(input.map((e) => e.path)).toEqual(['secret/c', 'secret/a', 'secret/b']);
  });

  test('property: any permutation of the same items sorts to the same list (items with one path keep their order)', () => {
    const item = fc.record({ path: fc.constantFrom('secret/a', 'secret/a/b', 'secret/B', 'secret/z', 'kv/x'), n: fc.nat(1000) });
    fc.assert(
      fc.property(fc.uniqueArray(item, { selector: (i) => i.path, maxLength: 5 }), fc.integer(), (items, seed) => {
        const shuffled = [...items].sort((x, y) => ((x.n ^ seed) - (y.n ^ seed)) | 0);
        expect(sortedByPath(shuffled, (i) => i.path)).toEqual(sortedByPath(items, (i) => i.path));
      }),
    );
    const same = [{ path: 'secret/a', n: 2 }, { path: 'secret/a', n: 1 }];
    expect(sortedByPath(same, (i) => i.path).map((i) => i.n)).toEqual([2, 1]);
  });
});
