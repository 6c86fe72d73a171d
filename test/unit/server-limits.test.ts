// Limits the server sets on one write: which server answers (from sys/health), the keys per path chosen for
// it, and a refusal for size or complexity reported as terminal with the server's reason.
import { loadConfig, syncSettings } from '../../src/config.js';
import { classifyFailure } from '../../src/sync/write-policy.js';
import { kindOfStatus, toVaultError, VaultTransportError } from '../../src/vault/errors.js';
import { chooseWriteLimits, isServerSizeRefusal, KEYS_PER_PATH_DEFAULTS, serverOfHealth } from '../../src/vault/server-limits.js';

// What OpenBao 2.7.2 answers (the test environment's binary, GET /v1/sys/health).
const openBao272 = { initialized: true, sealed: false, standby: false, replication_performance_mode: 'disabled', replication_dr_mode: 'disabled', server_time_utc: 1796309308, version: '2.7.2', cluster_name: 'vault-cluster-21318a7a', cluster_id: '7c1f0371-0374-ea1c-122f-b77d44a4b58b' };
// HashiCorp Vault's fields (its HealthResponse: `enterprise` is always present, true or false).
const vault = (version: string, enterprise = false) => ({ initialized: true, sealed: false, standby: false, performance_standby: false, replication_performance_mode: 'disabled', replication_dr_mode: 'disabled', server_time_utc: 1796309308, version, enterprise, echo_duration_ms: 0, clock_skew_ms: 0, replication_primary_canary_age_ms: 0 });

describe('serverOfHealth: OpenBao or HashiCorp Vault, from the unauthenticated sys/health', () => {
  test.each([
    { reason: 'OpenBao 2.7.2 as the test environment answers', answer: openBao272, kind: 'openbao', version: '2.7.2' },
    { reason: 'an older OpenBao (2.0, forked from Vault 1.14: performance_standby still reported, no enterprise)', answer: { ...openBao272, version: '2.0.3', performance_standby: false }, kind: 'openbao', version: '2.0.3' },
    { reason: 'HashiCorp Vault 1.21', answer: vault('1.21.1'), kind: 'vault', version: '1.21.1' },
    { reason: 'HashiCorp Vault 2.0: a 2.x version like OpenBao, told apart by enterprise', answer: vault('2.0.4'), kind: 'vault', version: '2.0.4' },
    { reason: 'HashiCorp Vault Enterprise', answer: vault('2.0.2+ent', true), kind: 'vault', version: '2.0.2+ent' },
    { reason: 'an old HashiCorp Vault that did not report enterprise yet', answer: { initialized: true, sealed: false, standby: false, version: '1.9.4' }, kind: 'vault', version: '1.9.4' },
  ])('$reason → $kind', ({ answer, kind, version }) => {
    expect(serverOfHealth(answer)).toMatchObject({ kind, version });
  });

  test.each([
    { reason: 'no body', answer: undefined },
    { reason: 'a list', answer: [openBao272] },
    { reason: 'no version', answer: { initialized: true, sealed: false } },
    { reason: 'a version that is not a version (kept out of logs)', answer: { ...openBao272, version: '2.7.2\u001b[31m<script>' } },
    { reason: 'a version of absurd length', answer: { ...openBao272, version: `2.${'9'.repeat(500)}` } },
  ])('unknown when sys/health tells nothing: $reason', ({ answer }) => {
    const server = serverOfHealth(answer);
    expect(server.kind).toBe('unknown');
    expect(server.version).toBeUndefined();
    expect(server.evidence.length).toBeLessThan(100);
  });
});

describe('chooseWriteLimits: the setting wins, else the detected server decides', () => {
  test('defaults per server: OpenBao and an unknown server 480 (under 1,000 JSON strings), HashiCorp Vault 9,900 (under 10,000 entries per object)', () => {
    expect(KEYS_PER_PATH_DEFAULTS).toEqual({ openbao: 480, vault: 9_900, unknown: 480 });
    expect(chooseWriteLimits(undefined, { kind: 'openbao' })).toEqual({ maxKeysPerPath: 480, basis: 'default for openbao' });
    expect(chooseWriteLimits(undefined, { kind: 'vault' })).toEqual({ maxKeysPerPath: 9_900, basis: 'default for vault' });
    expect(chooseWriteLimits(undefined, { kind: 'unknown' })).toEqual({ maxKeysPerPath: 480, basis: 'default for unknown' });
  });

  test('an explicit setting wins on every server, above or below its default', () => {
    for (const kind of ['openbao', 'vault', 'unknown'] as const) {
      expect(chooseWriteLimits(2000, { kind })).toEqual({ maxKeysPerPath: 2000, basis: 'setting' });
      expect(chooseWriteLimits(10, { kind })).toEqual({ maxKeysPerPath: 10, basis: 'setting' });
    }
  });

  test('--max-keys-per-path / MAX_KEYS_PER_PATH: absent follows the server; a whole number from 1 to 20,000; else a clear error naming the setting', () => {
    const base = ['--vault-addr=http://127.0.0.1:8200', '--vault-token=t'];
    expect(loadConfig(base, {}).maxKeysPerPath).toBeUndefined();
    expect(loadConfig([...base, '--max-keys-per-path=2000'], {}).maxKeysPerPath).toBe(2000);
    expect(loadConfig(base, { MAX_KEYS_PER_PATH: '20000' }).maxKeysPerPath).toBe(20_000);
    for (const bad of ['0', '20001', '1.5', 'many', '-3']) {
      expect(() => loadConfig([...base, `--max-keys-per-path=${bad}`], {})).toThrow(`--max-keys-per-path / MAX_KEYS_PER_PATH: must be a whole number from 1 to 20000, got "${bad}"`);
    }
  });

  test('the decisions read the number the stack chose at login, not a copy taken before it', () => {
    const config = loadConfig(['--vault-addr=http://127.0.0.1:8200', '--vault-token=t'], {});
    let limits = chooseWriteLimits(config.maxKeysPerPath, { kind: 'unknown' });
    const settings = syncSettings(config, { writeLimits: () => limits });
    expect(settings.maxKeysPerPath).toBe(480);
    limits = chooseWriteLimits(config.maxKeysPerPath, { kind: 'vault' });
    expect(settings.maxKeysPerPath).toBe(9_900);
  });
});

describe('a write the server refuses for its size or complexity is terminal, with the server\'s reason', () => {
  const openBaoComplexity = 'refused JSON input due to high complexity: exceeded maximum number of strings';

  test.each([
    { reason: "OpenBao's max_request_json_strings (the 2.7.2 answer)", status: 400, errors: [openBaoComplexity], says: openBaoComplexity },
    { reason: "OpenBao's max_request_size (the 2.7.2 answer)", status: 413, errors: ['http: request body too large'], says: 'http: request body too large' },
    { reason: 'a proxy in front that answers 413 with an HTML page', status: 413, errors: [], says: '' },
  ])('$reason → too-large, not retryable, the reason and the way out in the message', ({ status, errors, says }) => {
    const error = toVaultError('write', 'secret/team-a/big', new VaultTransportError(status, undefined, errors));
    expect(error).toMatchObject({ kind: 'too-large', retryable: false, statusCode: status });
    expect(error.message).toBe(`Vault write secret/team-a/big failed: HTTP ${status}${says ? `: ${says}` : ''} (a server limit on one request: fewer or smaller keys at this path, or a higher limit in the server listener config and --max-keys-per-path)`);
    const detail = error.message.slice(error.message.indexOf(' failed: ') + ' failed: '.length);
    const decision = classifyFailure({ kind: error.kind, retryable: error.retryable, detail });
    // Terminal, recorded against the content: no slow retry (a retry of the same write fails the same way).
    expect(decision).toEqual({ terminal: true, message: detail });
  });

  test('other 400s keep their kinds: a check-and-set mismatch, a plain bad request', () => {
    expect(kindOfStatus(400, ': check-and-set parameter did not match the current version')).toBe('cas-mismatch');
    expect(kindOfStatus(400, ': invalid request')).toBe('bad-request');
    expect(kindOfStatus(400, '')).toBe('bad-request');
    expect(kindOfStatus(403, ': permission denied')).toBe('forbidden');
    expect(toVaultError('write', 'secret/x', new VaultTransportError(400, undefined, ['invalid request'])).message).toBe('Vault write secret/x failed: HTTP 400: invalid request');
  });

  test.each([
    ['refused JSON input due to high complexity: exceeded maximum number of strings', true],
    ['http: request body too large', true],
    ['JSON input exceeds allowed nesting depth (501 > 500)', true],
    ['permission denied', false],
    ['check-and-set parameter did not match the current version', false],
    ['no handler for route', false],
  ])('isServerSizeRefusal(%j) = %s', (text, expected) => {
    expect(isServerSizeRefusal(text)).toBe(expected);
  });

  test('a reason that echoes a value is not carried: only short plain reasons are kept', () => {
    const echoed = toVaultError('write', 'secret/x', new VaultTransportError(400, undefined, ['refused JSON input due to high complexity near "s3cr3t-value-1234567890"\u0000']));
    expect(echoed.message).not.toContain('s3cr3t');
    expect(echoed.kind).toBe('bad-request'); // the reason was dropped whole, so nothing says "size": a plain terminal 400
  });
});
