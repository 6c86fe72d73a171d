// Limits the server sets on one write, learned from the server: the operator tells OpenBao from HashiCorp Vault
// at login (sys/health) and bounds the keys per path by it unless told otherwise; a write the server refuses
// for its size or complexity is reported once, terminally, with the server's reason, and the source's other
// paths still sync.
import { freshNamespace, kubeClients, loadTestEnv, testExceptOn, waitFor } from './helpers/env.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { createSecret, deploymentUsing, mergePatch, vaultExists, waitForEvent, waitForVault, readyCondition as ready, vaultSyncStatus } from './helpers/objects.js';
import { runOperator, type TestOperator } from './helpers/operator.js';
import { auditMark, isWrite, kvRequestsSince } from './helpers/vault-audit.js';
import { metricValue, vaultStack } from './helpers/vault-stack.js';

const env = loadTestEnv();
const { core, apps } = kubeClients();

describe('the server is detected once at login, and the keys per path follow it', () => {
  const expected = { openbao: { kind: 'openbao', keys: 480 }, vault: { kind: 'vault', keys: 9_900 } }[env.vaultServer.product];

  test(`without the setting: ${env.vaultServer.product} ${env.vaultServer.version} is recognized from sys/health and its default chosen, and the choice is logged`, async () => {
    const stack = await vaultStack();
    try {
      await stack.login();
      expect(stack.writeLimits()).toEqual({ maxKeysPerPath: expected.keys, basis: `default for ${expected.kind}` });
      const logged = stack.logs.filter((l) => String(l.msg).startsWith('Vault server detected'));
      expect(logged).toEqual([expect.objectContaining({ server: expected.kind, version: env.vaultServer.version, maxKeysPerPath: expected.keys, basis: `default for ${expected.kind}` })]);
      // Once per stack: a second login (a renewal, a re-login) does not ask again.
      await stack.login();
      expect(stack.logs.filter((l) => String(l.msg).startsWith('Vault server detected'))).toHaveLength(1);
    } finally {
      await stack.stop();
    }
  });

  test('an explicit --max-keys-per-path wins over the default of the detected server, and the log says so', async () => {
    const stack = await vaultStack(['--max-keys-per-path=2000']);
    try {
      await stack.login();
      expect(stack.writeLimits()).toEqual({ maxKeysPerPath: 2000, basis: 'setting' });
      expect(stack.logs.filter((l) => String(l.msg).startsWith('Vault server detected'))).toEqual([expect.objectContaining({ server: expected.kind, maxKeysPerPath: 2000, basis: 'setting' })]);
    } finally {
      await stack.stop();
    }
  });
});

describe('through the operator, without the setting: the decisions use the detected server\'s default', () => {
  let ns: string;
  let proxy: FaultProxy;
  let operator: TestOperator;
  beforeAll(async () => {
    ns = await freshNamespace('server-default');
    proxy = await startFaultProxy({ upstream: env.vaultAddr });
    operator = await runOperator([ns], [`--vault-addr=${proxy.url}`]);
  });
  afterAll(async () => {
    await operator?.stop();
    await proxy?.close();
  });

  test(`600 keys at one path: ${env.vaultServer.product === 'openbao' ? 'above OpenBao\'s 480, refused with an Event before anything is sent' : 'within HashiCorp Vault\'s 9,900, written'}`, async () => {
    const keys = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`key-${String(i).padStart(3, '0')}`, `CANARY-value-${i}`]));
    await createSecret(ns, 'wide', keys, { 'vault-sync.io/path': `secret/${ns}/wide` });
    if (env.vaultServer.product === 'vault') {
      await waitForVault(`${ns}/wide`, (d) => Object.keys(d.data).length === 600);
      return;
    }
    const event = await waitForEvent(ns, 'wide', 'SyncFailed');
    expect(event.message).toContain(`the data for secret/${ns}/wide has 600 keys, more than the 480 one Vault write may hold (the operator's --max-keys-per-path)`);
    expect(event.message).not.toContain('CANARY');
    expect(proxy.requests.filter((r) => r.path.startsWith(`/v1/secret/data/${ns}/`))).toEqual([]);
    expect(await vaultExists(`${ns}/wide`)).toBe(false);
  });
});

describe('a write the server refuses for its complexity (OpenBao: more than 1,000 JSON strings)', () => {
  let ns: string;
  let proxy: FaultProxy;
  let operator: TestOperator;
  beforeAll(async () => {
    ns = await freshNamespace('server-limits');
    // No faults: the proxy only counts what goes on the wire (OpenBao refuses such a body before its audit device sees it).
    proxy = await startFaultProxy({ upstream: env.vaultAddr });
    // Above the server's own limit (OpenBao's default max_request_json_strings: 1,000 strings, 480 keys by default here).
    operator = await runOperator([ns], [`--vault-addr=${proxy.url}`, '--max-keys-per-path=2000']);
  });
  afterAll(async () => {
    await operator?.stop();
    await proxy?.close();
  });

  testExceptOn('vault', 'HashiCorp Vault counts no JSON strings: 600 keys are within its 10,000 entries per object, so nothing is refused')(
    'one write attempt, refused terminally with the server\'s reason in the condition, the Event and the refusal metric; the source\'s other path syncs; a later change of the other Secret does not retry it',
    async () => {
      const keys = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`key-${String(i).padStart(3, '0')}`, `CANARY-value-${i}`]));
      await createSecret(ns, 'wide', keys);
      await createSecret(ns, 'narrow', { user: 'app', pass: 'narrow-1' });
      const mark = auditMark();
      await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'app', { 'vault-sync.io/path': `secret/${ns}/app` }, ['narrow', 'wide']) });

      await waitForVault(`${ns}/app/narrow`, (d) => d.data.pass === 'narrow-1');
      const event = await waitForEvent(ns, 'app', 'VaultRejected');
      const reason = 'HTTP 400: refused JSON input due to high complexity: exceeded maximum number of strings (a server limit on one request: fewer or smaller keys at this path, or a higher limit in the server listener config and --max-keys-per-path)';
      expect(event.type).toBe('Warning');
      expect(event.message).toContain(`secret/${ns}/app/wide: Vault refused the write (${reason}); retried when the source changes`);
      expect(event.message).not.toContain('CANARY');
      await waitFor(async () => ready(await vaultSyncStatus(ns, 'deployment-app'))?.reason === 'VaultRejected', { description: 'Ready=False VaultRejected' });
      const status = await vaultSyncStatus(ns, 'deployment-app');
      expect(ready(status).message).toContain(`secret/${ns}/app/wide: Vault refused the write (${reason})`);
      expect(status.failures).toEqual([expect.objectContaining({ path: `secret/${ns}/app/wide`, kind: 'too-large', message: reason })]);
      expect(status.failures[0].retryAt).toBeUndefined(); // only a change of the wide Secret retries it
      expect(JSON.stringify(status)).not.toContain('CANARY');
      expect(await metricValue(operator.metrics, 'vault_sync_refusals_total', { reason: 'Vault_too-large' })).toBe(1);
      expect(await vaultExists(`${ns}/app/wide`)).toBe(false);

      const wire = `/v1/secret/data/${ns}/app/wide`;
      const writesOnWire = () => proxy.requests.filter((r) => r.path === wire && r.method !== 'GET');
      expect(writesOnWire()).toEqual([expect.objectContaining({ status: 400 })]);
      // The audit log holds at most that one: OpenBao refuses the body while reading it, before its audit device.
      expect(kvRequestsSince(mark, `${ns}/app/wide`).filter(isWrite).length).toBeLessThanOrEqual(1);

      // A change of the other Secret reconciles the source again: its path is written, the refused one is held
      // back, and the reconcile ends reporting it again (the same Event is not repeated within its suppression window).
      const reconciles = () => metricValue(operator.metrics, 'vault_sync_operations_total', { kind: 'Deployment', result: 'invalid' });
      const before = await reconciles();
      await core.patchNamespacedSecret({ namespace: ns, name: 'narrow', body: { stringData: { pass: 'narrow-2' } } }, mergePatch);
      await waitForVault(`${ns}/app/narrow`, (d) => d.data.pass === 'narrow-2');
      await waitFor(async () => (await reconciles()) === before + 1, { description: 'the reconcile of the change concluded' });
      expect(ready(await vaultSyncStatus(ns, 'deployment-app')).message).toContain(`secret/${ns}/app/wide: Vault refused the write (${reason}); retried when the source changes`);
      expect(writesOnWire()).toHaveLength(1);
      expect(await metricValue(operator.metrics, 'vault_sync_refusals_total', { reason: 'Vault_too-large' })).toBe(1); // counted once, when refused
      expect(ready(await vaultSyncStatus(ns, 'deployment-app'))).toMatchObject({ status: 'False', reason: 'VaultRejected' });
    },
  );
});
