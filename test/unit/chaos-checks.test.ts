// The chaos test's verdicts (pure): who held the Lease when, the one-bucket replay, stale and excess versions,
// leftovers and leaked values. A verdict that is wrong here would make the chaos test lie.
import fc from 'fast-check';
import {
  canaryLeaks,
  checkPaths,
  heldWindows,
  isKvWrite,
  leaseWindows,
  leftovers,
  logWindows,
  replayTokenBucket,
  requestsByNonHolders,
  type LandedWrite,
  type LeaseObservation,
  type PathState,
  type ReplicaRequest,
} from '../e2e/helpers/chaos-checks.js';
import { chaosEvidence, type EvidenceInput } from '../e2e/helpers/chaos-evidence.js';
import { ChaosLedger } from '../e2e/helpers/chaos-ledger.js';

const obs = (at: number, holder: string, acquireTime: number, renewTime: number, durationMs = 4000): LeaseObservation => ({ at, holder, acquireTime, renewTime, durationMs });
const req = (identity: string, at: number, method = 'POST', path = '/v1/secret/data/ns/p'): ReplicaRequest => ({ identity, at, method, path, outcome: 'forwarded' });

describe('who held the Lease', () => {
  test('a holder holds it from its acquireTime to a lease duration after its last renewal was seen', () => {
    // The renewal stamped 2900 was seen at 3000 (a slow renewal call): the standby counts from what it saw.
    const windows = leaseWindows([obs(1000, 'a', 1000, 1000), obs(2000, 'a', 1000, 2000), obs(3000, 'a', 1000, 2900), obs(8000, 'b', 7500, 7500)]);
    expect(windows.get('a')).toEqual([{ from: 1000, to: 7000 }]);
    expect(windows.get('b')).toEqual([{ from: 7500, to: 12000 }]);
  });

  test('a holder holds it at most until the next holder stamped its acquisition (a release, or a renewal seen late)', () => {
    const windows = leaseWindows([obs(1000, 'a', 1000, 3000), obs(3100, '', 1000, 3100, 1000), obs(3200, 'b', 3200, 3200)]);
    expect(windows.get('a')).toEqual([{ from: 1000, to: 3200 }]);
    // The poller saw a's last renewal 100 ms after the standby did: the standby's acquisition still ends a's window.
    const late = leaseWindows([obs(1000, 'a', 1000, 1000), obs(5100, 'a', 1000, 5000), obs(9100, 'b', 9050, 9050)]);
    expect(late.get('a')).toEqual([{ from: 1000, to: 9050 }]);
  });

  test('the same holder acquiring again (new acquireTime) is a new window, not one long one', () => {
    const windows = leaseWindows([obs(1000, 'a', 1000, 1000), obs(9000, 'a', 9000, 9000)]);
    expect(windows.get('a')).toEqual([{ from: 1000, to: 5000 }, { from: 9000, to: 13000 }]);
  });

  test('the replica\'s own log narrows it: from "acquired" to "lost", "released" or its exit', () => {
    expect(logWindows([{ at: 5000, event: 'lost' }, { at: 1100, event: 'acquired' }, { at: 6000, event: 'acquired' }, { at: 9000, event: 'exited' }])).toEqual([
      { from: 1100, to: 5000 },
      { from: 6000, to: 9000 },
    ]);
    expect(logWindows([{ at: 1100, event: 'acquired' }])).toEqual([{ from: 1100, to: Infinity }]);
  });

  test('a paused leader that wakes up after its lease expired sends as a non-holder, even before it logs the loss', () => {
    // a renewed at 3000 (lease 4 s), was frozen, b took over at 8000; a woke at 20000 and logged the loss at 20100.
    const lease = leaseWindows([obs(3000, 'a', 1000, 3000), obs(8000, 'b', 8000, 8000), obs(21000, 'b', 8000, 21000)]);
    const { held, judgedByLeaseOnly } = heldWindows(lease, new Map([
      ['a', [{ at: 1050, event: 'acquired' as const }, { at: 20100, event: 'lost' as const }]],
      ['b', [{ at: 8010, event: 'acquired' as const }]],
    ]));
    expect(judgedByLeaseOnly).toEqual([]);
    const requests = [req('a', 2000), req('a', 6999), req('a', 7000), req('a', 20050), req('b', 8005), req('b', 8020), req('b', 24000)];
    expect(requestsByNonHolders(requests, held).map((r) => `${r.identity}@${r.at}`)).toEqual(['a@7000', 'a@20050', 'b@8005']);
  });

  test('a replica with no acquisition in its log is judged by the Lease alone, and named', () => {
    const { held, judgedByLeaseOnly } = heldWindows(leaseWindows([obs(1000, 'a', 1000, 1000)]), new Map());
    expect(held.get('a')).toEqual([{ from: 1000, to: 5000 }]);
    expect(judgedByLeaseOnly).toEqual(['a']);
  });

  test('a replica that never held the Lease holds no window: every request it sends counts', () => {
    const { held } = heldWindows(new Map(), new Map([['c', [{ at: 10, event: 'exited' as const }]]]));
    expect(requestsByNonHolders([req('c', 5, 'GET', '/v1/auth/token/lookup-self')], held)).toHaveLength(1);
  });

  test('KV writes are told from reads and logins', () => {
    expect([req('a', 1), req('a', 1, 'DELETE', '/v1/secret/metadata/x'), req('a', 1, 'GET'), req('a', 1, 'POST', '/v1/auth/kubernetes/login')].map(isKvWrite)).toEqual([true, true, false, false]);
  });
});

describe('one token bucket over the merged audit log', () => {
  const bucket = { rate: 10, burst: 20, toleranceMs: 0 };

  test('a full burst passes, one more at the same instant does not', () => {
    expect(replayTokenBucket(Array(20).fill(1000), bucket)).toMatchObject({ requests: 20, rejected: 0, busiestSecond: 20 });
    expect(replayTokenBucket(Array(21).fill(1000), bucket)).toMatchObject({ requests: 21, rejected: 1, firstRejected: [1000] });
  });

  test('after the burst, the rate: 10 per second pass, 11 per second do not', () => {
    const burst = Array(20).fill(0);
    expect(replayTokenBucket([...burst, ...Array.from({ length: 50 }, (_, i) => 100 * (i + 1))], bucket).rejected).toBe(0);
    expect(replayTokenBucket([...burst, ...Array.from({ length: 55 }, (_, i) => (1000 / 11) * (i + 1))], bucket).rejected).toBeGreaterThan(0);
  });

  test('two writers spending a full bucket each are caught', () => {
    const a = Array.from({ length: 60 }, (_, i) => (i < 20 ? 0 : 100 * (i - 19)));
    const b = a.map((t) => t + 3);
    const replay = replayTokenBucket([...a, ...b], bucket);
    expect(replay.rejected).toBeGreaterThanOrEqual(40);
  });

  test('any conforming schedule, each request logged up to the tolerance early, is accepted', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: 120 }), (steps) => {
        // A limiter's release times: each waits at least `gap` and for a token.
        let tokens = 20;
        let last = 0;
        const times: number[] = [];
        for (const [gap, jitter] of steps) {
          let t = last + gap;
          tokens = Math.min(20, tokens + ((t - last) * 10) / 1000);
          if (tokens < 1) {
            t += ((1 - tokens) * 1000) / 10;
            tokens = 1;
          }
          tokens -= 1;
          last = t;
          times.push(t - jitter * 250);
        }
        return replayTokenBucket(times, { rate: 10, burst: 20, toleranceMs: 250 }).rejected === 0;
      }),
    );
  });
});

describe('what Vault holds against the ledger', () => {
  const make = () => {
    let n = 0;
    const ledger = new ChaosLedger('cnryTESTv', () => (n++).toString(16).padStart(8, '0'));
    const v: string[] = [];
    for (let i = 0; i < 4; i++) v.push(ledger.nextValue('ns/s0'));
    return { ledger, v };
  };
  const landedAt = (path: string, index: number, at: number, identity = 'a'): LandedWrite => ({ path, identity, at, ref: { secret: 'ns/s0', index } });

  test('a path holding the latest value, with one version per value it received from its start on, passes', () => {
    const { ledger, v } = make();
    ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0'); // value #4 current: index 3... after two more values:
    v.push(ledger.nextValue('ns/s0'), ledger.nextValue('ns/s0'));
    const states = new Map<string, PathState>([['ns/d0-g0/s0', { value: v[5], versions: 3, marked: true }]]);
    const result = checkPaths(ledger, states, [landedAt('ns/d0-g0/s0', 3, 1), landedAt('ns/d0-g0/s0', 4, 2), landedAt('ns/d0-g0/s0', 5, 3)]);
    expect(result).toEqual({ stale: [], excess: [], unmarked: [], regressions: [] });
  });

  test('an older value at the end is stale, and the stale write that landed after a newer one is named with its writer', () => {
    const { ledger, v } = make();
    ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0');
    v.push(ledger.nextValue('ns/s0'));
    const states = new Map<string, PathState>([['ns/d0-g0/s0', { value: v[0], versions: 3, marked: true }]]);
    const result = checkPaths(ledger, states, [landedAt('ns/d0-g0/s0', 3, 1), landedAt('ns/d0-g0/s0', 4, 2, 'b'), landedAt('ns/d0-g0/s0', 0, 3, 'a')]);
    expect(result.stale.map((f) => ({ path: f.path, holds: f.holds, values: f.values }))).toEqual([{ path: 'ns/d0-g0/s0', holds: 0, values: 5 }]);
    expect(result.regressions.map((r) => [r.write.identity, r.write.ref?.index, r.after.identity, r.after.ref?.index])).toEqual([['a', 0, 'b', 4]]);
    // values 4..5 (indexes 3, 4) could be received, or from the first one that landed (index 3): 2 allowed, 3 found.
    expect(result.excess.map((f) => [f.versions, f.allowed])).toEqual([[3, 2]]);
  });

  test('a value written twice (an answer lost after Vault applied it) is an excess version', () => {
    const { ledger, v } = make();
    ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0');
    const states = new Map<string, PathState>([['ns/d0-g0/s0', { value: v[3], versions: 2, marked: true }]]);
    const result = checkPaths(ledger, states, [landedAt('ns/d0-g0/s0', 3, 1), landedAt('ns/d0-g0/s0', 3, 2)]);
    expect(result.excess.map((f) => [f.versions, f.allowed])).toEqual([[2, 1]]);
    expect(result.stale).toEqual([]);
  });

  test('a lagging cache writing the previous value first is allowed (each value once)', () => {
    const { ledger, v } = make();
    ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0');
    const states = new Map<string, PathState>([['ns/d0-g0/s0', { value: v[3], versions: 2, marked: true }]]);
    expect(checkPaths(ledger, states, [landedAt('ns/d0-g0/s0', 2, 1), landedAt('ns/d0-g0/s0', 3, 2)]).excess).toEqual([]);
  });

  test('a missing path, or one without marks, is reported; ended targets are not live', () => {
    const { ledger } = make();
    ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0');
    ledger.startTarget('ns/d1-g0/s0', 'ns', 'd1', 'ns/s0');
    ledger.startTarget('ns/d2-g0/s0', 'ns', 'd2', 'ns/s0');
    ledger.endTarget('ns/d2-g0/s0', 'deleted');
    const states = new Map<string, PathState>([['ns/d1-g0/s0', { value: ledger.latest('ns/s0'), versions: 1, marked: false }]]);
    const result = checkPaths(ledger, states, []);
    expect(result.stale.map((f) => [f.path, f.holds])).toEqual([['ns/d0-g0/s0', -1]]);
    expect(result.unmarked).toEqual(['ns/d1-g0/s0']);
  });

  test('leftovers are sorted and told apart: deleted, moved, never asked for', () => {
    const { ledger } = make();
    for (const d of ['d0', 'd1', 'd2']) ledger.startTarget(`ns/${d}-g0/s0`, 'ns', d, 'ns/s0');
    ledger.endTarget('ns/d1-g0/s0', 'moved');
    ledger.startTarget('ns/d1-g1/s0', 'ns', 'd1', 'ns/s0');
    ledger.endTarget('ns/d2-g0/s0', 'deleted');
    expect(leftovers(['ns/zz/s0', 'ns/d2-g0/s0', 'ns/d1-g1/s0', 'ns/d1-g0/s0', 'ns/d0-g0/s0'], ledger)).toEqual({ deleted: ['ns/d2-g0/s0'], moved: ['ns/d1-g0/s0'], unknown: ['ns/zz/s0'] });
  });

  test('the ledger refuses a reused path and a value of a Secret with none', () => {
    const { ledger } = make();
    ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0');
    expect(() => ledger.startTarget('ns/d0-g0/s0', 'ns', 'd0', 'ns/s0')).toThrow('never reused');
    expect(() => ledger.startTarget('ns/d0-g0/s1', 'ns', 'd0', 'ns/s1')).toThrow('no value yet');
  });
});

test('leaked values are counted where they are found, and the sample shown does not repeat them', () => {
  let n = 0;
  const ledger = new ChaosLedger('cnryABCv', () => `deadbee${n++}`);
  const a = ledger.nextValue('ns/s0');
  const b = ledger.nextValue('ns/s1');
  const leaks = canaryLeaks(
    [
      { where: 'log of b', text: `{"msg":"wrote ${a} and ${b}"}` },
      { where: 'Events in ns', text: '[]' },
      { where: 'log of a', text: `value=${b}` },
    ],
    ledger.canaryPattern(),
  );
  expect(leaks.total).toBe(3);
  expect(leaks.found.map((f) => [f.where, f.count])).toEqual([['log of a', 1], ['log of b', 2]]);
  for (const f of leaks.found) expect(f.sample).not.toMatch(/cnryABCv\d/);
});

describe('the evidence a failing run prints', () => {
  const base = (): EvidenceInput => ({
    t0: 0,
    settled: true,
    settleTimeoutMs: 60_000,
    stillThere: [],
    observations: [obs(1000, 'a', 1000, 1000), obs(9000, 'b', 9000, 9000)],
    held: new Map([['a', [{ from: 1000, to: 5000 }]], ['b', [{ from: 9000, to: Infinity }]]]),
    markers: new Map([['a', [{ at: 1000, event: 'acquired' as const }, { at: 12_000, event: 'lost' as const }]]]),
    judgedByLeaseOnly: [],
    byNonHolders: [],
    paths: { stale: [], excess: [], unmarked: [], regressions: [] },
    left: { deleted: [], moved: [], unknown: [] },
    landed: [],
    replay: { requests: 10, rejected: 0, firstRejected: [], busiestSecond: 5 },
    bucket: { rate: 10, burst: 20, toleranceMs: 250 },
    requestsAtRest: 0,
    quietWindowMs: 5000,
    leaks: { total: 0, found: [] },
  });

  test('nothing to say when every check held', () => {
    expect(chaosEvidence(base())).toEqual([]);
  });

  test('a woken leader: who sent how much when, what it said of itself, the Lease history, then examples', () => {
    const lines = chaosEvidence({ ...base(), byNonHolders: [req('a', 11_000), { ...req('a', 11_500), status: 200 }, req('a', 11_800, 'GET', '/v1/auth/token/lookup-self')] });
    expect(lines[0]).toBe('a sent 3 requests without holding the Lease, from 11.00s to 11.80s: 2 KV writes, 1 applied by Vault; it held the Lease in [1.00s, 5.00s); its own account: acquired at 1.00s, lost at 12.00s');
    expect(lines[1]).toBe('the Lease: a from 1.00s, b from 9.00s');
    expect(lines[2]).toBe('requests by a replica not holding the Lease (writes first): 3');
    expect(lines.slice(3).map((l) => l.trim().split(' ')[1])).toEqual(['/v1/secret/data/ns/p', '/v1/secret/data/ns/p', '/v1/auth/token/lookup-self']);
  });

  test('bounded: at most 40 lines of at most 401 characters, however much went wrong', () => {
    const many = Array.from({ length: 500 }, (_, i) => `ns/${'x'.repeat(500)}-${i}/s0`);
    const lines = chaosEvidence({
      ...base(),
      settled: false,
      stillThere: many,
      byNonHolders: many.map((p, i) => req(`r${i}`, 20_000 + i, 'POST', `/v1/secret/data/${p}`)),
      left: { deleted: many, moved: many, unknown: many },
    });
    expect(lines).toHaveLength(40);
    expect(lines[39]).toMatch(/^… \d+ more lines$/);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(401);
  });
});
