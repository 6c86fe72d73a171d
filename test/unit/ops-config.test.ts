import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';

const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TOKEN: 't' };
const dir = mkdtempSync(join(tmpdir(), 'vso-ops-config-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

describe('operations settings: HTTP server, leader election, shards', () => {
  test('defaults: port 8080 on loopback only (the chart binds 0.0.0.0 behind its NetworkPolicy), no TLS, no token, no leader election, one shard, resync 10m', () => {
    const config = loadConfig([], { ...base, POD_NAME: 'vso-0' });
    expect(config.http).toEqual({ port: 8080, bindAddress: '127.0.0.1', tls: undefined, bearerTokenFile: undefined });
    expect(config.leaderElection).toMatchObject({ enabled: false, leaseName: 'vault-sync-operator', identity: 'vso-0', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 });
    expect(config.shards).toBe(1);
    expect(config.budget).toEqual({ sharing: 'shared', floorRate: 0.2, periodMs: 1000 });
    expect(config.resyncIntervalMs).toBe(600_000);
  });

  test('the Lease lives in the operator namespace unless told otherwise', () => {
    expect(loadConfig([], { ...base, OPERATOR_NAMESPACE: 'ops' }).leaderElection.namespace).toBe('ops');
    expect(loadConfig(['--leader-election-namespace=le'], { ...base, OPERATOR_NAMESPACE: 'ops' }).leaderElection.namespace).toBe('le');
  });

  test('TLS and a bearer token are read from files', () => {
    const config = loadConfig(
      [`--metrics-tls-cert-file=${file('tls.crt', 'CERT')}`, `--metrics-tls-key-file=${file('tls.key', 'KEY')}`, `--metrics-bearer-token-file=${file('token', 'abc\n')}`],
      base,
    );
    expect(config.http.tls).toEqual({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') });
    expect(config.http.bearerTokenFile).toBe(join(dir, 'token'));
  });

  test.each([
    { reason: 'a port out of range', argv: ['--metrics-port=70000'], says: 'METRICS_PORT: must be a port number' },
    { reason: 'a certificate without its key', argv: [`--metrics-tls-cert-file=${join(dir, 'tls.crt')}`], says: 'METRICS_TLS_KEY_FILE: is required' },
    { reason: 'an unreadable token file', argv: ['--metrics-bearer-token-file=/nonexistent/token'], says: 'METRICS_BEARER_TOKEN_FILE: cannot read' },
    { reason: 'an empty token file (would accept "Bearer ")', argv: [`--metrics-bearer-token-file=${file('empty', ' \n')}`], says: 'is blank' },
    { reason: 'a token file of Unicode spaces (no header could carry it as such)', argv: [`--metrics-bearer-token-file=${file('nbsp', '\u00a0\u00a0\n')}`], says: 'METRICS_BEARER_TOKEN_FILE: ' },
    { reason: 'leader-elect not a boolean', argv: ['--leader-elect=maybe'], says: 'LEADER_ELECT: must be true or false' },
    { reason: 'renew deadline not below the lease duration', argv: ['--leader-election-lease-duration=10s', '--leader-election-renew-deadline=10s'], says: 'LEADER_ELECTION_RENEW_DEADLINE: must be shorter' },
    { reason: 'retry period not below the renew deadline', argv: ['--leader-election-retry-period=10s'], says: 'LEADER_ELECTION_RETRY_PERIOD: must be shorter' },
    { reason: 'shards without leader election (two replicas would sync the same namespaces)', argv: ['--shards=3'], says: 'SHARDS: more than one shard needs --leader-elect=true' },
    { reason: 'zero shards', argv: ['--shards=0', '--leader-elect=true'], says: 'SHARDS: must be a whole number from 1 to 256' },
    { reason: 'a lease name that is not an object name', argv: ['--leader-election-id=Not_Valid'], says: 'LEADER_ELECTION_ID' },
    { reason: 'an unknown budget sharing', argv: ['--vault-budget-sharing=greedy'], says: 'VAULT_BUDGET_SHARING: must be shared or static' },
    { reason: 'a negative budget floor', argv: ['--vault-budget-floor=-1'], says: 'VAULT_BUDGET_FLOOR: must be a number of requests per second from 0' },
    { reason: 'a budget period not below the renew deadline (a share would lapse between two renewals)', argv: ['--shards=2', '--leader-elect=true', '--vault-budget-period=10s'], says: 'VAULT_BUDGET_PERIOD: must be shorter than --leader-election-renew-deadline' },
    { reason: 'a shared budget whose burst cannot give each shard one request', argv: ['--shards=4', '--leader-elect=true', '--vault-rate-burst=3'], says: 'VAULT_RATE_BURST: must be at least --shards (4)' },
    { reason: 'a resync interval that is not a duration', argv: ['--resync-interval=often'], says: 'RESYNC_INTERVAL: must be a duration' },
  ])('$reason fails at start naming the setting', ({ argv, says }) => {
    expect(() => loadConfig(argv, base)).toThrow(says);
  });
});
