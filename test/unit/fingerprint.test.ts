import { Fingerprinter } from '../../src/sync/fingerprint.js';
import type { DesiredEntry } from '../../src/sync/desired.js';

const entry = (data: Record<string, string>, binaryKeys: string[] = []): DesiredEntry => ({ path: { mount: 'secret', key: 'a' }, data: new Map(Object.entries(data)), binaryKeys, secretNames: ['s'], sizeBytes: 0 });

describe('Fingerprinter: keyed content hashes', () => {
  const f = new Fingerprinter(Buffer.from('k'.repeat(32)));
  test('equal content, equal hash, whatever the key order', () => {
    expect(f.entry(entry({ a: '1', b: '2' }))).toBe(f.entry(entry({ b: '2', a: '1' })));
  });
  test.each([
    { reason: 'a changed value', other: entry({ a: '1', b: '3' }) },
    { reason: 'a renamed key', other: entry({ a: '1', c: '2' }) },
    { reason: 'the same text marked binary', other: entry({ a: '1', b: '2' }, ['b']) },
    { reason: 'values shifted across keys (length-prefixed)', other: entry({ a: '12', b: '' }) },
  ])('$reason changes the hash', ({ other }) => {
    expect(f.entry(other)).not.toBe(f.entry(entry({ a: '1', b: '2' })));
  });
  test('another key gives another hash: without the key a short value cannot be brute-forced from it', () => {
    expect(new Fingerprinter(Buffer.from('x'.repeat(32))).entry(entry({ a: '1' }))).not.toBe(f.entry(entry({ a: '1' })));
    expect(f.entry(entry({ a: '1' }))).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
  });
  test('no key loaded yet is an error, not an unkeyed hash', () => {
    expect(() => new Fingerprinter().secretData(new Map([['a', 'MQ==']]))).toThrow('key has not been loaded');
  });
});
