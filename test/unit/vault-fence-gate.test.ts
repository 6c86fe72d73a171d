// The fence at the one chokepoint of every Vault request (the rate limiter, at the moment a job starts),
// and the stop-at-once on loss: the batcher's waiting work rejected, the limiter's queue dropped, retries'
// backoffs cut short. Real limiter, batcher and retry code; the requests are counted instead of sent.
import { LeaseFence } from '../../src/kube/lease-fence.js';
import { VaultBatcher, type VaultOperation } from '../../src/vault/batcher.js';
import { VaultRequestError } from '../../src/vault/errors.js';
import { LimiterStoppedError, VaultRateLimiter } from '../../src/vault/limiter.js';
import { parseKvPathLoose } from '../../src/vault/path.js';
import { RetriesCancelled, withRetries } from '../../src/vault/retry.js';

/** A fence on a clock the test moves (its expiry timer never fires: holds() alone must decide). */
function fenceOnClock() {
  let now = 0;
  const fence = new LeaseFence({ renewDeadlineMs: 1_000, clock: () => now, setTimer: () => ({ cancel: () => undefined }) });
  fence.acquired(fence.sendTime());
  return { fence, expire: () => (now += 1_000) };
}

const kindOf = (error: unknown) => (error instanceof VaultRequestError ? error.kind : String(error));

test('a request queued while the lease was valid and started after it expired is never sent; each refusal is counted, the first one said once', async () => {
  const { fence, expire } = fenceOnClock();
  const fenced: Array<{ operation: string; first: boolean }> = [];
  // Burst 1: the first request goes at once, the others wait for tokens behind it.
  const limiter = new VaultRateLimiter({ rate: 100, burst: 1, gate: fence, onFenced: (e) => fenced.push({ operation: e.operation, first: e.first }) });
  const sent: string[] = [];
  const first = limiter.schedule('write', async () => {
    sent.push('a');
    expire(); // the process froze here: when it wakes, the lease is past its deadline
  });
  const queued = ['b', 'c', 'd'].map((name) => limiter.schedule(name === 'b' ? 'login' : 'write', async () => void sent.push(name), { label: `secret/${name}` }));
  await first;
  const outcomes = await Promise.allSettled(queued);
  expect(sent).toEqual(['a']);
  expect(outcomes.map((o) => (o.status === 'rejected' ? kindOf(o.reason) : 'sent'))).toEqual(['fenced', 'fenced', 'fenced']);
  const error = (outcomes[1] as PromiseRejectedResult).reason as VaultRequestError;
  expect(error.retryable).toBe(false);
  expect(error.message).toMatch(/^Vault write secret\/c failed: not sent: .*renew deadline/);
  expect(fenced).toEqual([
    { operation: 'login', first: true },
    { operation: 'write', first: false },
    { operation: 'write', first: false },
  ]);
  await limiter.stop();
});

test('a fenced request is not retried: one refusal, no backoff', async () => {
  const { fence, expire } = fenceOnClock();
  expire();
  const limiter = new VaultRateLimiter({ rate: 100, burst: 5, gate: fence });
  let attempts = 0;
  let sends = 0;
  const result = withRetries(
    () => {
      attempts++;
      return limiter.schedule('write', async () => void sends++);
    },
    { retries: 5, minDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
  );
  await expect(result).rejects.toMatchObject({ kind: 'fenced' });
  expect({ attempts, sends }).toEqual({ attempts: 1, sends: 0 });
  await limiter.stop();
});

test('on loss: waiting operations are rejected, the limiter queue is dropped, retries in backoff end at once, nothing is sent afterwards', async () => {
  const { fence } = fenceOnClock();
  // One token, then one every 100 s: a second request waits in the limiter's queue.
  const limiter = new VaultRateLimiter({ rate: 0.01, burst: 1, gate: fence });
  const cancel = new AbortController();
  const sent: string[] = [];
  let inBackoff!: () => void;
  const backoffStarted = new Promise<void>((resolve) => (inBackoff = resolve));
  // Each operation is one request through the limiter, retried with a backoff that only an abort ends (as the client does).
  const execute = (operation: VaultOperation) =>
    withRetries(
      (attempt) =>
        limiter
          .schedule(operation.kind, async () => {
            sent.push(`${operation.path.key}#${attempt}`);
            if (operation.path.key.endsWith('flaky')) throw new VaultRequestError('write', operation.path.key, 503, 'server', 'HTTP 503');
          })
          .catch((error: unknown) => {
            throw error instanceof LimiterStoppedError ? new VaultRequestError(operation.kind, operation.path.key, undefined, 'stopped', 'stopped') : error;
          }),
      { retries: 5, minDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1, signal: cancel.signal },
      {
        sleep: () => {
          inBackoff();
          return new Promise<void>(() => undefined); // a 2-minute Retry-After, say: never ends by itself
        },
      },
    );
  const batcher = new VaultBatcher({
    batchSize: 1,
    execute: (operation, hooks) => {
      hooks.onStart();
      return execute(operation);
    },
  });
  const write = (name: string) => batcher.submit<void>({ kind: 'write', path: parseKvPathLoose(`secret/app/${name}`), data: new Map([['k', 'v']]) }, { source: 'Secret/ns/app' });
  const flaky = write('flaky');
  await backoffStarted; // the flaky write failed once (the burst token) and waits to retry
  const inLimiter = write('next');
  while (limiter.queued === 0) await new Promise((resolve) => setImmediate(resolve)); // handed over, waiting for a token
  const waiting = ['w1', 'w2', 'w3'].map(write);
  expect(batcher.waiting).toBe(3);
  const settled = Promise.allSettled([flaky, inLimiter, ...waiting]);

  // The Lease is lost: what the stack's abort does, in its order.
  fence.revoke('the lease is now held by other');
  cancel.abort(new RetriesCancelled('fenced', 'the lease is now held by other'));
  batcher.abort('the lease is now held by other');
  await limiter.stop();

  const outcomes = await settled;
  expect(outcomes.map((o) => (o.status === 'rejected' ? kindOf(o.reason) : 'sent'))).toEqual(['fenced', 'stopped', 'fenced', 'fenced', 'fenced']);
  expect((outcomes[0] as PromiseRejectedResult).reason.message).toMatch(/not retried after server: the lease is now held by other/);
  expect(sent).toEqual(['app/flaky#1']); // its first attempt only: nothing after the loss
  expect(batcher.waiting).toBe(0);
});
