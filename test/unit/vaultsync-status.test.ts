// The status a sync record is written as: the same record always reads the same.
import fc from 'fast-check';
import { recordStatus, type StoredSyncRecord } from '../../src/kube/vaultsync-store.js';

/** Each path's fields follow from the path alone (its length), so a reordered record holds the same items. */
const record = (paths: string[]): StoredSyncRecord => ({
  inputFingerprint: 'fp',
  entries: paths.map((path) => ({ path, hash: `hmac-sha256:${String(path.length).repeat(16)}`, version: path.length })),
  intents: paths.map((path) => ({ path, version: path.length + 1, hash: 'h' })),
  failures: paths.map((path) => ({ path, hash: 'h', kind: 'forbidden', message: 'permission denied' })),
  lastSyncTime: '2026-01-01T00:00:00Z',
});

test('entries, intents and failures are written sorted by path, whatever order the writes landed in', () => {
  const status = recordStatus(record(['secret/t/web/db', 'secret/t/web/api', 'secret/t/web/Zed']));
  const sorted = ['secret/t/web/Zed', 'secret/t/web/api', 'secret/t/web/db'];
  expect(status.entries.map((e) => e.path)).toEqual(sorted);
  expect(status.intents.map((e) => e.path)).toEqual(sorted);
  expect(status.failures.map((e) => e.path)).toEqual(sorted);
  // The Hash and Version columns show the first path in that order.
  expect(status.entries[0]).toEqual({ path: 'secret/t/web/Zed', hash: `hmac-sha256:${'16'.repeat(16)}`, version: 16 });
  expect(status.vaultVersion).toBe(16);
  expect(status.shortHash).toBe('161616161616');
});

test('empty lists are written as empty (a merge patch would keep stale ones otherwise)', () => {
  const status = recordStatus({ inputFingerprint: 'fp', entries: [], lastSyncTime: '' });
  expect([status.entries, status.intents, status.failures, status.shortHash]).toEqual([[], [], [], undefined]);
});

test('property: any order of the same record gives the same status', () => {
  const paths = ['secret/a', 'secret/a/b', 'secret/B', 'kv/z', 'secret/\u00e4'];
  fc.assert(
    fc.property(fc.shuffledSubarray(paths, { minLength: paths.length }), (order) => {
      expect(recordStatus(record(order))).toEqual(recordStatus(record(paths)));
    }),
  );
});
