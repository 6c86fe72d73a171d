// The KV strategy of a mount is chosen once: one mount lookup per mount, shared by every operation waiting
// for it, and the chosen strategy decides each request's path. A fake stands in for the token session and
// the request core (pure logic; OpenBao's own answers are test/e2e/vault-kv.test.ts's).
import { pino } from 'pino';
import { VaultRequestError } from '../../src/vault/errors.js';
import { KvMounts, kvVersionOfMount } from '../../src/vault/kv-mounts.js';
import { KV1_METADATA_KEY } from '../../src/vault/kv-v1.js';
import type { RequestHooks } from '../../src/vault/request-core.js';
import type { SendOptions, VaultRequests } from '../../src/vault/vault-api.js';

const log = pino({ level: 'silent' });
const MOUNT_LOOKUP = 'sys/internal/ui/mounts/';

interface Recorded {
  operation: string;
  verb: 'read' | 'write' | 'delete';
  apiPath: string;
  body?: unknown;
  source?: string;
  options?: SendOptions;
}

/**
 * Answers mount lookups from `mounts` (a function: an answer, or an error to throw) and KV reads from `data`,
 * each after a macrotask so that operations started together really wait together. Records every request.
 */
function fakeRequests(mounts: Record<string, () => unknown>, data: Record<string, unknown> = {}) {
  const recorded: Recorded[] = [];
  const later = <T>(answer: () => T) => new Promise<T>((resolve, reject) => setImmediate(() => {
    try {
      resolve(answer());
    } catch (error) {
      reject(error);
    }
  }));
  const requests: VaultRequests = {
    read(operation, _target, apiPath, hooks?: RequestHooks, options?: SendOptions) {
      recorded.push({ operation, verb: 'read', apiPath, source: hooks?.source, options });
      if (apiPath.startsWith(MOUNT_LOOKUP)) {
        const answer = mounts[apiPath.slice(MOUNT_LOOKUP.length)];
        return later(() => (answer ? answer() : forbidden(operation, apiPath)));
      }
      return later(() => (apiPath in data ? data[apiPath] : notFound(operation, apiPath)));
    },
    write(operation, _target, apiPath, body, hooks?: RequestHooks, options?: SendOptions) {
      recorded.push({ operation, verb: 'write', apiPath, body, source: hooks?.source, options });
      return later(() => ({ data: { version: 3 } }));
    },
    delete(operation, _target, apiPath, hooks?: RequestHooks) {
      recorded.push({ operation, verb: 'delete', apiPath, source: hooks?.source });
      return later(() => undefined);
    },
  };
  const lookups = () => recorded.filter((r) => r.operation === 'mount-lookup').map((r) => r.apiPath);
  return { requests, recorded, lookups };
}

const forbidden = (operation: string, target: string): never => {
  throw new VaultRequestError(operation, target, 403, 'forbidden', 'HTTP 403');
};
const notFound = (operation: string, target: string): never => {
  throw new VaultRequestError(operation, target, 404, 'not-found', 'HTTP 404');
};
const kv = (version?: string) => () => ({ data: { type: 'kv', options: version === undefined ? null : { version } } });

describe('kvVersionOfMount: the version from a mount lookup', () => {
  test('kv with version 2 is v2; kv with version 1, without options, and the old "generic" are v1', () => {
    expect(kvVersionOfMount('a', kv('2')())).toBe(2);
    expect(kvVersionOfMount('a', kv('1')())).toBe(1);
    expect(kvVersionOfMount('a', kv()())).toBe(1);
    expect(kvVersionOfMount('a', { data: { type: 'generic' } })).toBe(1);
  });

  test('a mount of another engine is a bad request naming the mount and its type', () => {
    expect(() => kvVersionOfMount('pki', { data: { type: 'pki' } })).toThrow(expect.objectContaining({ kind: 'bad-request', message: expect.stringContaining('"pki/" is a pki mount, not a KV secrets engine') }));
    expect(() => kvVersionOfMount('odd', undefined)).toThrow(expect.objectContaining({ kind: 'bad-request' }));
  });
});

describe('KvMounts: the KV strategy chosen once per mount', () => {
  test('operations waiting together on two mounts cause one lookup per mount, and each mount gets its version\'s strategy', async () => {
    const { requests, lookups } = fakeRequests({ secret: kv('2'), legacy: kv('1') });
    const mounts = new KvMounts(requests, log);
    const strategies = await Promise.all(Array.from({ length: 20 }, (_, i) => mounts.strategyFor(i % 2 === 0 ? 'secret' : 'legacy')));
    expect(lookups()).toEqual([`${MOUNT_LOOKUP}secret`, `${MOUNT_LOOKUP}legacy`]);
    expect(new Set(strategies.filter((_, i) => i % 2 === 0)).size).toBe(1);
    expect(new Set(strategies.filter((_, i) => i % 2 === 1)).size).toBe(1);
    expect(strategies[0].version).toBe(2);
    expect(strategies[1].version).toBe(1);
  });

  test('later operations use the chosen strategy: no lookup after the first, whatever the operation', async () => {
    const { requests, lookups, recorded } = fakeRequests({ secret: kv('2') }, { 'secret/data/app': { data: { data: { a: '1' } } } });
    const mounts = new KvMounts(requests, log);
    expect(await mounts.checkMounts(['secret'])).toEqual(new Map([['secret', 2]]));
    const strategy = await mounts.strategyFor('secret');
    expect(await strategy.readData({ mount: 'secret', key: 'app' })).toEqual(new Map([['a', '1']]));
    await strategy.deleteAll({ mount: 'secret', key: 'app' });
    expect(await mounts.kvVersion('secret')).toBe(2);
    expect(lookups()).toEqual([`${MOUNT_LOOKUP}secret`]);
    expect(recorded.map((r) => `${r.operation} ${r.apiPath}`)).toEqual([`mount-lookup ${MOUNT_LOOKUP}secret`, 'read secret/data/app', 'delete secret/metadata/app']);
  });

  test('a failed lookup is forgotten: the next operation asks again, and the error names the mount and the setting to check', async () => {
    let refuse = true;
    const { requests, lookups } = fakeRequests({ team: () => (refuse ? forbidden('mount-lookup', 'team') : kv('2')()) });
    const mounts = new KvMounts(requests, log);
    await expect(mounts.strategyFor('team')).rejects.toEqual(
      expect.objectContaining({ kind: 'not-found', statusCode: 403, message: expect.stringContaining('the KV mount "team/" does not exist or this token may not use it (HTTP 403); check --vault-kv-mounts') }),
    );
    refuse = false;
    expect((await mounts.strategyFor('team')).version).toBe(2);
    expect((await mounts.strategyFor('team')).version).toBe(2);
    expect(lookups()).toEqual([`${MOUNT_LOOKUP}team`, `${MOUNT_LOOKUP}team`]);
  });

  test('checkMounts asks the mounts in order and stops at the first that is not KV', async () => {
    const { requests, lookups } = fakeRequests({ secret: kv('2'), pki: () => ({ data: { type: 'pki' } }), legacy: kv('1') });
    const mounts = new KvMounts(requests, log);
    await expect(mounts.checkMounts(['secret', 'pki', 'legacy'])).rejects.toEqual(expect.objectContaining({ kind: 'bad-request' }));
    expect(lookups()).toEqual([`${MOUNT_LOOKUP}secret`, `${MOUNT_LOOKUP}pki`]);
  });
});

describe('the chosen strategy decides the requests', () => {
  const app = (mount: string) => ({ mount, key: 'team-a/app' });

  test('KV v2: metadata, data, list and the two deletes go to their API paths; the source rides along', async () => {
    const { requests, recorded } = fakeRequests({ secret: kv('2') }, { 'secret/metadata/team-a/app': { data: { current_version: 2, custom_metadata: { owner: 'x' }, versions: { 2: { deletion_time: '' } } } } });
    const v2 = await new KvMounts(requests, log).strategyFor('secret');
    const hooks = { source: 'Deployment/team-a/app' };
    expect(await v2.readMetadata(app('secret'), hooks)).toEqual({ currentVersion: 2, customMetadata: { owner: 'x' }, currentVersionDeleted: false });
    expect(await v2.writeData(app('secret'), new Map([['k', 'v']]), { cas: 2, stream: true, ...hooks })).toEqual({ version: 3 });
    expect(await v2.listFolder({ mount: 'secret', key: 'team-a' }, hooks)).toEqual([]);
    await v2.deleteLatest(app('secret'), hooks);
    await v2.deleteAll(app('secret'), hooks);
    expect(recorded.slice(1).map((r) => [r.operation, r.verb, r.apiPath, r.source])).toEqual([
      ['read-metadata', 'read', 'secret/metadata/team-a/app', hooks.source],
      ['write', 'write', 'secret/data/team-a/app', hooks.source],
      ['list', 'read', 'secret/metadata/team-a', hooks.source],
      ['delete', 'delete', 'secret/data/team-a/app', hooks.source],
      ['delete', 'delete', 'secret/metadata/team-a/app', hooks.source],
    ]);
    expect(recorded[2].body).toEqual({ data: new Map([['k', 'v']]), options: { cas: 2 } });
    expect(recorded[2].options).toEqual({ streamBody: true });
    expect(recorded[3].options).toEqual({ listQuery: true });
  });

  test('KV v1: no metadata endpoint; the marks ride in the data, and a data write keeps the marks it last read without reading again', async () => {
    const { requests, recorded } = fakeRequests({ legacy: kv('1') }, { 'legacy/team-a/app': { data: { k: 'old', [KV1_METADATA_KEY]: { owner: 'x' } } } });
    const v1 = await new KvMounts(requests, log).strategyFor('legacy');
    expect(await v1.readMetadata(app('legacy'))).toEqual({ currentVersion: 0, customMetadata: { owner: 'x' } });
    expect(await v1.readData(app('legacy'))).toEqual(new Map([['k', 'old']]));
    expect(await v1.writeData(app('legacy'), new Map([['k', 'new']]), {})).toEqual({ version: 0 });
    await v1.deleteLatest(app('legacy'));
    expect(recorded.slice(1).map((r) => [r.operation, r.verb, r.apiPath])).toEqual([
      ['read', 'read', 'legacy/team-a/app'],
      ['read', 'read', 'legacy/team-a/app'],
      ['write', 'write', 'legacy/team-a/app'],
      ['delete', 'delete', 'legacy/team-a/app'],
    ]);
    expect(recorded[3].body).toEqual(new Map<string, unknown>([['k', 'new'], [KV1_METADATA_KEY, { owner: 'x' }]]));
  });

  test('KV v1: a data key named like the marks is refused before any request', async () => {
    const { requests, recorded } = fakeRequests({ legacy: kv('1') });
    const v1 = await new KvMounts(requests, log).strategyFor('legacy');
    await expect(v1.writeData(app('legacy'), new Map([[KV1_METADATA_KEY, 'x']]), {})).rejects.toEqual(expect.objectContaining({ kind: 'bad-request' }));
    expect(recorded.map((r) => r.operation)).toEqual(['mount-lookup']);
  });
});
