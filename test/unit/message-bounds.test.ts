// Condition and Event messages are bounded at the two places that write them, whoever composed them.
import fc from 'fast-check';
import { boundMessage } from '../../src/kube/message-bounds.js';

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
