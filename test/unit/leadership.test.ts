// The leadership state machine of the supervisor: which engine runs when, with the engine slot and timers
// replaced by recorders (pure logic: no Lease, no Vault).
import pino from 'pino';
import { Leadership, waitOutMs } from '../../src/supervisor/leadership.js';

function machine() {
  const calls: string[] = [];
  const timers: Array<{ ms: number; fire: () => void; cancelled: boolean }> = [];
  let endAbort!: () => void;
  const fatal: string[] = [];
  const leadership = new Leadership({
    engines: {
      start: async (shard, stillWanted = () => true) => {
        calls.push(stillWanted() ? `start ${shard}` : `not started ${shard}`);
        return undefined;
      },
      abort: (reason) => {
        calls.push(`abort: ${reason}`);
        return new Promise<void>((resolve) => (endAbort = resolve));
      },
      drain: async () => void calls.push('drain'),
    },
    takeoverMarginMs: 2_000,
    abortGraceMs: 15_000,
    log: pino({ level: 'silent' }),
    onFatal: (reason) => fatal.push(reason),
    setTimer: (fire, ms) => {
      const timer = { ms, fire, cancelled: false };
      timers.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
  });
  const fireTimer = (ms: number) => {
    const timer = timers.find((t) => t.ms === ms && !t.cancelled)!;
    timer.cancelled = true;
    timer.fire();
  };
  return { leadership, calls, timers, fireTimer, fatal, endAbort: () => endAbort() };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

test('the wait-out: nothing after a free or released Lease, the old lease duration plus the margin after a takeover', () => {
  expect(waitOutMs({ previousLeaseDurationMs: 15_000 }, 2_000)).toBe(0);
  expect(waitOutMs({ from: 'old-pod', previousLeaseDurationMs: 15_000 }, 2_000)).toBe(17_000);
});

test('a free Lease: standby → leading at once, the engine starts', async () => {
  const m = machine();
  expect(m.leadership.state.name).toBe('standby');
  m.leadership.acquired(0, { previousLeaseDurationMs: 15_000 });
  await flush();
  expect(m.leadership.state).toEqual({ name: 'leading', shard: 0 });
  expect(m.calls).toEqual(['start 0']);
});

test('a Lease taken over: waiting-out (no engine) for the old lease duration plus the margin, then leading', async () => {
  const m = machine();
  m.leadership.acquired(1, { from: 'old-pod', previousLeaseDurationMs: 6_000 });
  await flush();
  expect(m.leadership.state).toEqual({ name: 'waiting-out', shard: 1, from: 'old-pod', waitMs: 8_000 });
  expect(m.leadership.shard).toBe(1);
  expect(m.calls).toEqual([]);
  m.fireTimer(8_000);
  await flush();
  expect(m.leadership.state).toEqual({ name: 'leading', shard: 1 });
  expect(m.calls).toEqual(['start 1']);
});

test('lost while waiting out: back to standby, the engine never starts', async () => {
  const m = machine();
  m.leadership.acquired(0, { from: 'old-pod', previousLeaseDurationMs: 6_000 });
  m.leadership.lost(0, 'could not renew');
  expect(m.leadership.state.name).toBe('standby');
  expect(m.timers.every((t) => t.cancelled)).toBe(true);
  await flush();
  expect(m.calls).toEqual([]);
});

test('lost while leading: the engine is aborted (no drain); a hung abort is fatal after the grace, a finished one is not', async () => {
  const m = machine();
  m.leadership.acquired(0, { previousLeaseDurationMs: 6_000 });
  await flush();
  m.leadership.lost(0, 'the lease is now held by other');
  expect(m.leadership.state.name).toBe('standby');
  expect(m.calls).toEqual(['start 0', 'abort: the lease is now held by other']);
  m.endAbort();
  await flush();
  expect(m.timers.find((t) => t.ms === 15_000)?.cancelled).toBe(true);
  expect(m.fatal).toEqual([]);

  m.leadership.acquired(0, { previousLeaseDurationMs: 6_000 });
  await flush();
  m.leadership.lost(0, 'expired');
  m.fireTimer(15_000); // the abort never finished
  expect(m.fatal).toEqual(['lost shard 0 and its engine did not stop within 15000 ms']);
});

test('a loss of another shard, or a second acquisition, changes nothing', async () => {
  const m = machine();
  m.leadership.acquired(0, { previousLeaseDurationMs: 6_000 });
  m.leadership.acquired(1, { previousLeaseDurationMs: 6_000 });
  m.leadership.lost(1, 'not ours');
  await flush();
  expect(m.leadership.state).toEqual({ name: 'leading', shard: 0 });
  expect(m.calls).toEqual(['start 0']);
});

test('stop drains; a loss during the drain aborts it; nothing starts after stop', async () => {
  const m = machine();
  m.leadership.acquired(0, { previousLeaseDurationMs: 6_000 });
  await flush();
  await m.leadership.stop();
  expect(m.leadership.state.name).toBe('stopping');
  m.leadership.lost(0, 'expired during the drain');
  m.leadership.acquired(0, { previousLeaseDurationMs: 6_000 });
  await flush();
  expect(m.calls).toEqual(['start 0', 'drain', 'abort: expired during the drain']);
});
