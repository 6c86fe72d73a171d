// Large secrets: above the threshold a warning (path and size, never a value), vault_large_secret_count, and
// the memory-aware path (the body streamed, counted in vault_memory_optimization_applied_total); above the
// maximum a clear refusal before anything is sent.
import { randomBytes } from 'node:crypto';
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';
import { runOperator } from './helpers/operator.js';
import { asTest, kvData, metricValue, uniquePrefix, vaultStack } from './helpers/vault-stack.js';

test('a 1.5 MiB secret is streamed to Vault intact, counted, and logged without its value', async () => {
  const stack = await vaultStack();
  await stack.login();
  const key = uniquePrefix('large');
  const data = { blob: randomBytes(600 * 1024).toString('base64'), note: 'é'.repeat(350 * 1024) }; // ~1.5 MiB of payload
  await stack.vault.writeData({ mount: 'secret', key }, new Map(Object.entries(data)), {}, asTest);
  expect(await kvData(key)).toEqual(data);
  expect(await metricValue(stack.metrics, 'vault_large_secret_count')).toBe(1);
  expect(await metricValue(stack.metrics, 'vault_memory_optimization_applied_total')).toBe(1);
  const warning = stack.logs.find((l) => l.msg === 'large secret: streaming it to Vault');
  expect(warning).toMatchObject({ path: `secret/${key}`, keys: 2, thresholdBytes: 1024 * 1024 });
  expect(warning?.sizeBytes).toBeGreaterThan(1.4 * 1024 * 1024);
  expect(stack.logText()).not.toContain(data.blob.slice(0, 64));

  // A small write takes the ordinary path.
  await stack.vault.writeData({ mount: 'secret', key: `${key}-small` }, new Map(Object.entries({ a: 'b' })), {}, asTest);
  expect(await metricValue(stack.metrics, 'vault_memory_optimization_applied_total')).toBe(1);
  await stack.stop();
});

test('above --max-secret-size a write is refused at once, naming the setting; nothing reaches Vault', async () => {
  const stack = await vaultStack(['--max-secret-size=2Mi']);
  await stack.login();
  const key = uniquePrefix('too-large');
  await expect(stack.vault.writeData({ mount: 'secret', key }, new Map(Object.entries({ blob: 'x'.repeat(3 * 1024 * 1024) })), {}, asTest)).rejects.toMatchObject({
    kind: 'too-large',
    retryable: false,
    message: `Vault write secret/${key} failed: the payload is ${3 * 1024 * 1024 + 4} bytes, above the maximum of ${2 * 1024 * 1024} bytes (--max-secret-size)`,
  });
  expect(await metricValue(stack.metrics, 'vault_rate_limit_requests_total', { operation: 'write' })).toBe(0);
  expect(await kvData(key)).toBeUndefined();
  await stack.stop();
});

test('through the operator: a Secret above --large-secret-threshold lands in Vault and shows in the operator\'s metrics', async () => {
  const namespace = await freshNamespace('large');
  const operator = await runOperator([namespace], ['--large-secret-threshold=256Ki']);
  try {
    const value = randomBytes(300 * 1024).toString('hex'); // 600 KiB: a Kubernetes Secret stays below 1 MiB
    await kubeClients().core.createNamespacedSecret({ namespace, body: { metadata: { name: 'big', namespace, annotations: { 'vault-sync.io/path': `secret/${namespace}/big` } }, stringData: { value } } });
    await waitFor(async () => (await kvData(`${namespace}/big`))?.value === value, { timeoutMs: 20_000, description: 'the large Secret in Vault' });
    expect(await metricValue(operator.metrics, 'vault_large_secret_count')).toBeGreaterThanOrEqual(1);
    expect(await metricValue(operator.metrics, 'vault_memory_optimization_applied_total')).toBeGreaterThanOrEqual(1);
  } finally {
    await operator.stop();
  }
});
