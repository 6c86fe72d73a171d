// The grant is enforced at the Vault port (the pipeline's entrance), below every caller and before the
// batcher and the limiter: a KV request outside the scope it carries, or carrying none, is refused, never
// reaches the client, is counted as OutsideScope and logged as an internal error. A fake client stands in
// for node-vault and records what reaches it (the real limiter and OpenBao are the e2e tests').
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { scopeOf } from '../../src/vault/tenancy.js';
import { VaultRequestError } from '../../src/vault/errors.js';
import { Metrics } from '../../src/observability/metrics.js';
import { vaultMetricsOf } from '../../src/observability/vault-metrics.js';
import type { NodeVaultClient } from '../../src/vault/node-vault-client.js';
import type { KvPath } from '../../src/vault/path.js';
import { OUTSIDE_SCOPE, VaultPipeline } from '../../src/vault/pipeline.js';
import type { RequestContext } from '../../src/vault/port.js';

const teamA: RequestContext = {
  source: 'Deployment/team-a/web',
  scope: scopeOf('team-a', { tenantPathTemplate: 'secret/{namespace}/', kvMounts: ['secret', 'kv'] }, [{ name: 'g', namespaces: ['team-a'], allowedPathPrefixes: ['kv/shared/'] }]),
};
const at = (mount: string, key: string): KvPath => ({ mount, key });

/** A client that answers at once and records every operation that reached it. */
function recordingClient() {
  const reached: string[] = [];
  const answer = (name: string, value: unknown) => (path: KvPath, ...rest: unknown[]) => {
    const hooks = rest.find((r): r is { onStart?(): void; source?: string } => typeof r === 'object' && r !== null && 'onStart' in r);
    hooks?.onStart?.();
    reached.push(`${name} ${path.mount}/${path.key}${hooks?.source ? ` @${hooks.source}` : ''}`);
    return Promise.resolve(value);
  };
  const client = {
    writeData: answer('write', { version: 1 }),
    writeMetadata: answer('write-metadata', undefined),
    readMetadata: answer('read-metadata', undefined),
    readData: answer('read', undefined),
    listFolder: answer('list', []),
    scanDetailed: answer('scan-detailed', { kind: 'scan', entries: new Map() }),
    deleteLatest: answer('delete-latest', undefined),
    deleteAll: answer('delete-all', undefined),
  };
  return { reached, client: client as unknown as NodeVaultClient };
}

function setup() {
  const { reached, client } = recordingClient();
  const registry = new Metrics({ processMetrics: false });
  const metrics = vaultMetricsOf(registry);
  const refused: string[] = [];
  const record = metrics.refused;
  metrics.refused = (reason) => (refused.push(reason), record(reason));
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(...chunk.toString('utf8').split('\n').filter(Boolean).map((l: string) => JSON.parse(l))), done()) });
  const pipeline = new VaultPipeline({ client, batchSize: 5, largeSecretThresholdBytes: 1024, maxSecretBytes: 2048, log: pino({ level: 'info' }, sink), metrics });
  return { pipeline, reached, refused, lines, registry };
}

/** Every KV operation of the port, on one path, with one context. */
const everyOperation = (pipeline: VaultPipeline, path: KvPath, context: RequestContext): Array<[string, Promise<unknown>]> => [
  ['write', pipeline.writeData(path, new Map([['k', 'v']]), { cas: 0 }, context)],
  ['write-metadata', pipeline.writeMetadata(path, { 'managed-by': 'vault-sync-operator' }, context)],
  ['read-metadata', pipeline.readMetadata(path, context)],
  ['read', pipeline.readData(path, context)],
  ['list', pipeline.listFolder(path, context)],
  ['delete-latest', pipeline.deleteLatest(path, context)],
  ['delete-all', pipeline.deleteAll(path, context)],
];

test.each([
  { reason: 'another tenant\'s path', path: at('secret', 'team-b/x') },
  { reason: 'a path beside the grant (whole segments)', path: at('secret', 'team-a-x/y') },
  { reason: 'sys/, not a KV mount of the operator', path: at('sys', 'policy/evil') },
  { reason: 'an allowed mount outside the grant', path: at('kv', 'team-b/x') },
  { reason: 'a KvPath not in canonical form (a dot segment inside its own prefix)', path: at('secret', 'team-a/../team-b/x') },
])('$reason: every operation refused, none reaches the client, each counted once and logged as an internal error', async ({ path }) => {
  const { pipeline, reached, refused, lines, registry } = setup();
  const results = await Promise.allSettled(everyOperation(pipeline, path, teamA).map(([, p]) => p));
  for (const result of results) {
    expect(result.status).toBe('rejected');
    const error = (result as PromiseRejectedResult).reason;
    expect(error).toBeInstanceOf(VaultRequestError);
    expect(error).toMatchObject({ kind: 'outside-scope', retryable: false, statusCode: undefined });
    expect(error.message).toContain('refused before sending: outside the scope of namespace "team-a" (secret/team-a/, kv/shared/)');
  }
  expect(reached).toEqual([]);
  expect(pipeline.waiting).toBe(0); // never queued: the batcher and the limiter never saw them
  expect(refused).toEqual(Array(7).fill(OUTSIDE_SCOPE));
  expect(await registry.registry.metrics()).toContain('vault_sync_refusals_total{reason="OutsideScope"} 7');
  const errors = lines.filter((l) => l.level === 50);
  expect(errors.map((l) => l.operation)).toEqual(['write', 'write-metadata', 'read-metadata', 'read', 'list', 'delete-latest', 'delete-all']);
  expect(errors.every((l) => String(l.msg).startsWith('internal error: a Vault request was refused before sending') && l.source === 'Deployment/team-a/web')).toBe(true);
  await pipeline.stop();
});

test('a request that carries no scope is refused the same way (only login, renewal, token and mount lookup go without one, and they do not pass the port)', async () => {
  const { pipeline, reached, refused, lines } = setup();
  const unscoped = { source: 'Deployment/team-a/web' } as unknown as RequestContext;
  const results = await Promise.allSettled([...everyOperation(pipeline, at('secret', 'team-a/web'), unscoped), ...everyOperation(pipeline, at('secret', 'team-a/web'), undefined as unknown as RequestContext)].map(([, p]) => p));
  expect(results.map((r) => r.status)).toEqual(Array(14).fill('rejected'));
  expect(results.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(Array(14).fill(expect.stringContaining('refused before sending: the request carries no scope')));
  expect(reached).toEqual([]);
  expect(refused).toHaveLength(14);
  expect(lines.filter((l) => l.level === 50)).toHaveLength(14);
  await pipeline.stop();
});

test('folder LISTs are checked as folders: another tenant\'s folder and the mount itself are outside; its own folder passes', async () => {
  const { pipeline, reached, refused } = setup();
  const results = await Promise.allSettled([
    pipeline.listFolder(at('secret', 'team-b'), teamA),
    pipeline.listFolder(at('secret', ''), teamA),
    pipeline.listFolder(at('kv', ''), teamA),
    pipeline.listFolder(at('secret', 'team-a/web'), teamA),
  ]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'fulfilled']);
  expect(reached).toEqual(['list secret/team-a/web @Deployment/team-a/web']);
  expect(refused).toHaveLength(3);
  await pipeline.stop();
});

test('a scan is checked as a folder (it shows everything below it): the mount and another tenant\'s folder are outside; the tenant prefix passes, as a drift check', async () => {
  const { pipeline, reached, refused } = setup();
  const drift = { ...teamA, drift: true };
  const results = await Promise.allSettled([
    pipeline.scanDetailedMetadata(at('secret', ''), drift, { maxBytes: 1024 }),
    pipeline.scanDetailedMetadata(at('secret', 'team-b'), drift, { maxBytes: 1024 }),
    pipeline.scanDetailedMetadata(at('kv', 'shared'), drift, { maxBytes: 1024 }),
    pipeline.scanDetailedMetadata(at('secret', 'team-a'), drift, { maxBytes: 1024 }),
  ]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
  expect([...reached].sort()).toEqual(['scan-detailed kv/shared @Deployment/team-a/web', 'scan-detailed secret/team-a @Deployment/team-a/web']);
  expect(refused).toEqual([OUTSIDE_SCOPE, OUTSIDE_SCOPE]);
  await pipeline.stop();
});

test('requests inside the scope reach the client, each once, with their source; the scope is checked before the size', async () => {
  const { pipeline, reached, refused } = setup();
  await Promise.all(everyOperation(pipeline, at('secret', 'team-a/web/db'), teamA).map(([, p]) => p));
  await pipeline.readMetadata(at('kv', 'shared/x'), teamA);
  expect([...reached].sort()).toEqual([
    'delete-all secret/team-a/web/db @Deployment/team-a/web',
    'delete-latest secret/team-a/web/db @Deployment/team-a/web',
    'list secret/team-a/web/db @Deployment/team-a/web',
    'read secret/team-a/web/db @Deployment/team-a/web',
    'read-metadata kv/shared/x @Deployment/team-a/web',
    'read-metadata secret/team-a/web/db @Deployment/team-a/web',
    'write secret/team-a/web/db @Deployment/team-a/web',
    'write-metadata secret/team-a/web/db @Deployment/team-a/web',
  ]);
  expect(refused).toEqual([]);
  // Too large AND outside: refused for the scope (the first check), never sized.
  await expect(pipeline.writeData(at('secret', 'team-b/x'), new Map([['k', 'x'.repeat(4096)]]), {}, teamA)).rejects.toMatchObject({ kind: 'outside-scope' });
  await expect(pipeline.writeData(at('secret', 'team-a/x'), new Map([['k', 'x'.repeat(4096)]]), {}, teamA)).rejects.toMatchObject({ kind: 'too-large' });
  expect(refused).toEqual([OUTSIDE_SCOPE]);
  await pipeline.stop();
});
