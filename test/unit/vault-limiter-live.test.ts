// The limiter's live limit (a shard holder's share of the shared Vault budget changes while it runs) and its
// share gate. Real timers, as in vault-limiter.test.ts: every bound on time here is a lower bound (a loaded
// machine only makes things slower), so none of these can fail on a busy machine.
import { VaultRateLimiter, type LimiterStart } from '../../src/vault/limiter.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function schedule(limiter: VaultRateLimiter, n: number, starts: number[]): Promise<void[]> {
  return Promise.all(Array.from({ length: n }, () => limiter.schedule('write', async () => void starts.push(performance.now()))));
}

describe('VaultRateLimiter.setLimit: a share that changes live', () => {
  test('a shrink clips the credit saved while idle at once: a backlog then gets the new burst, not the old one', async () => {
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate: 20, burst: 20, onStart: (e) => events.push(e) });
    limiter.setLimit({ rate: 20, burst: 3 });
    expect({ rate: limiter.rate, burst: limiter.burst }).toEqual({ rate: 20, burst: 3 });
    const t0 = performance.now();
    const starts: number[] = [];
    await schedule(limiter, 10, starts);
    await limiter.stop();
    // Credit 3 gives 2 burst grants (the last whole token is paced); the other 8 follow the rate.
    expect(events.filter((e) => !e.paced)).toHaveLength(2);
    expect(starts[9] - t0).toBeGreaterThanOrEqual(((10 - 3) / 20) * 1000 - 1);
  });

  test('a grow adds no tokens: a backlog right after it is paced at the new rate from the credit it had', async () => {
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate: 20, burst: 1, onStart: (e) => events.push(e) });
    await schedule(limiter, 1, []); // spends the one token
    const t0 = performance.now();
    limiter.setLimit({ rate: 20, burst: 20 });
    const starts: number[] = [];
    await schedule(limiter, 8, starts);
    await limiter.stop();
    expect(events.slice(1).every((e) => e.paced)).toBe(true);
    // 8 requests from (almost) no credit at 20/s: at least 7 intervals of 50 ms.
    expect(starts[7] - t0).toBeGreaterThanOrEqual(7 * 50 - 1);
  });

  test('rate 0 holds every request until the rate is raised; none starts before', async () => {
    const limiter = new VaultRateLimiter({ rate: 50, burst: 5 });
    limiter.setLimit({ rate: 0, burst: 0 });
    const starts: number[] = [];
    const done = schedule(limiter, 3, starts);
    await sleep(150);
    expect(starts).toEqual([]);
    expect(limiter.queued).toBe(3);
    const raisedAt = performance.now();
    limiter.setLimit({ rate: 50, burst: 5 });
    await done;
    await limiter.stop();
    expect(starts).toHaveLength(3);
    expect(Math.min(...starts)).toBeGreaterThanOrEqual(raisedAt);
  });

  test('under a live limit the limiter starts empty: a new engine fills its bucket at the rate, it does not burst', async () => {
    const events: LimiterStart[] = [];
    const t0 = performance.now();
    const limiter = new VaultRateLimiter({ rate: 20, burst: 10, initialCredit: 0, onStart: (e) => events.push(e) });
    const starts: number[] = [];
    await schedule(limiter, 3, starts);
    await limiter.stop();
    expect(events.every((e) => e.paced)).toBe(true);
    expect(starts[0] - t0).toBeGreaterThanOrEqual(50 - 1);
    expect(starts[2] - t0).toBeGreaterThanOrEqual(3 * 50 - 1);
  });

  test('refuses a negative or non-numeric limit with the setting named', () => {
    const limiter = new VaultRateLimiter({ rate: 10, burst: 2 });
    expect(() => limiter.setLimit({ rate: -1, burst: 1 })).toThrow('a live Vault rate must be a number >= 0, got -1');
    expect(() => limiter.setLimit({ rate: 1, burst: Number.NaN })).toThrow('a live Vault burst must be a number >= 0, got NaN');
    void limiter.stop();
  });
});

describe('VaultRateLimiter share gate: a lapsed share sends nothing and fails nothing', () => {
  test('a request refused by the share gate goes back into the line and runs once, after the share is valid again', async () => {
    let valid = false;
    let asked = 0;
    const limiter = new VaultRateLimiter({ rate: 50, burst: 5, shareGate: { holds: () => (asked++, valid) } });
    let ran = 0;
    const result = limiter.schedule('write', async () => ++ran);
    // Refused at least twice (the re-queued request comes back for a new token), never run.
    while (asked < 2) await sleep(5);
    expect(ran).toBe(0);
    valid = true;
    await expect(result).resolves.toBe(1);
    expect(ran).toBe(1);
    await limiter.stop();
  });
});
