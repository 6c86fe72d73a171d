// The retry policy: which failures are retried, how long it waits, and what is thrown in the end.
// Sleeps are recorded instead of slept; the attempts are plain functions (each would take a limiter token).
import { toVaultError, VaultRequestError, VaultTransportError } from '../../src/vault/errors.js';
import { retryDelayMs, withRetries, type RetryPolicy } from '../../src/vault/retry.js';

const policy: RetryPolicy = { retries: 4, minDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 60_000 };
const error = (statusCode: number | undefined, kind: VaultRequestError['kind'], retryAfterSeconds?: number) =>
  new VaultRequestError('write', 'secret/x', statusCode, kind, `HTTP ${statusCode}`, retryAfterSeconds);

function failing(errors: VaultRequestError[], result = 'ok') {
  let calls = 0;
  const attempt = async () => {
    const e = errors[calls++];
    if (e) throw e;
    return result;
  };
  return { attempt, calls: () => calls };
}

describe('withRetries: p-retry with exponential backoff, jitter and Retry-After', () => {
  test.each([
    ['connection', undefined],
    ['timeout', undefined],
    ['server', 500],
    ['server', 503],
    ['rate-limited', 429],
  ] as const)('a %s failure (%p) is retried until it succeeds', async (kind, status) => {
    const sleeps: number[] = [];
    const { attempt, calls } = failing([error(status, kind), error(status, kind)]);
    await expect(withRetries(attempt, policy, { sleep: async (ms) => void sleeps.push(ms), random: () => 0 })).resolves.toBe('ok');
    expect(calls()).toBe(3);
    expect(sleeps).toEqual([100, 200]); // exponential
  });

  test.each([
    ['forbidden', 403],
    ['bad-request', 400],
    ['not-found', 404],
    ['cas-mismatch', 400],
    ['too-large', 413],
  ] as const)('a terminal %s failure (%p) is not retried', async (kind, status) => {
    const sleeps: number[] = [];
    const { attempt, calls } = failing([error(status, kind)]);
    await expect(withRetries(attempt, policy, { sleep: async (ms) => void sleeps.push(ms) })).rejects.toMatchObject({ kind, statusCode: status });
    expect(calls()).toBe(1);
    expect(sleeps).toEqual([]);
  });

  test('when the retries are spent, the last error is thrown (and the source is re-queued by the work queue)', async () => {
    const sleeps: number[] = [];
    const { attempt, calls } = failing(Array.from({ length: 10 }, () => error(503, 'server')));
    await expect(withRetries(attempt, policy, { sleep: async (ms) => void sleeps.push(ms), random: () => 0 })).rejects.toBeInstanceOf(VaultRequestError);
    expect(calls()).toBe(policy.retries + 1);
    expect(sleeps).toEqual([100, 200, 400, 800]); // no sleep after the last attempt
  });

  test('Retry-After wins when it is longer than the backoff; the backoff wins when it is longer', async () => {
    expect(retryDelayMs(error(429, 'rate-limited', 3), 1, policy, () => 0)).toBe(3000);
    expect(retryDelayMs(error(429, 'rate-limited', 0.05), 1, policy, () => 0)).toBe(100);
    expect(retryDelayMs(error(429, 'rate-limited', 3600), 1, policy, () => 0)).toBe(60_000); // capped
    const sleeps: number[] = [];
    const { attempt } = failing([error(429, 'rate-limited', 2)]);
    await withRetries(attempt, policy, { sleep: async (ms) => void sleeps.push(ms), random: () => 0 });
    expect(sleeps).toEqual([2000]);
  });

  test('jitter spreads delays in [d, 2d), capped at maxDelayMs', () => {
    expect(retryDelayMs(error(500, 'server'), 2, policy, () => 0)).toBe(200);
    expect(retryDelayMs(error(500, 'server'), 2, policy, () => 0.999)).toBe(400);
    expect(retryDelayMs(error(500, 'server'), 10, policy, () => 0.5)).toBe(1000);
  });

  test('every retry is reported (for the retries metric)', async () => {
    const seen: Array<[string, number]> = [];
    const { attempt } = failing([error(500, 'server'), error(429, 'rate-limited')]);
    await withRetries(attempt, policy, { sleep: async () => undefined, onRetry: (e, n) => void seen.push([e.kind, n]) });
    expect(seen).toEqual([['server', 1], ['rate-limited', 2]]);
  });
});

describe('errors never carry the request body', () => {
  test('a transport error becomes a VaultRequestError with operation, path, status and Vault\'s plain message only', () => {
    const e = toVaultError('write', 'secret/app', new VaultTransportError(403, undefined, ['1 error occurred:\n\t* permission denied\n\n']));
    expect(e.message).toBe('Vault write secret/app failed: HTTP 403: 1 error occurred: * permission denied');
    expect(e.kind).toBe('forbidden');
    expect(e.retryable).toBe(false);
    expect(Object.values(e)).not.toContainEqual(expect.objectContaining({ data: expect.anything() }));
  });

  test('a Vault message that is not plain text is dropped, not echoed', () => {
    const e = toVaultError('write', 'secret/app', new VaultTransportError(400, undefined, ['bad value: {"password":"hunter2"}']));
    expect(e.message).toBe('Vault write secret/app failed: HTTP 400');
  });

  test('an axios-like error holding the request body yields only the status', () => {
    const axiosLike = { message: 'Request failed', config: { data: '{"data":{"password":"hunter2"}}' }, response: { status: 500, headers: { 'retry-after': '7' } } };
    const e = toVaultError('write', 'secret/app', axiosLike);
    expect(JSON.stringify({ ...e, message: e.message })).not.toContain('hunter2');
    expect(e).toMatchObject({ statusCode: 500, kind: 'server', retryAfterSeconds: 7 });
  });

  test('no response: the socket error code decides connection vs timeout', () => {
    expect(toVaultError('read', 'secret/a', new VaultTransportError(undefined, 'ECONNREFUSED'))).toMatchObject({ kind: 'connection', retryable: true });
    expect(toVaultError('read', 'secret/a', new VaultTransportError(undefined, 'ETIMEDOUT'))).toMatchObject({ kind: 'timeout', retryable: true });
    expect(toVaultError('read', 'secret/a', new VaultTransportError(429, undefined, [], 2))).toMatchObject({ kind: 'rate-limited', retryAfterSeconds: 2 });
    expect(toVaultError('write', 'secret/a', new VaultTransportError(400, undefined, ['check-and-set parameter did not match the current version']))).toMatchObject({ kind: 'cas-mismatch' });
  });
});
