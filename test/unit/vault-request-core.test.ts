// The request core's account of whether a failed write may still have landed: an attempt that went out and got
// no answer (a reset after Vault applied it) is remembered on the error the last attempt ends with, so the
// reconciler keeps the write's intent (the proof that unmarked data there is the source's).
import pino from 'pino';
import { VaultRequestError, VaultTransportError } from '../../src/vault/errors.js';
import { VaultRateLimiter } from '../../src/vault/limiter.js';
import { RequestCore } from '../../src/vault/request-core.js';

function core() {
  const limiter = new VaultRateLimiter({ rate: 1000, burst: 100 });
  return { limiter, core: new RequestCore({ limiter, log: pino({ level: 'silent' }), retry: { retries: 3, minDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 2 } }) };
}

/** An attempt that fails as the transport reports it: a status, or no answer at all (status undefined). */
const failing = (status: number | undefined, errors: string[] = []) => () => Promise.reject(new VaultTransportError(status, status === undefined ? 'ECONNRESET' : undefined, errors));

test('a retry answered 400 (check-and-set) after an unanswered first attempt says an earlier attempt may have landed', async () => {
  const { core: requests, limiter } = core();
  const attempts = [failing(undefined), failing(400, ['check-and-set parameter did not match the current version'])];
  const error = await requests.request('write', 'secret/a', () => attempts.shift()!()).catch((e: unknown) => e);
  await limiter.stop();
  expect(error).toBeInstanceOf(VaultRequestError);
  expect(error).toMatchObject({ statusCode: 400, kind: 'cas-mismatch', earlierAttemptUnanswered: true });
});

test('a request whose every attempt was answered says so: its write did not land', async () => {
  const { core: requests, limiter } = core();
  const attempts = [failing(503), failing(400, ['check-and-set parameter did not match the current version'])];
  const error = await requests.request('write', 'secret/a', () => attempts.shift()!()).catch((e: unknown) => e);
  await limiter.stop();
  expect(error).toMatchObject({ statusCode: 400, kind: 'cas-mismatch', earlierAttemptUnanswered: false });
});
