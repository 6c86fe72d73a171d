import { jest } from '@jest/globals';
import pino from 'pino';
import { PROGRESS_INTERVAL_MS, SyncProgress } from '../../src/sync/progress.js';
import type { SyncState, SyncStateStore } from '../../src/sync/state-store.js';

function recordingStore() {
  const writes: Array<{ state: SyncState; at: number }> = [];
  const store: SyncStateStore = {
    get: async () => undefined,
    set: async (_key, _ref, state) => {
      writes.push({ state: structuredClone(state), at: Date.now() });
    },
    setCondition: async () => undefined,
    delete: async () => undefined,
  };
  return { store, writes };
}

const ref = { kind: 'Deployment' as const, namespace: 'ns', name: 'big', uid: 'u' };
const path = (i: number) => ({ mount: 'secret', key: `ns/big/s${i}` });

describe('SyncProgress: durable, at most one status write per second', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  test('intents are written before the writes go; 80 landings in 2.5 s make at most one progress write per second, each "not done"', async () => {
    const { store, writes } = recordingStore();
    const progress = new SyncProgress({ key: 'k', ref, store, log: pino({ level: 'silent' }), now: Date.now, base: { inputFingerprint: 'old', entries: [], lastSyncTime: '' }, inputFingerprint: 'new:token' });
    await progress.intend(Array.from({ length: 80 }, (_, i) => ({ path: path(i), version: 1, hash: `h${i}` })));
    expect(writes).toHaveLength(1);
    expect(writes[0].state.intents).toHaveLength(80);
    expect(writes[0].state.inputFingerprint).toBe('syncing:token'); // keeps the force-sync token, never matches

    for (let i = 0; i < 80; i++) {
      progress.land({ path: path(i), hash: `h${i}`, version: 1 });
      await jest.advanceTimersByTimeAsync(2_500 / 80);
    }
    await jest.advanceTimersByTimeAsync(PROGRESS_INTERVAL_MS);
    const progressWrites = writes.slice(1);
    expect(progressWrites.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < writes.length; i++) expect(writes[i].at - writes[i - 1].at).toBeGreaterThanOrEqual(PROGRESS_INTERVAL_MS);
    const last = writes[writes.length - 1].state;
    expect(last.entries).toHaveLength(80);
    expect(last.intents).toEqual([]);
  });

  test('a landing whose marks are still due keeps its intent until the marks land', async () => {
    const { store } = recordingStore();
    const progress = new SyncProgress({ key: 'k', ref, store, log: pino({ level: 'silent' }), now: Date.now, base: { inputFingerprint: '', entries: [], lastSyncTime: '' }, inputFingerprint: 'fp' });
    await progress.intend([{ path: path(1), version: 1, hash: 'h' }]);
    progress.land({ path: path(1), hash: 'h', version: 1, marksPending: true });
    expect(progress.intent(path(1))).toBeDefined();
    progress.marked(path(1));
    expect(progress.intent(path(1))).toBeUndefined();
    expect(progress.entry(path(1))).toEqual({ path: path(1), hash: 'h', version: 1 });
  });
});
