import { loadConfig } from '../../src/config.js';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 't' };

describe('loadConfig: invalid configuration fails at start, naming the setting', () => {
  test('defaults follow the performance guide: 10/s, burst 20, batch 5, large at 1 MiB', () => {
    const config = loadConfig([], base);
    expect(config.rateLimit).toEqual({ rate: 10, burst: 20 });
    expect(config.batchSize).toBe(5);
    expect(config.largeSecretThresholdBytes).toBe(1024 * 1024);
    expect(config.vault.auth).toEqual({ method: 'token', token: 't' });
  });

  test('Secrets per source: 1,000 by default (measured: bench/source-size.ts), a flag or an environment variable', () => {
    expect(loadConfig([], base).maxSecretsPerSource).toBe(1000);
    expect(loadConfig([], { ...base, MAX_SECRETS_PER_SOURCE: '2500' }).maxSecretsPerSource).toBe(2500);
    expect(loadConfig(['--max-secrets-per-source=64'], { ...base, MAX_SECRETS_PER_SOURCE: '2500' }).maxSecretsPerSource).toBe(64);
  });

  test('flags win over the environment and use the same names', () => {
    const config = loadConfig(['--vault-rate-limit=25', '--vault-rate-burst', '40', '--watch-namespaces=a, b'], { ...base, VAULT_RATE_LIMIT: '5' });
    expect(config.rateLimit).toEqual({ rate: 25, burst: 40 });
    expect(config.watchNamespaces).toEqual(['a', 'b']);
  });

  test.each([
    { reason: 'a missing Vault address', argv: [], env: { VAULT_TOKEN: 't' }, says: 'VAULT_ADDR: is required' },
    { reason: 'an address that is not a URL', argv: ['--vault-addr=vault:8200'], env: base, says: 'must start with http' },
    { reason: 'garbage as address', argv: ['--vault-addr=not a url'], env: base, says: 'is not a URL' },
    { reason: 'rate 0', argv: ['--vault-rate-limit=0'], env: base, says: 'VAULT_RATE_LIMIT: must be a number of requests per second above 0' },
    { reason: 'a negative rate', argv: ['--vault-rate-limit=-3'], env: base, says: 'VAULT_RATE_LIMIT' },
    { reason: 'batch size 0', argv: ['--vault-batch-size=0'], env: base, says: 'VAULT_BATCH_SIZE: must be a whole number >= 1' },
    { reason: 'a fractional burst', argv: ['--vault-rate-burst=1.5'], env: base, says: 'VAULT_RATE_BURST' },
    { reason: 'an unknown flag', argv: ['--vault-adress=x'], env: base, says: 'unknown setting --vault-adress' },
    { reason: 'kubernetes auth without a role', argv: ['--vault-auth-method=kubernetes'], env: base, says: 'VAULT_KUBERNETES_ROLE: is required' },
    { reason: 'an unknown auth method', argv: ['--vault-auth-method=ldap'], env: base, says: 'must be token, kubernetes or approle' },
    { reason: 'an unreadable CA bundle', argv: ['--vault-cacert=/nonexistent/ca.pem'], env: base, says: 'VAULT_CACERT: cannot read' },
    { reason: 'a bad size', argv: ['--max-secret-size=lots'], env: base, says: 'MAX_SECRET_SIZE: must be a size' },
    { reason: 'zero Secrets per source', argv: ['--max-secrets-per-source=0'], env: base, says: '--max-secrets-per-source / MAX_SECRETS_PER_SOURCE: must be a whole number from 1 to 5000, got "0"' },
    { reason: 'more Secrets per source than a VaultSync status can record', argv: [], env: { ...base, MAX_SECRETS_PER_SOURCE: '50000' }, says: 'MAX_SECRETS_PER_SOURCE: must be a whole number from 1 to 5000, got "50000"' },
    { reason: 'a fractional number of Secrets per source', argv: ['--max-secrets-per-source=1.5'], env: base, says: 'MAX_SECRETS_PER_SOURCE: must be a whole number' },
  ])('$reason', ({ argv, env, says }) => {
    expect(() => loadConfig(argv, env)).toThrow(says);
  });
});
