// The shared budget's I/O against the real apiserver (src/budget/shared-budget.ts), without Vault: three holders
// in this process share one budget Lease with short periods. Creation races, compare-and-swap conflicts, a busy
// holder taking all but the floors, leaving, and a record edited into something unreadable (never overwritten).
import { CoordinationV1Api } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { SharedBudget } from '../../src/budget/shared-budget.js';
import { BUDGET_ANNOTATION, parseRecord } from '../../src/budget/record.js';
import { withinBudget } from '../../src/budget/protocol.js';
import { createLogger } from '../../src/observability/logger.js';
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';
import { sumMetric } from './helpers/ops.js';

const { kc } = kubeClients();
const leases = kc.makeApiClient(CoordinationV1Api);
const BUDGET = { rate: 10, burst: 20 };
const budgets: SharedBudget[] = [];
afterEach(async () => {
  await Promise.all(budgets.splice(0).map((b) => b.stop()));
});

function holder(namespace: string, identity: string, demand: { n: number }) {
  const registry = new Registry();
  const budget = new SharedBudget({
    kubeConfig: kc,
    namespace,
    name: 'vso-budget',
    settings: { identity, ...BUDGET, slots: 3, floorRate: 0.2, shareDeadlineMs: 1500, reclaimAfterMs: 3000 },
    periodMs: 200,
    demand: () => demand.n,
    log: createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'silent'),
    registry,
  });
  budgets.push(budget);
  return { budget, metric: async (name: string, labels: Record<string, string> = {}) => sumMetric(await registry.metrics(), name, labels) };
}

async function record(namespace: string) {
  const lease = await leases.readNamespacedLease({ namespace, name: 'vso-budget' });
  return { lease, record: parseRecord(lease.metadata?.annotations?.[BUDGET_ANNOTATION]) };
}

test('three holders joining at once create one budget Lease; a busy one gets all but the floors; one that leaves is removed; the record sums within the budget', async () => {
  const namespace = await freshNamespace('budget-lease');
  const demands = { a: { n: 0 }, b: { n: 0 }, c: { n: 0 } };
  const [a, b, c] = (['a', 'b', 'c'] as const).map((id) => holder(namespace, id, demands[id]));
  for (const h of [a, b, c]) h.budget.join();

  // All idle: an even split, each holder spending its share.
  await waitFor(() => [a, b, c].every((h) => h.budget.limit().rate === 3.333), { timeoutMs: 20_000, description: 'an even split among three idle holders' });
  expect((await record(namespace)).record.entries.size).toBe(3);

  demands.b.n = 250;
  await waitFor(() => b.budget.limit().rate === 9.6 && b.budget.limit().burst === 18, { timeoutMs: 20_000, description: 'the busy holder with 9.6/s and 18' });
  expect(a.budget.limit()).toEqual({ rate: 0.2, burst: 1 });
  expect(c.budget.limit()).toEqual({ rate: 0.2, burst: 1 });
  const seen = (await record(namespace)).record;
  expect(withinBudget(seen, BUDGET)).toBe(true);
  expect(seen.entries.get('b')).toMatchObject({ rate: 9.6, burst: 18, demand: 250 });
  // Concurrent writers met each other: conflicts were read again, never overwritten.
  const conflicts = (await Promise.all([a, b, c].map((h) => h.metric('vault_sync_budget_writes_total', { result: 'conflict' })))).reduce((x, y) => x + y, 0);
  const oks = (await Promise.all([a, b, c].map((h) => h.metric('vault_sync_budget_writes_total', { result: 'ok' })))).reduce((x, y) => x + y, 0);
  expect(oks).toBeGreaterThan(6);
  process.stderr.write(`[budget-lease] ${oks} writes, ${conflicts} conflicts\n`);

  // c leaves: its entry is removed and it spends nothing.
  await c.budget.leave();
  expect(c.budget.limit()).toEqual({ rate: 0, burst: 0 });
  expect((await record(namespace)).record.entries.has('c')).toBe(false);
  expect(await c.metric('vault_sync_budget_share', { dimension: 'rate' })).toBe(0);
});

test('a record edited into something unreadable is never overwritten: every holder stops growing and spends nothing once its share lapses, counted as invalid', async () => {
  const namespace = await freshNamespace('budget-lease-bad');
  const a = holder(namespace, 'a', { n: 5 });
  a.budget.join();
  await waitFor(() => a.budget.limit().rate > 0, { timeoutMs: 20_000, description: 'a holding a share' });
  const { lease } = await record(namespace);
  // By hand: an entry whose rate is not a number.
  await leases.replaceNamespacedLease({ namespace, name: 'vso-budget', body: { ...lease, metadata: { ...lease.metadata, annotations: { [BUDGET_ANNOTATION]: '{"version":1,"entries":{"a":{"rate":"all"}}}' } } } });
  await waitFor(async () => (await a.metric('vault_sync_budget_writes_total', { result: 'invalid' })) >= 2 && a.budget.limit().rate === 0, {
    timeoutMs: 20_000,
    description: 'the holder refusing the record and its share lapsed',
  });
  expect(a.budget.holds()).toBe(false);
  const after = await leases.readNamespacedLease({ namespace, name: 'vso-budget' });
  expect(after.metadata?.annotations?.[BUDGET_ANNOTATION]).toBe('{"version":1,"entries":{"a":{"rate":"all"}}}');
});
