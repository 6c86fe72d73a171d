// Fair shares of the rate budget, as OpenBao saw them (its audit log: the order requests arrived in). Ten big
// sources queue 40 new paths each the way a reconcile does (every data write at once with cas=0, each path's
// ownership metadata as its data lands); then a one-path change of another source and the deletions of a
// third arrive. The waiting line is round-robin across sources and puts values before marks, so:
//  - the small change reaches Vault within a few dozen requests of being asked for, not behind 400;
//  - no source is starved: every big source and the deleting source progress in every round;
//  - no ownership-metadata write goes out while data writes wait.
// Order and counts only; the pace itself is the limiter's (vault-limiter.test.ts) and the bench's.
import type { KvPath } from '../../src/vault/path.js';
import { auditMark, requestsSince, type AuditedRequest } from './helpers/vault-audit.js';
import { waitFor } from './helpers/env.js';
import { kvData, testScope, uniquePrefix, vaultStack, type TestVaultStack } from './helpers/vault-stack.js';

const BIG_SOURCES = 10;
const PATHS_PER_BIG_SOURCE = 40;
const DELETIONS = 10;

/** What a reconcile of a new source does: all data writes at once (cas=0), each path's marks once its data landed. */
function syncNewPaths(stack: TestVaultStack, source: string, paths: KvPath[]): Promise<unknown> {
  return Promise.allSettled(
    paths.map(async (path) => {
      await stack.vault.writeData(path, new Map([['value', path.key]]), { cas: 0 }, { source, scope: testScope });
      await stack.vault.writeMetadata(path, { 'managed-by': 'vault-sync-operator' }, { source, scope: testScope });
    }),
  );
}

test('10 sources x 40 new paths queued: a one-path change of another source is served within a few dozen requests, deletions progress, values go before marks', async () => {
  const prefix = uniquePrefix('fair');
  const stack = await vaultStack();
  await stack.login();
  const ofTest = (r: AuditedRequest) => !r.byRoot && (r.path.startsWith(`secret/data/${prefix}/`) || r.path.startsWith(`secret/metadata/${prefix}/`));
  const sourceOf = (r: AuditedRequest) => r.path.split('/')[3];

  // The deleting source's paths exist first.
  const doomed = Array.from({ length: DELETIONS }, (_, i): KvPath => ({ mount: 'secret', key: `${prefix}/deleter/p${i}` }));
  await Promise.all(doomed.map((path) => stack.vault.writeData(path, new Map([['v', '1']]), {}, { source: 'Deployment/ns/deleter', scope: testScope })));

  const start = auditMark();
  const backlog = Array.from({ length: BIG_SOURCES }, (_, s) =>
    syncNewPaths(stack, `Deployment/ns/big${s}`, Array.from({ length: PATHS_PER_BIG_SOURCE }, (_, i) => ({ mount: 'secret', key: `${prefix}/big${s}/p${i}` }))),
  );
  // Once the backlog is flowing (the burst spent), the small change and the deletions arrive.
  await waitFor(() => requestsSince(start).filter(ofTest).length >= 30, { timeoutMs: 60_000, intervalMs: 50, description: '30 requests of the backlog at OpenBao' });
  const enqueued = auditMark();
  const small = stack.vault.writeData({ mount: 'secret', key: `${prefix}/small/p0` }, new Map([['value', 'small']]), { cas: 0 }, { source: 'Deployment/ns/small', scope: testScope });
  const deletions = Promise.all(doomed.map((path) => stack.vault.deleteAll(path, { source: 'Deployment/ns/deleter', scope: testScope })));
  await small;
  await deletions;
  await waitFor(() => requestsSince(enqueued).filter(ofTest).length >= 150, { timeoutMs: 60_000, intervalMs: 50, description: '150 requests after the small change' });
  await stack.stop(); // what still waits is rejected: the order so far is what this test is about
  await Promise.all(backlog);

  const after = requestsSince(enqueued).filter(ofTest);
  // The small change: its data write within the first few dozen requests after it was asked for
  // (at most one batch already handed to the limiter, then one round of the 12 flows).
  const smallAt = after.findIndex((r) => r.path === `secret/data/${prefix}/small/p0`);
  expect(smallAt).toBeGreaterThanOrEqual(0);
  expect(smallAt).toBeLessThan(5 + 12 + 3);
  expect((await kvData(`${prefix}/small/p0`))?.value).toBe('small');

  // Deletions are not starved: the deleting source's k-th deletion within k rounds of 12 flows (plus a batch).
  const deletionPositions = after.map((r, i) => (r.operation === 'delete' && sourceOf(r) === 'deleter' ? i : -1)).filter((i) => i >= 0);
  expect(deletionPositions).toHaveLength(DELETIONS);
  deletionPositions.forEach((position, k) => expect(position).toBeLessThan((k + 1) * 12 + 5 + 3));
  for (const path of doomed) expect(await kvData(path.key)).toBeUndefined();

  // No big source is starved: in the 100 data writes after the change, round-robin gives each about 10.
  const bigWrites = after.filter((r) => r.path.startsWith(`secret/data/${prefix}/big`)).slice(0, 100);
  expect(bigWrites).toHaveLength(100);
  const perSource = new Map<string, number>();
  for (const r of bigWrites) perSource.set(sourceOf(r), (perSource.get(sourceOf(r)) ?? 0) + 1);
  expect(perSource.size).toBe(BIG_SOURCES);
  for (const count of perSource.values()) {
    expect(count).toBeGreaterThanOrEqual(7);
    expect(count).toBeLessThanOrEqual(13);
  }

  // Values first: while data writes wait, no ownership-metadata write goes out.
  const all = requestsSince(start).filter(ofTest);
  const metadataWrites = all.filter((r) => r.path.startsWith(`secret/metadata/${prefix}/`) && r.operation !== 'delete');
  expect(all.length).toBeGreaterThan(150);
  expect(metadataWrites).toEqual([]);
}, 180_000);
