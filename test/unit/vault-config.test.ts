// The Vault pipeline's settings: retries and their longest backoff, and what the stack refuses at start.
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import { createVaultStack } from '../../src/vault/stack.js';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 't' };

describe('Vault retry settings', () => {
  test('defaults: 5 retries, backoff capped at 30 s', () => {
    expect(loadConfig([], base).vaultRetry).toEqual({ retries: 5, maxDelayMs: 30_000 });
  });

  test('flags and environment set them; 0 retries is allowed', () => {
    expect(loadConfig(['--vault-max-retries=0', '--vault-retry-max-delay=2s'], base).vaultRetry).toEqual({ retries: 0, maxDelayMs: 2000 });
    expect(loadConfig([], { ...base, VAULT_MAX_RETRIES: '9' }).vaultRetry.retries).toBe(9);
  });

  test.each([
    [['--vault-max-retries=-1'], 'VAULT_MAX_RETRIES: must be a whole number from 0 to 100'],
    [['--vault-max-retries=two'], 'VAULT_MAX_RETRIES'],
    [['--vault-retry-max-delay=soon'], 'VAULT_RETRY_MAX_DELAY: must be a duration'],
  ])('%j is refused naming the setting', (argv, says) => {
    expect(() => loadConfig(argv, base)).toThrow(says);
  });
});

describe('createVaultStack refuses impossible limits before any request', () => {
  const log = pino({ level: 'silent' });
  const config = loadConfig([], base);
  test.each<[string, Partial<Config>, RegExp]>([
    ['rate 0', { rateLimit: { rate: 0, burst: 20 } }, /rate limit must be a positive number/],
    ['a negative rate', { rateLimit: { rate: -1, burst: 20 } }, /rate limit must be a positive number/],
    ['burst 0', { rateLimit: { rate: 10, burst: 0 } }, /burst must be a whole number >= 1/],
    ['batch size 0', { batchSize: 0 }, /batch size must be a whole number >= 1/],
  ])('%s', (_name, override, message) => {
    expect(() => createVaultStack({ ...config, ...override }, log)).toThrow(message);
  });
});
