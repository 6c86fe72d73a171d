// The real operator, talking to the real OpenBao through a fault-injecting proxy: slow answers, bursts of
// 429 with Retry-After, 500s, connection resets, and Vault gone for 20 s. Every change made meanwhile ends
// up in Vault once it recovers, nothing is lost, and the rate limit holds for every request, retries included.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, loadTestEnv, waitFor } from './helpers/env.js';
import { startFaultProxy, tokenBucketExcess, type FaultProxy } from './helpers/fault-proxy.js';
import { runOperator, type TestOperator } from './helpers/operator.js';
import { kvData } from './helpers/vault-stack.js';

const { core } = kubeClients();
let namespace: string;
let proxy: FaultProxy;
let operator: TestOperator;

beforeAll(async () => {
  namespace = await freshNamespace('vault-faults');
  proxy = await startFaultProxy({ upstream: loadTestEnv().vaultAddr });
  operator = await runOperator([namespace], [`--vault-addr=${proxy.url}`]);
});
afterAll(async () => {
  await operator?.stop();
  await proxy?.close();
});

const annotated = (name: string) => ({ 'vault-sync.io/path': `secret/${namespace}/${name}` });

async function createSecret(name: string, value: string): Promise<void> {
  await core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace, annotations: annotated(name) }, stringData: { value } } });
}

async function updateSecret(name: string, value: string): Promise<void> {
  await core.patchNamespacedSecret({ namespace, name, body: { stringData: { value } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

/** Waits until every path holds its expected value; says which do not when it gives up. */
async function allInVault(expected: Map<string, string>, timeoutMs: number): Promise<void> {
  let wrong: string[] = [];
  try {
    await waitFor(
      async () => {
        wrong = [];
        for (const [name, value] of expected) if ((await kvData(`${namespace}/${name}`))?.value !== value) wrong.push(name);
        return wrong.length === 0;
      },
      { timeoutMs, intervalMs: 500, description: 'every path to hold its latest value' },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; still wrong: ${wrong.join(', ')}`);
  }
}

test('slow answers, a burst of 429s with Retry-After, 500s and resets: every change lands, and every request (retries included) stays within the bucket', async () => {
  const first = proxy.requests.length;
  proxy.setFaults({ latencyMs: 80, tooManyRequests: { count: 8, retryAfterSeconds: 1 }, serverError: { ratio: 0.1 }, reset: { ratio: 0.05 } });
  const expected = new Map<string, string>();
  try {
    for (let i = 0; i < 12; i++) {
      await createSecret(`s${i}`, `v1-${i}`);
      expected.set(`s${i}`, `v1-${i}`);
    }
    for (let i = 0; i < 12; i += 3) {
      await updateSecret(`s${i}`, `v2-${i}`);
      expected.set(`s${i}`, `v2-${i}`);
    }
    await allInVault(expected, 60_000);
  } finally {
    proxy.setFaults({});
  }
  const seen = proxy.requests.slice(first);
  expect(seen.filter((r) => r.outcome === '429').length).toBeGreaterThanOrEqual(8);
  expect(seen.some((r) => r.outcome === '500' || r.outcome === 'reset')).toBe(true);
  const { excess, at } = tokenBucketExcess(seen.map((r) => r.at), 10, 20);
  expect({ excess: Math.max(0, Math.ceil(excess - 1)), at }).toMatchObject({ excess: 0 });
}, 90_000);

test('Vault gone for 20 s: changes made meanwhile reach Vault once it is back, none lost', async () => {
  await createSecret('steady', 'before');
  await allInVault(new Map([['steady', 'before']]), 20_000);

  await proxy.stop();
  const down = performance.now();
  const expected = new Map<string, string>([['steady', 'during-outage']]);
  await updateSecret('steady', 'during-outage');
  for (let i = 0; i < 5; i++) {
    await createSecret(`outage-${i}`, `o-${i}`);
    expected.set(`outage-${i}`, `o-${i}`);
  }
  await new Promise((r) => setTimeout(r, 20_000 - (performance.now() - down)));
  for (const name of expected.keys()) expect(await kvData(`${namespace}/${name}`).then((d) => d?.value)).not.toBe(expected.get(name));
  const requestsWhileDown = proxy.requests.length;

  await proxy.start();
  const up = performance.now();
  await allInVault(expected, 60_000);
  const recoveredInMs = performance.now() - up;
  expect(proxy.requests.length).toBeGreaterThan(requestsWhileDown);
  // The work queue's per-key backoff and the request retries are capped: recovery takes seconds, not minutes.
  expect(recoveredInMs).toBeLessThan(45_000);
}, 120_000);
