// The token bucket in front of every Vault call, on real time (Bottleneck runs on real timers): a higher rate
// than production keeps these tests short; the same code runs at 10/s in the e2e tests and the benchmark.
import { LimiterStoppedError, VaultRateLimiter, type LimiterStart } from '../../src/vault/limiter.js';
import { maxInAnyWindow } from '../e2e/helpers/fault-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * n requests, at most `depth` of them waiting in the limiter at a time (as the batcher feeds it): each start
 * schedules the next. Bottleneck spends ~2 ms per job on its own bookkeeping, so thousands queued at once
 * would measure Bottleneck, not the bucket.
 */
async function runBacklog(limiter: VaultRateLimiter, n: number, depth = n): Promise<number[]> {
  const starts: number[] = [];
  const all: Promise<void>[] = [];
  let scheduled = 0;
  const next = () => {
    if (scheduled >= n) return;
    scheduled++;
    all.push(limiter.schedule('write', async () => {
      starts.push(performance.now());
      next();
    }));
  };
  for (let i = 0; i < Math.min(depth, n); i++) next();
  while (all.length < n || scheduled < n) await Promise.all(all);
  await Promise.all(all);
  return starts;
}

describe('VaultRateLimiter: one exact token bucket (Bottleneck queue, precise refill)', () => {
  // Behaviour only: which starts spent burst credit, and that no window holds more than `rate`. How close the
  // throughput comes to the ideal (no idle gaps) is a speed figure: `npm run bench` measures it (convergence
  // efficiency), since on a loaded machine any upper bound on time is a coin toss.
  test('a backlog gets exactly `burst` starts from credit, then paced ones: never rate+1 in any 1-s window, never faster than the ideal', async () => {
    const rate = 50;
    const burst = 10;
    const n = 160;
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate, burst, onStart: (e) => events.push(e) });
    const t0 = performance.now();
    const starts = await runBacklog(limiter, n, burst + 5);
    await limiter.stop();
    const ideal = ((n - burst) / rate) * 1000;
    // The last token of the burst already counts in the paced window (granted from credit < 2), so burst − 1 are
    // flagged as burst credit; every later start is paced.
    expect(events.map((e) => e.paced)).toEqual([...Array(burst - 1).fill(false), ...Array(n - burst + 1).fill(true)]);
    expect(starts[burst] - t0).toBeGreaterThanOrEqual(1000 / rate - 1); // the first paced start waits for a refill
    expect(maxInAnyWindow(starts, 1000, starts[burst - 1] + 0.001)).toBeLessThanOrEqual(rate);
    expect(starts[n - 1] - t0).toBeGreaterThanOrEqual(ideal * 0.99);
  }, 60_000);

  test('the window counts when requests were sent: one that left late pushes the request K after it back', async () => {
    const limiter = new VaultRateLimiter({ rate: 10, burst: 1 });
    const sends: number[] = [];
    await Promise.all(
      Array.from({ length: 13 }, (_, i) =>
        limiter.schedule('write', async (permit) => {
          // Request 1 spends 60 ms between its start and the socket (a blocked event loop, a slow connect).
          if (i === 1) await sleep(60);
          sends.push(performance.now());
          permit.sent();
        }),
      ),
    );
    await limiter.stop();
    expect(maxInAnyWindow(sends, 1000)).toBeLessThanOrEqual(10);
    sends.sort((a, b) => a - b);
    expect(sends[11] - sends[1]).toBeGreaterThanOrEqual(999);
  }, 10_000);

  test('the budget refills while idle, up to `burst`, and is spent again as a burst', async () => {
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate: 20, burst: 5, onStart: (e) => events.push(e) });
    await runBacklog(limiter, 5); // empties the bucket
    // At least 12 tokens' worth of idle time (a loaded machine only makes it longer), capped at 5.
    await sleep(600);
    const t1 = performance.now();
    events.length = 0;
    const starts = await runBacklog(limiter, 8);
    await limiter.stop();
    // Counted by kind, not by time: the saved credit (5, the last of them counted in the paced window) is spent
    // at once, the other three wait for the refill.
    expect(events.map((e) => e.paced)).toEqual([false, false, false, false, true, true, true, true]);
    expect(starts[7] - t1).toBeGreaterThanOrEqual(140); // a lower bound (50 ms per refill): holds under any load
  });

  test('work waiting upstream (the batcher) is not idle time: a gap between two batches saves no burst; credit saved while truly idle stays', async () => {
    let upstreamSince: number | undefined;
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate: 20, burst: 5, upstreamWaitingSince: () => upstreamSince, onStart: (e) => events.push(e) });
    upstreamSince = performance.now(); // from here on, work waits in the batcher
    await runBacklog(limiter, 5); // empties the bucket
    await sleep(600); // 12 tokens' worth of time between two batches, but not idle
    await runBacklog(limiter, 3);
    expect(events.slice(5).map((e) => e.paced)).toEqual([true, true, true]);
    upstreamSince = undefined; // nothing waits anywhere: this is idle time
    await sleep(600);
    upstreamSince = performance.now();
    await runBacklog(limiter, 5);
    await limiter.stop();
    expect(events.slice(8).filter((e) => !e.paced).length).toBeGreaterThanOrEqual(4); // the refilled bucket, spent as a burst
  });

  test('a non-integer rate is exact over its own window (2.5/s: at most 2 in any 0.8 s)', async () => {
    const limiter = new VaultRateLimiter({ rate: 2.5, burst: 1 });
    const starts = await runBacklog(limiter, 4);
    await limiter.stop();
    expect(maxInAnyWindow(starts, 800)).toBeLessThanOrEqual(2);
    expect(starts[3] - starts[0]).toBeGreaterThanOrEqual(1190);
  });

  test('every start is reported with its operation and the time it waited for a token', async () => {
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate: 20, burst: 1, onStart: (e) => events.push(e) });
    await Promise.all([limiter.schedule('login', async () => 1), limiter.schedule('write', async () => 2)]);
    await limiter.stop();
    expect(events.map((e) => e.operation)).toEqual(['login', 'write']);
    expect(events[1].waitedMs).toBeGreaterThanOrEqual(45);
  });

  test('higher priority (logins, renewals) goes before a backlog of writes', async () => {
    // The clock stands still until Bottleneck has received all six requests (it takes them in asynchronously):
    // on a loaded machine that can take longer than one token's interval, and a second token granted before the
    // login was queued would start w1 first (the order of arrival, not the priority, would be under test).
    let frozen = true;
    const start = performance.now();
    const limiter = new VaultRateLimiter({ rate: 20, burst: 1, clock: () => (frozen ? start : performance.now()) });
    const order: string[] = [];
    const writes = Array.from({ length: 5 }, (_, i) => limiter.schedule('write', async () => void order.push(`w${i}`)));
    const login = limiter.schedule('login', async () => void order.push('login'), { priority: 1 });
    while (limiter.bottleneck.counts().RECEIVED > 0) await new Promise((resolve) => setImmediate(resolve));
    frozen = false;
    await Promise.all([...writes, login]);
    await limiter.stop();
    expect(order.indexOf('login')).toBeLessThanOrEqual(1);
  });

  test('a failing task rejects its own call only', async () => {
    const limiter = new VaultRateLimiter({ rate: 100, burst: 3 });
    const results = await Promise.allSettled([
      limiter.schedule('write', async () => 'a'),
      limiter.schedule('write', async () => { throw new Error('boom'); }),
      limiter.schedule('write', async () => 'c'),
    ]);
    await limiter.stop();
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  test('stop() rejects waiting requests with a clear error and refuses new ones', async () => {
    const limiter = new VaultRateLimiter({ rate: 1, burst: 1 });
    await limiter.schedule('write', async () => undefined);
    const waiting = limiter.schedule('write', async () => 'never');
    await limiter.stop();
    await expect(waiting).rejects.toBeInstanceOf(LimiterStoppedError);
    await expect(limiter.schedule('write', async () => 'x')).rejects.toThrow(/stopped/);
  });

  test.each([
    [{ rate: 0, burst: 20 }, /rate limit must be a positive number/],
    [{ rate: -5, burst: 20 }, /rate limit must be a positive number/],
    [{ rate: Number.NaN, burst: 20 }, /rate limit must be a positive number/],
    [{ rate: 10, burst: 0 }, /burst must be a whole number >= 1/],
    [{ rate: 10, burst: 1.5 }, /burst must be a whole number >= 1/],
  ])('refuses %j with a message naming the setting', (limit, message) => {
    expect(() => new VaultRateLimiter(limit)).toThrow(message);
  });
});
