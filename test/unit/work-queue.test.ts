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

describe('WorkQueue slots: a key waiting on Vault gives its worker back, and stays exclusive', () => {
  /** A process function whose runs wait until the test opens their gate. */
  function gated() {
    const gates = new Map<string, () => void>();
    const started: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const runningPerKey = new Map<string, number>();
    let overlapped = false;
    const process = async (key: string, slot: { release(): void }) => {
      started.push(key);
      running++;
      maxRunning = Math.max(maxRunning, running);
      runningPerKey.set(key, (runningPerKey.get(key) ?? 0) + 1);
      if (runningPerKey.get(key)! > 1) overlapped = true;
      slot.release();
      slot.release(); // idempotent
      await new Promise<void>((resolve) => gates.set(key, resolve));
      runningPerKey.set(key, runningPerKey.get(key)! - 1);
      running--;
    };
    const open = (key: string) => {
      const gate = gates.get(key);
      gates.delete(key);
      gate?.();
    };
    return { process, open, started, gates, stats: () => ({ maxRunning, overlapped }) };
  }

  test('a released slot lets other keys start while the first keeps running', async () => {
    const g = gated();
    const queue = new WorkQueue({ concurrency: 1, baseDelayMs: 10, maxDelayMs: 100, process: g.process });
    queue.start();
    for (const key of ['a', 'b', 'c']) queue.add(key);
    for (let i = 0; i < 20 && g.started.length < 3; i++) await tick();
    expect(g.started).toEqual(['a', 'b', 'c']); // one worker, three keys running
    expect(queue.inFlight).toBe(3);
    expect(queue.releasedInFlight).toBe(3);
    for (const key of ['a', 'b', 'c']) g.open(key);
    await tick();
    expect(queue.inFlight).toBe(0);
    expect(queue.releasedInFlight).toBe(0);
    await queue.shutdown();
  });

  test('a key added again while it runs on a released slot runs once more afterwards, never twice at once', async () => {
    const g = gated();
    const queue = new WorkQueue({ concurrency: 2, baseDelayMs: 10, maxDelayMs: 100, process: g.process });
    queue.start();
    queue.add('k');
    await tick();
    queue.add('k');
    queue.add('k');
    await tick();
    expect(g.started).toEqual(['k']);
    g.open('k');
    for (let i = 0; i < 20 && g.started.length < 2; i++) await tick();
    expect(g.started).toEqual(['k', 'k']);
    g.open('k');
    await tick();
    expect(g.stats().overlapped).toBe(false);
    expect(queue.inFlight).toBe(0);
    await queue.shutdown();
  });

  test('at the cap, release() keeps the slot: no more than workers + cap keys run at once', async () => {
    const g = gated();
    const queue = new WorkQueue({ concurrency: 2, baseDelayMs: 10, maxDelayMs: 100, maxReleased: 3, process: g.process });
    queue.start();
    for (let i = 0; i < 10; i++) queue.add(`k${i}`);
    for (let i = 0; i < 20 && g.started.length < 5; i++) await tick();
    await tick();
    expect(g.started).toHaveLength(5); // 3 on released slots, 2 holding the workers
    expect(queue.releasedInFlight).toBe(3);
    expect(queue.depth).toBe(5);
    for (const key of [...g.started]) g.open(key);
    for (let i = 0; i < 20 && g.started.length < 10; i++) await tick();
    expect(g.started).toHaveLength(10);
    for (const key of [...g.gates.keys()]) g.open(key);
    await tick();
    expect(g.stats().maxRunning).toBe(5);
    await queue.shutdown();
  });

  test('shutdown drains keys running on released slots and their failures still back off', async () => {
    const g = gated();
    let finished = 0;
    const errors: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      baseDelayMs: 10,
      maxDelayMs: 100,
      process: async (key, slot) => {
        await g.process(key, slot);
        finished++;
        if (key === 'bad') throw new Error('vault down');
      },
      onError: (key) => errors.push(key),
    });
    queue.start();
    queue.add('good');
    queue.add('bad');
    for (let i = 0; i < 20 && g.started.length < 2; i++) await tick();
    let drained = false;
    const shutdown = queue.shutdown().then(() => (drained = true));
    await tick();
    expect(drained).toBe(false); // both still run on released slots
    g.open('good');
    g.open('bad');
    await shutdown;
    expect(finished).toBe(2);
    expect(errors).toEqual(['bad']);
  });
});
