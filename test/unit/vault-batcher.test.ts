// Batching groups operations; it does not throttle (the limiter does). A fake executor stands in for the
// client: these tests are about grouping, merging, ordering and error isolation only.
import { Metrics } from '../../src/observability/metrics.js';
import { VaultBatcher, type VaultOperation } from '../../src/vault/batcher.js';
import { VaultRequestError } from '../../src/vault/errors.js';

const path = (key: string) => ({ mount: 'secret', key });
/** Lets the batcher run: settled promises first, then its setImmediate dispatch. */
const tick = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** An executor whose operations start and finish when the test says so. */
function controlledExecutor() {
  const calls: Array<{ operation: VaultOperation; start(): void; finish(value?: unknown): void; fail(error: unknown): void }> = [];
  const execute = (operation: VaultOperation, hooks: { onStart(): void }) =>
    new Promise<unknown>((resolve, reject) => {
      calls.push({ operation, start: () => hooks.onStart(), finish: (value) => resolve(value), fail: reject });
    });
  return { calls, execute };
}

describe('VaultBatcher: groups, merges waiting writes to one path, keeps per-path order, isolates failures', () => {
  test('operations asked for together go out in batches of at most batchSize; the next batch goes once the previous one got its tokens', async () => {
    const { calls, execute } = controlledExecutor();
    const metrics = new Metrics({ processMetrics: false });
    const batcher = new VaultBatcher({ batchSize: 5, execute, metrics });
    const results = Array.from({ length: 12 }, (_, i) => batcher.submit({ kind: 'write', path: path(`p${i}`), data: new Map(Object.entries({ v: String(i) })) }));
    await tick();
    expect(calls).toHaveLength(5); // one batch; the rest waits in the batcher, where it can still be merged
    expect(batcher.waiting).toBe(12);
    for (const call of calls.slice(0, 4)) call.start();
    await tick();
    expect(calls).toHaveLength(5); // one operation of the batch still waits for its token
    calls[4].start();
    await tick();
    expect(calls).toHaveLength(10);
    for (const call of calls.slice(5)) call.start();
    await tick();
    expect(calls).toHaveLength(12);
    calls.forEach((call, i) => call.finish({ version: i }));
    await Promise.all(results);
    await batcher.stop();
    const text = await metrics.registry.metrics();
    expect(text).toContain('vault_batch_size_histogram_count 3');
    expect(text).toContain('vault_batch_size_histogram_sum 12');
    expect(text).toContain('vault_batch_operations_total{result="success"} 12');
  });

  test('writes to one path still waiting merge into one: the newest content is written once and every caller gets its result', async () => {
    const { calls, execute } = controlledExecutor();
    const metrics = new Metrics({ processMetrics: false });
    const batcher = new VaultBatcher({ batchSize: 1, execute, metrics });
    const first = batcher.submit({ kind: 'write', path: path('busy'), data: new Map(Object.entries({ v: 'a' })) }); // occupies the only slot
    await tick();
    const older = batcher.submit({ kind: 'write', path: path('x'), data: new Map(Object.entries({ v: 'old' })), cas: 1 });
    const newer = batcher.submit({ kind: 'write', path: path('x'), data: new Map(Object.entries({ v: 'new' })), cas: 1 });
    const newest = batcher.submit({ kind: 'write', path: path('x'), data: new Map(Object.entries({ v: 'newest' })), cas: 1 });
    calls[0].start();
    await tick();
    expect(calls).toHaveLength(2);
    expect(calls[1].operation).toEqual({ kind: 'write', path: path('x'), data: new Map(Object.entries({ v: 'newest' })), cas: 1 });
    calls[1].start();
    calls[0].finish({ version: 7 });
    calls[1].finish({ version: 2 });
    expect(await Promise.all([first, older, newer, newest])).toEqual([{ version: 7 }, { version: 2 }, { version: 2 }, { version: 2 }]);
    expect(calls).toHaveLength(2);
    expect(await metrics.registry.metrics()).toContain('vault_batch_coalesced_total{operation="write"} 2');
    await batcher.stop();
  });

  test('a write is not merged across another operation on the same path (order is kept)', async () => {
    const { calls, execute } = controlledExecutor();
    const batcher = new VaultBatcher({ batchSize: 5, execute });
    const a = batcher.submit({ kind: 'write', path: path('x'), data: new Map(Object.entries({ v: '1' })) });
    const m = batcher.submit({ kind: 'write-metadata', path: path('x'), customMetadata: { owner: 'me' } });
    const b = batcher.submit({ kind: 'write', path: path('x'), data: new Map(Object.entries({ v: '2' })) });
    await tick();
    // One operation per path in flight: the metadata write and the second write wait, in order.
    expect(calls.map((c) => c.operation.kind)).toEqual(['write']);
    calls[0].start();
    calls[0].finish('a');
    await tick();
    expect(calls.map((c) => c.operation.kind)).toEqual(['write', 'write-metadata']);
    calls[1].start();
    calls[1].finish('m');
    await tick();
    expect(calls.map((c) => c.operation.kind)).toEqual(['write', 'write-metadata', 'write']);
    expect((calls[2].operation as { data: unknown }).data).toEqual(new Map([['v', '2']]));
    calls[2].start();
    calls[2].finish('b');
    expect(await Promise.all([a, m, b])).toEqual(['a', 'm', 'b']);
    await batcher.stop();
  });

  test('one failed operation fails only its own callers; the rest of its batch succeeds', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const batcher = new VaultBatcher({
      batchSize: 5,
      metrics,
      execute: async (operation, hooks) => {
        hooks.onStart();
        if (operation.path.key === 'bad') throw new VaultRequestError('write', 'secret/bad', 403, 'forbidden', 'HTTP 403: permission denied');
        return { version: 1 };
      },
    });
    const results = await Promise.allSettled(['a', 'bad', 'c'].map((key) => batcher.submit({ kind: 'write', path: path(key), data: new Map(Object.entries({ v: key })) })));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(VaultRequestError);
    await batcher.stop();
    const text = await metrics.registry.metrics();
    expect(text).toContain('vault_batch_operations_total{result="success"} 2');
    expect(text).toContain('vault_batch_operations_total{result="failure"} 1');
  });

  test('an operation that fails before it got a token (no onStart) does not hold up the next batch', async () => {
    let n = 0;
    const batcher = new VaultBatcher({
      batchSize: 1,
      execute: async (_operation, hooks) => {
        if (n++ === 0) throw new Error('failed before any request');
        hooks.onStart();
        return 'ok';
      },
    });
    const results = await Promise.allSettled([batcher.submit({ kind: 'read', path: path('a') }), batcher.submit({ kind: 'read', path: path('b') })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    await batcher.stop();
  });

  test('equal reads still waiting share one request', async () => {
    const { calls, execute } = controlledExecutor();
    const batcher = new VaultBatcher({ batchSize: 5, execute });
    const reads = [batcher.submit({ kind: 'read-metadata', path: path('x') }), batcher.submit({ kind: 'read-metadata', path: path('x') })];
    await tick();
    expect(calls).toHaveLength(1);
    calls[0].start();
    calls[0].finish({ currentVersion: 3 });
    expect(await Promise.all(reads)).toEqual([{ currentVersion: 3 }, { currentVersion: 3 }]);
    await batcher.stop();
  });

  test('stop() rejects what still waits with a clear error and refuses new work', async () => {
    const { calls, execute } = controlledExecutor();
    const batcher = new VaultBatcher({ batchSize: 1, execute });
    const inFlight = batcher.submit({ kind: 'write', path: path('a'), data: new Map(Object.entries({})) });
    const waiting = batcher.submit({ kind: 'write', path: path('b'), data: new Map(Object.entries({})) });
    await tick();
    const stopped = batcher.stop();
    calls[0].start();
    calls[0].finish('done');
    await stopped;
    await expect(inFlight).resolves.toBe('done');
    await expect(waiting).rejects.toMatchObject({ kind: 'stopped' });
    await expect(batcher.submit({ kind: 'read', path: path('c') })).rejects.toThrow(/shutting down/);
  });

  test.each([0, -1, 2.5])('batch size %p is refused with a message naming the setting', (batchSize) => {
    expect(() => new VaultBatcher({ batchSize, execute: async () => undefined })).toThrow(/batch size must be a whole number >= 1/);
  });
});
