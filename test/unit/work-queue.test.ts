import { WorkQueue } from '../../src/queue/work-queue.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('WorkQueue: de-duplicating, never concurrent per key, backoff on failure', () => {
  test('a key added many times while queued is processed once', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const queue = new WorkQueue({ concurrency: 1, baseDelayMs: 10, maxDelayMs: 100, process: async (key) => { seen.push(key); if (key === 'block') await gate; } });
    queue.start();
    queue.add('block');
    await tick();
    for (let i = 0; i < 5; i++) queue.add('a');
    release();
    await tick();
    await tick();
    expect(seen).toEqual(['block', 'a']);
    await queue.shutdown();
  });

  test('a key added while it is processed runs again afterwards, not concurrently', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const queue = new WorkQueue({
      concurrency: 4,
      baseDelayMs: 10,
      maxDelayMs: 100,
      process: async () => {
        running++; runs++;
        maxRunning = Math.max(maxRunning, running);
        await tick();
        running--;
      },
    });
    queue.start();
    queue.add('k');
    await new Promise((r) => setTimeout(r, 1));
    queue.add('k');
    queue.add('k');
    for (let i = 0; i < 10 && runs < 2; i++) await tick();
    await tick();
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
    await queue.shutdown();
  });

  test('failures back off exponentially per key and the key is retried, never dropped', async () => {
    const delays: number[] = [];
    let attempts = 0;
    const queue = new WorkQueue({
      concurrency: 1,
      baseDelayMs: 10,
      maxDelayMs: 40,
      random: () => 0.5, // no jitter
      process: async () => {
        attempts++;
        if (attempts < 5) throw new Error('vault down');
      },
      onError: (_key, _error, _attempt, retryInMs) => delays.push(retryInMs),
    });
    queue.start();
    queue.add('k');
    for (let i = 0; i < 100 && attempts < 5; i++) await tick();
    expect(attempts).toBe(5);
    expect(delays).toEqual([10, 20, 40, 40]);
    await queue.shutdown();
  });
});
