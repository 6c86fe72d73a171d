// Condition and Event messages are bounded at the two places that write them, whoever composed them.
import fc from 'fast-check';
import { boundedList, boundMessage, MAX_LISTED } from '../../src/kube/message-bounds.js';

describe('boundMessage: every condition and Event message fits, and says what it left out', () => {
  test('a short message is kept as it is', () => {
    expect(boundMessage('Secret "a" does not exist')).toBe('Secret "a" does not exist');
  });

  test('many problems: whole problems are kept, then "…and N more"', () => {
    const problems = Array.from({ length: 10_000 }, (_, i) => `Secret "absent-${i}" does not exist`);
    const message = boundMessage(problems.join('; '));
    expect(message.length).toBeLessThanOrEqual(1024);
    expect(message).toMatch(/^Secret "absent-0" does not exist; Secret "absent-1" does not exist; .*; …and \d+ more$/);
    const kept = message.split('; ').length - 1;
    expect(message.endsWith(`…and ${10_000 - kept} more`)).toBe(true);
  });

  test('one long problem is cut, never inside a surrogate pair, and says how long it was', () => {
    const message = boundMessage('😀'.repeat(2000), 100);
    expect(message.length).toBeLessThanOrEqual(100);
    expect(message).toMatch(/…\(4000 characters\)$/);
    expect(() => encodeURIComponent(message)).not.toThrow(); // no lone surrogate
  });

  test('property: the result never exceeds the bound, and a message within it is unchanged', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { maxLength: 50 }), fc.integer({ min: 40, max: 2000 }), (parts, max) => {
        const text = parts.join('; ');
        const bounded = boundMessage(text, max);
        return bounded.length <= max && (text.length > max || bounded === text);
      }),
      { seed: 8_2026_11, numRuns: 5000 },
    );
  });
});

describe('boundedList: the paths an Event or condition names, sorted and bounded', () => {
  test('paths come in byte order of the path, whatever order Vault answered in; the prefix stays first', () => {
    expect(boundedList(['secret/t/web/db', 'secret/t/web/api', 'secret/t/web/Zed'], '3 path(s) written; ')).toBe('3 path(s) written; secret/t/web/Zed; secret/t/web/api; secret/t/web/db');
  });

  test('problems that begin with their path are sorted by it', () => {
    expect(boundedList(['secret/t/b: Vault refused the write (forbidden)', 'secret/t/a: timed out; retrying'])).toBe('secret/t/a: timed out; retrying; secret/t/b: Vault refused the write (forbidden)');
  });

  test('the first MAX_LISTED in sorted order are shown, then how many more', () => {
    const paths = Array.from({ length: 50 }, (_, i) => `secret/t/p${String(49 - i).padStart(2, '0')}`);
    const message = boundedList(paths);
    expect(message.split('; ').slice(0, MAX_LISTED)).toEqual(Array.from({ length: MAX_LISTED }, (_, i) => `secret/t/p${String(i).padStart(2, '0')}`));
    expect(message.endsWith(`; …and ${50 - MAX_LISTED} more`)).toBe(true);
  });

  test('property: the message does not depend on the order of its items', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^secret\/[a-zA-Z0-9]{1,6}$/), { maxLength: 40 }), (paths) => {
        expect(boundedList([...paths].reverse())).toBe(boundedList(paths));
      }),
    );
  });
});
