// The pipeline puts every KV operation in the batcher's fair line, the ownership pre-check's folder LIST
// included: a LIST sent straight to the limiter would go ahead of every source already waiting. A fake client
// stands in for node-vault (order only; the limiter and OpenBao are the e2e tests').
import { pino } from 'pino';
import type { NodeVaultClient } from '../../src/vault/node-vault-client.js';
import { VaultPipeline } from '../../src/vault/pipeline.js';
import { wholeMounts } from '../../src/vault/scope.js';

const path = (key: string) => ({ mount: 'secret', key });
const scope = wholeMounts(['secret'], 'a unit test');
const tick = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** A client whose requests get their token and finish when the test serves them, one at a time. */
function servedClient() {
  const calls: Array<{ name: string; source?: string; serve(): void }> = [];
  const call = (name: string, hooks: { onStart?(): void; source?: string } | undefined, value: unknown) =>
    new Promise((resolve) => calls.push({ name, source: hooks?.source, serve: () => (hooks?.onStart?.(), resolve(value)) }));
  const client = {
    writeData: (p: { key: string }, _data: unknown, _options: unknown, hooks?: { onStart?(): void; source?: string }) => call(`write:${p.key}`, hooks, { version: 1 }),
    listFolder: (folder: { key: string }, hooks?: { onStart?(): void; source?: string }) => call(`list:${folder.key}`, hooks, []),
  };
  return { calls, client: client as unknown as NodeVaultClient };
}

test('a folder LIST waits in the fair line in its source\'s turn (data level), not ahead of the sources already waiting', async () => {
  const { calls, client } = servedClient();
  const pipeline = new VaultPipeline({ client, batchSize: 1, largeSecretThresholdBytes: 1024, maxSecretBytes: 2048, log: pino({ level: 'silent' }) });
  const all: Promise<unknown>[] = [];
  for (const source of ['a', 'b']) for (let i = 0; i < 3; i++) all.push(pipeline.writeData(path(`${source}/${i}`), new Map(), { cas: 0 }, { source: `Deployment/ns/${source}`, scope }));
  await tick();
  const listed = pipeline.listFolder(path('c'), { source: 'Deployment/ns/c', scope });
  await tick();
  // Only the batch already taken is with the client: the LIST waits in the line.
  expect(calls.map((c) => c.name)).toEqual(['write:a/0']);
  const order: string[] = [];
  for (let served = 0; served < calls.length; served++) {
    order.push(`${calls[served].name}@${calls[served].source}`);
    calls[served].serve();
    await tick();
  }
  await Promise.all([...all, listed]);
  // c joined the end of the round (after b), then every source in turn; the source reaches the client.
  expect(order).toEqual([
    'write:a/0@Deployment/ns/a',
    'write:b/0@Deployment/ns/b',
    'list:c@Deployment/ns/c',
    'write:a/1@Deployment/ns/a',
    'write:b/1@Deployment/ns/b',
    'write:a/2@Deployment/ns/a',
    'write:b/2@Deployment/ns/b',
  ]);
  expect(await listed).toEqual([]);
  await pipeline.stop();
});

test('a folder LIST neither waits for nor merges with an operation on a path of the same name', async () => {
  const { calls, client } = servedClient();
  const pipeline = new VaultPipeline({ client, batchSize: 5, largeSecretThresholdBytes: 1024, maxSecretBytes: 2048, log: pino({ level: 'silent' }) });
  const written = pipeline.writeData(path('ns/app'), new Map(), {}, { source: 'Secret/ns/app', scope });
  const listed = pipeline.listFolder(path('ns/app'), { source: 'Deployment/ns/app', scope });
  await tick();
  // Both in the same batch: the folder secret/ns/app/ is not the path secret/ns/app.
  expect(calls.map((c) => c.name)).toEqual(['write:ns/app', 'list:ns/app']);
  for (const call of calls) call.serve();
  await Promise.all([written, listed]);
  await pipeline.stop();
});
