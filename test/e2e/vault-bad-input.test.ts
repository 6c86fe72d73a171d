// Bad Vault settings and credentials: a clear error at start, or per operation, that names what is wrong;
// never a silent crash loop, never a retry storm against a Vault that said no.
import { randomBytes } from 'node:crypto';
import { freshNamespace, loadTestEnv, vaultHttp } from './helpers/env.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { runOperator } from './helpers/operator.js';
import { asTest, uniquePrefix, vaultStack } from './helpers/vault-stack.js';

const env = loadTestEnv();
let proxy: FaultProxy;
beforeAll(async () => {
  proxy = await startFaultProxy({ upstream: env.vaultAddr });
});
afterAll(async () => {
  await proxy.close();
});

/** A token with exactly these policies, made with the root token. */
async function tokenWith(policies: string[]): Promise<string> {
  const res = await vaultHttp('auth/token/create', { body: { policies, ttl: '10m', no_default_policy: false } });
  return res.json.auth.client_token;
}

/** The requests a step made, as seen by the proxy. */
async function requestsDuring(step: () => Promise<unknown>): Promise<number> {
  const before = proxy.requests.length;
  await step();
  return proxy.requests.length - before;
}

test('VAULT_ADDR that is not a URL: the operator does not start, and the message names the setting', async () => {
  await expect(runOperator([await freshNamespace('bad-addr')], ['--vault-addr=vault.example:8200'])).rejects.toThrow(/--vault-addr \/ VAULT_ADDR: .*must start with http:\/\/ or https:\/\/|--vault-addr \/ VAULT_ADDR: .*is not a URL/);
});

test('VAULT_ADDR where no Vault listens: start-up fails after a few retries with "no response (ECONNREFUSED)"', async () => {
  const stack = await vaultStack(['--vault-addr=http://127.0.0.1:1', '--vault-max-retries=2']);
  await expect(stack.login()).rejects.toThrow(/Vault login auth\/kubernetes\/login failed: no response \(ECONNREFUSED\)/);
  await stack.stop();
});

test('a wrong token: start-up fails at the token lookup with HTTP 403, after one request (a 403 is not retried)', async () => {
  const stack = await vaultStack([`--vault-addr=${proxy.url}`, '--vault-auth-method=token', '--vault-token=s.not-a-token']);
  // OpenBao says "permission denied"; HashiCorp Vault "2 errors occurred: * permission denied * invalid token".
  const made = await requestsDuring(() =>
    expect(stack.login()).rejects.toThrow(/^Vault token-lookup auth\/token\/lookup-self failed: HTTP 403: (permission denied|2 errors occurred: \* permission denied \* invalid token)$/),
  );
  expect(made).toBe(1);
  await stack.stop();
});

test('a token whose policy has no access to the KV mount: start-up fails naming the mount and the policy', async () => {
  const stack = await vaultStack([`--vault-addr=${proxy.url}`, '--vault-auth-method=token', `--vault-token=${await tokenWith(['default'])}`]);
  await expect(stack.login()).rejects.toThrow('the KV mount "secret/" does not exist or this token may not use it (HTTP 403); check --vault-kv-mounts and the token\'s policy');
  await stack.stop();
});

test('a policy that may read but not write: each write fails on its own with HTTP 403, once, not retried', async () => {
  const policy = `read-only-${randomBytes(3).toString('hex')}`;
  await vaultHttp(`sys/policies/acl/${policy}`, { method: 'PUT', body: { policy: 'path "secret/metadata/*" { capabilities = ["read"] }\npath "secret/data/*" { capabilities = ["read"] }' } });
  const stack = await vaultStack([`--vault-addr=${proxy.url}`, '--vault-auth-method=token', `--vault-token=${await tokenWith([policy])}`]);
  await stack.login();
  const key = uniquePrefix('read-only');
  const made = await requestsDuring(async () => {
    const results = await Promise.allSettled([stack.vault.writeData({ mount: 'secret', key: `${key}/a` }, new Map(Object.entries({ v: '1' })), {}, asTest), stack.vault.readMetadata({ mount: 'secret', key: `${key}/a` }, asTest)]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { kind: 'forbidden', statusCode: 403, message: `Vault write secret/${key}/a failed: HTTP 403: 1 error occurred: * permission denied` } });
    expect(results[1]).toMatchObject({ status: 'fulfilled', value: undefined }); // the read is allowed: not found
  });
  expect(made).toBe(2);
  await stack.stop();
});

test('a KV mount that does not exist: start-up fails naming --vault-kv-mounts', async () => {
  const stack = await vaultStack([`--vault-kv-mounts=secret,nosuch-${randomBytes(3).toString('hex')}`]);
  await expect(stack.login()).rejects.toThrow(/the KV mount "nosuch-[0-9a-f]+\/" does not exist or this token may not use it \(HTTP 403\); check --vault-kv-mounts/);
  await stack.stop();
});

test('a mount that is not KV: refused at start', async () => {
  const stack = await vaultStack(['--vault-auth-method=token', `--vault-token=${env.vaultRootToken}`, '--vault-kv-mounts=cubbyhole']);
  await expect(stack.login()).rejects.toThrow('"cubbyhole/" is a cubbyhole mount, not a KV secrets engine; check --vault-kv-mounts');
  await stack.stop();
});

test.each([
  ['rate 0', '--vault-rate-limit=0', /--vault-rate-limit \/ VAULT_RATE_LIMIT: must be a number of requests per second above 0/],
  ['a negative rate', '--vault-rate-limit=-10', /--vault-rate-limit \/ VAULT_RATE_LIMIT: must be a number/],
  ['batch size 0', '--vault-batch-size=0', /--vault-batch-size \/ VAULT_BATCH_SIZE: must be a whole number >= 1/],
  ['a negative retry count', '--vault-max-retries=-1', /--vault-max-retries \/ VAULT_MAX_RETRIES: must be a whole number from 0 to 100/],
])('%s: the operator does not start, and the message names the setting', async (_name, flag, message) => {
  await expect(runOperator([await freshNamespace('bad-limits')], [flag])).rejects.toThrow(message);
});
