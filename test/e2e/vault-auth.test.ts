// How the operator authenticates and connects, against the real OpenBao: AppRole, token renewal before
// expiry, a fresh login when renewal stops helping or the token is revoked (the Kubernetes token file is
// re-read at every login), the namespace header, TLS with a CA bundle, and request timeouts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTestEnv, testExceptOn, vaultHttp } from './helpers/env.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { writeOperatorToken } from './helpers/operator.js';
import { asTest, kvData, metricValue, uniquePrefix, vaultStack } from './helpers/vault-stack.js';

const env = loadTestEnv();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = () => randomBytes(4).toString('hex');

async function root(path: string, body?: unknown, method?: string): Promise<any> {
  const res = await vaultHttp(path, { body, method });
  if (res.status >= 300) throw new Error(`setup: ${method ?? (body ? 'POST' : 'GET')} ${path}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

/** An AppRole auth mount and role whose tokens carry the operator's policy, with the given TTLs. */
async function appRole(ttl: string, maxTtl: string): Promise<{ args: string[]; secretId: string }> {
  const mount = `approle-${rand()}`;
  await root(`sys/auth/${mount}`, { type: 'approle' });
  await root(`auth/${mount}/role/operator`, { token_policies: [env.vaultKubernetesAuth.policy], token_ttl: ttl, token_max_ttl: maxTtl });
  const roleId = (await root(`auth/${mount}/role/operator/role-id`)).data.role_id;
  const secretId = (await root(`auth/${mount}/role/operator/secret-id`, {})).data.secret_id;
  const file = join(mkdtempSync(join(tmpdir(), 'vso-approle-')), 'secret-id');
  writeFileSync(file, secretId, { mode: 0o600 });
  return { args: ['--vault-auth-method=approle', `--vault-approle-role-id=${roleId}`, `--vault-approle-secret-id-file=${file}`, `--vault-approle-mount=${mount}`], secretId };
}

test('AppRole: logs in, and renews its short-lived token before it expires (no new login needed)', async () => {
  const role = await appRole('3s', '1h');
  const stack = await vaultStack(role.args);
  await stack.login();
  const prefix = uniquePrefix('approle');
  await stack.vault.writeData({ mount: 'secret', key: `${prefix}/a` }, new Map(Object.entries({ v: '1' })), {}, asTest);
  await sleep(5_000); // past the first TTL: two renewals at 2/3 of it
  await stack.vault.writeData({ mount: 'secret', key: `${prefix}/a` }, new Map(Object.entries({ v: '2' })), {}, asTest);
  expect(await kvData(`${prefix}/a`)).toEqual({ v: '2' });
  expect(await metricValue(stack.metrics, 'vault_auth_total', { event: 'renew', result: 'success' })).toBeGreaterThanOrEqual(2);
  expect(await metricValue(stack.metrics, 'vault_auth_total', { event: 'login', result: 'success' })).toBe(1);
  expect(await metricValue(stack.metrics, 'vault_token_ttl_seconds')).toBeGreaterThan(0);
  expect(stack.logText()).toContain('logged in to Vault');
  expect(stack.logText()).not.toContain(role.secretId);
  await stack.stop();
}, 30_000);

test('a static token (VAULT_TOKEN) that expires is renewed before it does', async () => {
  const token = (await root('auth/token/create', { policies: [env.vaultKubernetesAuth.policy], ttl: '3s', renewable: true })).auth.client_token;
  const stack = await vaultStack(['--vault-auth-method=token', `--vault-token=${token}`]);
  await stack.login();
  await sleep(4_500);
  const key = uniquePrefix('static');
  await stack.vault.writeData({ mount: 'secret', key }, new Map(Object.entries({ v: '1' })), {}, asTest);
  expect(await kvData(key)).toEqual({ v: '1' });
  expect(await metricValue(stack.metrics, 'vault_auth_total', { event: 'renew', result: 'success' })).toBeGreaterThanOrEqual(1);
  expect(stack.logText()).not.toContain(token);
  await stack.stop();
}, 30_000);

test('a token near its max TTL is not renewed into uselessness: the operator logs in again', async () => {
  const stack = await vaultStack((await appRole('3s', '4s')).args);
  await stack.login();
  await sleep(5_500);
  expect(await metricValue(stack.metrics, 'vault_auth_total', { event: 'login', result: 'success' })).toBeGreaterThanOrEqual(2);
  const prefix = uniquePrefix('max-ttl');
  await stack.vault.writeData({ mount: 'secret', key: `${prefix}/a` }, new Map(Object.entries({ v: '1' })), {}, asTest);
  expect(await kvData(`${prefix}/a`)).toEqual({ v: '1' });
  await stack.stop();
}, 30_000);

test('a revoked token: the 403 triggers one fresh login, which re-reads the service-account token file', async () => {
  const tokenPath = await writeOperatorToken();
  const k8s = ['--vault-auth-method=kubernetes', `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`, `--vault-kubernetes-token-path=${tokenPath}`];
  const stack = await vaultStack(k8s);
  await stack.login();
  const prefix = uniquePrefix('revoked');
  const path = { mount: 'secret', key: `${prefix}/a` };
  await stack.vault.writeData(path, new Map(Object.entries({ v: '1' })), {}, asTest);

  // The projected token "rotates" into something Vault refuses; then the Vault token is revoked.
  writeFileSync(tokenPath, 'not-a-jwt');
  await root('auth/token/revoke-accessor', { accessor: stack.client.tokenAccessor });
  await expect(stack.vault.writeData(path, new Map(Object.entries({ v: '2' })), {}, asTest)).rejects.toThrow(/Vault login auth\/kubernetes\/login failed: HTTP (400|403)/);

  // A valid token in the file again: the next 403 logs in with it, and the write goes through.
  writeFileSync(tokenPath, readFileSync(await writeOperatorToken(), 'utf8'));
  await stack.vault.writeData(path, new Map(Object.entries({ v: '3' })), {}, asTest);
  expect(await kvData(`${prefix}/a`)).toEqual({ v: '3' });
  expect(await metricValue(stack.metrics, 'vault_auth_total', { event: 'login', result: 'success' })).toBe(2);
  expect(await metricValue(stack.metrics, 'vault_auth_total', { event: 'login', result: 'failure' })).toBe(1);
  await stack.stop();
}, 30_000);

// Namespaces are a Vault Enterprise feature (OpenBao has them too): HashiCorp Vault's open-source server
// ignores the header and puts everything in the root namespace, so there is nothing to tell apart.
const testWithNamespaces = testExceptOn('vault', 'namespaces need Vault Enterprise; the open-source server ignores X-Vault-Namespace');
testWithNamespaces('--vault-namespace: every request carries X-Vault-Namespace, so the data lands in that namespace', async () => {
  const namespace = `team-${rand()}`;
  await root(`sys/namespaces/${namespace}`, {});
  const inNamespace = { headers: { 'X-Vault-Namespace': namespace } };
  const mounted = await vaultHttp('sys/mounts/secret', { ...inNamespace, body: { type: 'kv', options: { version: '2' } } });
  expect(mounted.status).toBeLessThan(300);

  const stack = await vaultStack(['--vault-auth-method=token', `--vault-token=${env.vaultRootToken}`, `--vault-namespace=${namespace}`]);
  await stack.login();
  const key = uniquePrefix('ns');
  await stack.vault.writeData({ mount: 'secret', key }, new Map(Object.entries({ where: 'namespace' })), {}, asTest);
  await stack.stop();
  const there = await vaultHttp(`secret/data/${key}`, inNamespace);
  expect(there.json?.data?.data).toEqual({ where: 'namespace' });
  expect(await kvData(key)).toBeUndefined(); // not in the root namespace
});

describe('TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vso-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  beforeAll(() => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=vso-test-ca');
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'vault.key', '-out', 'vault.csr', '-subj', '/CN=vault');
    writeFileSync(join(dir, 'vault.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'vault.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'vault.crt', '-days', '2', '-extfile', 'vault.ext');
  });

  test('with --vault-cacert the operator trusts a Vault behind a private CA; without it, a clear, unretried TLS error', async () => {
    const proxy = await startFaultProxy({ upstream: env.vaultAddr, tls: { key: readFileSync(join(dir, 'vault.key'), 'utf8'), cert: readFileSync(join(dir, 'vault.crt'), 'utf8') } });
    try {
      const trusted = await vaultStack([`--vault-addr=${proxy.url}`, `--vault-cacert=${join(dir, 'ca.crt')}`]);
      await trusted.login();
      const key = uniquePrefix('tls');
      await trusted.vault.writeData({ mount: 'secret', key }, new Map(Object.entries({ over: 'tls' })), {}, asTest);
      await trusted.stop();
      expect(await kvData(key)).toEqual({ over: 'tls' });

      const untrusted = await vaultStack([`--vault-addr=${proxy.url}`]);
      const started = performance.now();
      await expect(untrusted.login()).rejects.toThrow(/no response \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)\); check --vault-addr and --vault-cacert/);
      expect(performance.now() - started).toBeLessThan(2000); // not retried
      await untrusted.stop();
    } finally {
      await proxy.close();
    }
  });
});

test('--vault-timeout: a Vault slower than the timeout fails the request as a timeout (retried), and works again once it is fast', async () => {
  const proxy = await startFaultProxy({ upstream: env.vaultAddr });
  try {
    const stack = await vaultStack([`--vault-addr=${proxy.url}`, '--vault-timeout=300ms', '--vault-max-retries=2']);
    await stack.login();
    const key = uniquePrefix('timeout');
    proxy.setFaults({ latencyMs: 1000 });
    await expect(stack.vault.writeData({ mount: 'secret', key }, new Map(Object.entries({ v: '1' })), {}, asTest)).rejects.toMatchObject({ kind: 'timeout', message: expect.stringContaining('no response (ETIMEDOUT)') });
    expect(await metricValue(stack.metrics, 'vault_request_errors_total', { operation: 'write', error_type: 'timeout' })).toBe(3);
    proxy.setFaults({});
    await stack.vault.writeData({ mount: 'secret', key }, new Map(Object.entries({ v: '2' })), {}, asTest);
    await stack.stop();
    await new Promise((r) => setTimeout(r, 1200)); // let the slow requests of the proxy drain
  } finally {
    await proxy.close();
  }
}, 30_000);
