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
  test('a backlog gets the burst at once, then exactly `rate` per second: never rate+1 in any 1-s window, no idle gaps', async () => {
    const rate = 50;
    const burst = 10;
    const n = 160;
    const limiter = new VaultRateLimiter({ rate, burst });
    const t0 = performance.now();
    const starts = await runBacklog(limiter, n, burst + 5);
    await limiter.stop();

    const ideal = ((n - burst) / rate) * 1000;
    const gaps = starts.slice(burst).map((t, i) => t - starts[burst - 1 + i]);
    const figures = {
      // The initial burst: `burst` requests at once (Bottleneck takes ~2 ms to start each job)...
      burstSpanMs: Math.round(starts[burst - 1] - starts[0]),
      // ...the next one a refill interval after the start.
      firstPacedAfterMs: Math.round(starts[burst] - t0),
      // After it, any 1-s window holds at most `rate` starts.
      maxIn1sAfterBurst: maxInAnyWindow(starts, 1000, starts[burst - 1] + 0.001),
      // The budget is used: (n - burst) / rate seconds, plus the margin (10 ms/s) and a little jitter.
      elapsedOverIdeal: Math.round(((starts[n - 1] - t0) / ideal) * 1000) / 1000,
      // No idle gap while work waits: consecutive starts about one refill interval apart (a late timer or
      // Bottleneck's own ~2 ms per job can stretch one gap; the anchored refill makes the next one shorter).
      longestGapMs: Math.round(Math.max(...gaps)),
    };
    const expected = {
      burstSpanMs: figures.burstSpanMs < 80,
      firstPacedAfterMs: figures.firstPacedAfterMs >= 1000 / rate - 1,
      maxIn1sAfterBurst: figures.maxIn1sAfterBurst <= rate,
      elapsedOverIdeal: figures.elapsedOverIdeal >= 0.99 && figures.elapsedOverIdeal < 1.03,
      longestGapMs: figures.longestGapMs < 3 * (1000 / rate) + 20,
    };
    expect({ figures, expected }).toEqual({ figures, expected: { burstSpanMs: true, firstPacedAfterMs: true, maxIn1sAfterBurst: true, elapsedOverIdeal: true, longestGapMs: true } });
  }, 20_000);

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
    const limiter = new VaultRateLimiter({ rate: 20, burst: 5 });
    await runBacklog(limiter, 5); // empties the bucket
    await sleep(600); // 12 tokens' worth of idle time, capped at 5
    const t1 = performance.now();
    const starts = await runBacklog(limiter, 8);
    await limiter.stop();
    expect(starts.filter((t) => t - t1 < 40)).toHaveLength(5);
    expect(starts[7] - t1).toBeGreaterThanOrEqual(140); // the other three wait for the refill (50 ms each)
  });

  test('work waiting upstream (the batcher) is not idle time: a gap between two batches saves no burst; credit saved while truly idle stays', async () => {
    let upstreamSince: number | undefined;
    const events: LimiterStart[] = [];
    const limiter = new VaultRateLimiter({ rate: 20, burst: 5, upstreamWaitingSince: () => upstreamSince, onStart: (e) => events.push(e) });
    await runBacklog(limiter, 5); // empties the bucket
    upstreamSince = performance.now(); // the next batch waits in the batcher meanwhile
    await sleep(600); // 12 tokens' worth of time, but not idle
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
    const limiter = new VaultRateLimiter({ rate: 20, burst: 1 });
    const order: string[] = [];
    const writes = Array.from({ length: 5 }, (_, i) => limiter.schedule('write', async () => void order.push(`w${i}`)));
    const login = limiter.schedule('login', async () => void order.push('login'), { priority: 1 });
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
