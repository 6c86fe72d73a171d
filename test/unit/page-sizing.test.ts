import { nextPageLimit, type PageSizing } from '../../src/kube/reflector.js';

const sizing: PageSizing = { initial: 500, min: 10, max: 2000, targetBytes: 8 * 1024 * 1024 };

describe('nextPageLimit: pages sized by the bytes per object seen so far', () => {
  test('before anything is known, the initial size', () => {
    expect(nextPageLimit(sizing, 0, 0)).toBe(500);
  });
  test('small objects: as many as fit the target, up to the count bound', () => {
    expect(nextPageLimit(sizing, 500, 500 * 6 * 1024)).toBe(1365); // 8 MiB / 6 KiB
    expect(nextPageLimit(sizing, 500, 500 * 200)).toBe(2000);
  });
  test('large objects (Secrets near 1 MiB): few per page, never below the floor', () => {
    expect(nextPageLimit(sizing, 500, 500 * 1024 * 1024)).toBe(10);
    expect(nextPageLimit(sizing, 20, 20 * 400 * 1024)).toBe(20);
  });
});
