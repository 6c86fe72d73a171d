// Drift checks by listing: the strict parse and the paging of `LIST <mount>/detailed-metadata/<folder>`, what a
// refusal means and how long it is kept per mount, the pipeline's pages (scope-checked, behind changes in the fair
// line), and the gatherer's grouping by folder (the fake KV engine of sync-world; OpenBao is the e2e test's).
import fc from 'fast-check';
import { pino } from 'pino';
import { driftDueInMs, driftPhaseMs } from '../../src/sync/change-detection.js';
import { classifyListingError, collectPages, listingCovers, ListingFormatError, parseDetailedPage, type DetailedPage, type PageAnswer } from '../../src/vault/detailed-listing.js';
import { VaultRequestError } from '../../src/vault/errors.js';
import { FORBIDDEN_LISTING_RECHECK_MS, KvV2 } from '../../src/vault/kv-v2.js';
import type { NodeVaultClient } from '../../src/vault/node-vault-client.js';
import { Level, levelOf, VaultPipeline } from '../../src/vault/pipeline.js';
import { wholeMounts } from '../../src/vault/scope.js';
import { pageQuery } from '../../src/vault/transport.js';
import type { VaultRequests } from '../../src/vault/vault-api.js';
import { syncWorld } from './fakes/sync-world.js';

const scope = wholeMounts(['secret'], 'a unit test');
const folder = { mount: 'secret', key: 'team-a/app' };

/** One key as OpenBao 2.7.2 answers it (copied from a real answer; times shortened). */
function keyInfo(version: number, custom: Record<string, string> | null = null, deleted = false) {
  const versions: Record<string, unknown> = {};
  for (let v = 1; v <= version; v++) versions[String(v)] = { created_time: '2026-12-03T14:48:21Z', deletion_time: deleted && v === version ? '2026-12-03T14:50:00Z' : '', destroyed: false };
  return { cas_required: false, created_time: '2026-12-03T14:48:21Z', current_metadata_version: 0, current_version: version, custom_metadata: custom, delete_version_after: '0s', max_versions: 0, metadata_cas_required: false, oldest_version: 0, updated_time: '2026-12-03T14:48:21Z', versions };
}
const answer = (info: Record<string, unknown>, keys = Object.keys(info)) => ({ request_id: 'x', data: { key_info: info, keys } });

describe('one page, parsed strictly', () => {
  test('leaves by name with their version, marks and deletion; sub-folders and names outside the grammar are no paths', () => {
    const page = parseDetailedPage(answer({ a: keyInfo(2, { 'managed-by': 'vault-sync-operator' }), b: keyInfo(1, null, true), 'c d': keyInfo(1), 'sub/': {} }), undefined, 10);
    expect(page.names).toEqual(['a', 'b', 'c d', 'sub/']);
    expect([...page.entries.keys()]).toEqual(['a', 'b']);
    expect(page.entries.get('a')).toEqual({ currentVersion: 2, customMetadata: { 'managed-by': 'vault-sync-operator' }, currentVersionDeleted: false });
    expect(page.entries.get('b')).toEqual({ currentVersion: 1, customMetadata: {}, currentVersionDeleted: true });
  });

  test('a metadata-only key (no version) and a hostile custom_metadata key stay plain data', () => {
    const info = JSON.parse('{"k":{"current_version":0,"custom_metadata":{"__proto__":"x"},"versions":{}}}');
    const metadata = parseDetailedPage(answer(info), undefined, 10).entries.get('k')!;
    expect(metadata.currentVersion).toBe(0);
    expect(Object.keys(metadata.customMetadata)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(metadata.customMetadata)).toBe(Object.prototype);
  });

  test.each([
    ['no data', { data: null }],
    ['keys not strings', answer({ a: keyInfo(1) }, [1 as unknown as string])],
    ['out of order', answer({ b: keyInfo(1), a: keyInfo(1) }, ['b', 'a'])],
    ['a name repeated', answer({ a: keyInfo(1) }, ['a', 'a'])],
    ['a name not after `after`', answer({ a: keyInfo(1) })],
    ['more names than the limit', answer({ x: keyInfo(1), y: keyInfo(1), z: keyInfo(1) })],
    ['a leaf without its metadata', answer({}, ['x'])],
    ['a version that is not whole', answer({ x: { ...keyInfo(1), current_version: '1' } })],
    ['custom_metadata not of strings', answer({ x: { ...keyInfo(1), custom_metadata: { a: 1 } } })],
  ])('refused: %s', (_why, body) => {
    expect(() => parseDetailedPage(body, 'a', 2)).toThrow(ListingFormatError);
  });
});

describe('paging', () => {
  /** A folder of `count` leaves (l0000, l0001, …) served `limit` at a time after `after`, as OpenBao pages it. */
  function folderOf(count: number) {
    const names = Array.from({ length: count }, (_, i) => `l${String(i).padStart(4, '0')}`);
    const asked: Array<string | undefined> = [];
    const fetch = (limit: number) => async (after: string | undefined): Promise<PageAnswer> => {
      asked.push(after);
      const rest = names.filter((n) => after === undefined || n > after).slice(0, limit);
      const info = Object.fromEntries(rest.map((n) => [n, keyInfo(1)]));
      return { kind: 'page', page: parseDetailedPage(answer(info, rest), after, limit) };
    };
    return { names, asked, fetch };
  }

  test('every page until a short one, each starting after the last name of the one before', async () => {
    const { asked, fetch } = folderOf(25);
    const listing = await collectPages(fetch(10), { limit: 10 });
    expect('refused' in listing).toBe(false);
    if ('refused' in listing) return;
    expect(listing.entries.size).toBe(25);
    expect(listing.stoppedAfter).toBeUndefined();
    expect(asked).toEqual([undefined, 'l0009', 'l0019']);
  });

  test('a folder of exactly whole pages takes one more page, which is empty', async () => {
    const { asked, fetch } = folderOf(20);
    const listing = await collectPages(fetch(10), { limit: 10 });
    expect(asked).toEqual([undefined, 'l0009', 'l0019']);
    expect('refused' in listing ? -1 : listing.entries.size).toBe(20);
  });

  test('stops once past the greatest name asked about; names after it are not known either way', async () => {
    const { asked, fetch } = folderOf(100);
    const listing = await collectPages(fetch(10), { limit: 10, through: 'l0015' });
    expect(asked).toEqual([undefined, 'l0009']);
    if ('refused' in listing) throw new Error('refused');
    expect(listing.stoppedAfter).toBe('l0019');
    expect(listingCovers(listing, 'l0019')).toBe(true);
    expect(listingCovers(listing, 'l0020')).toBe(false);
  });

  test('bounded: at most maxPages pages, and it says where it stopped', async () => {
    const { asked, fetch } = folderOf(1000);
    const listing = await collectPages(fetch(10), { limit: 10, maxPages: 3 });
    expect(asked).toHaveLength(3);
    if ('refused' in listing) throw new Error('refused');
    expect(listing.entries.size).toBe(30);
    expect(listing.stoppedAfter).toBe('l0029');
  });

  test('a refusal of any page is the answer for the listing', async () => {
    let pages = 0;
    const listing = await collectPages(async (): Promise<PageAnswer> => (++pages === 2 ? { kind: 'refused', why: 'forbidden' } : { kind: 'page', page: { names: Array.from({ length: 2 }, (_, i) => `p${pages}${i}`), entries: new Map() } as DetailedPage }), { limit: 2 });
    expect(listing).toEqual({ refused: 'forbidden' });
  });

  test('the page query: a whole limit and a canonical name, encoded; anything else is not sent', () => {
    expect(pageQuery({ limit: 1000 })).toBe('&limit=1000');
    expect(pageQuery({ limit: 2, after: 'a.b-c_d' })).toBe('&limit=2&after=a.b-c_d');
    expect(pageQuery({ limit: 2, after: 'sub/' })).toBe('&limit=2&after=sub%2F');
    expect(pageQuery({ limit: 2, after: 'a&b=c' })).toBeUndefined();
    expect(pageQuery({ limit: 0 })).toBeUndefined();
    expect(pageQuery({ limit: 1.5 })).toBeUndefined();
  });
});

describe('what the server says, learned once per mount', () => {
  const refusal = (status: number, kind: 'not-found' | 'forbidden' | 'unknown' | 'server', says = '') => new VaultRequestError('list-detailed', 'secret/x', status, kind, `HTTP ${status}${says}`);

  test('classification: an invalid path or 405 is no such listing, a bare 404 an empty folder, a 403 no `list`', () => {
    expect(classifyListingError(refusal(404, 'not-found', ': Invalid path for a versioned K/V secrets engine. See the API docs'))).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(classifyListingError(refusal(405, 'unknown', ': 1 error occurred: * unsupported operation'))).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(classifyListingError(refusal(404, 'not-found'))).toEqual({ kind: 'empty' });
    expect(classifyListingError(refusal(403, 'forbidden', ': permission denied'))).toEqual({ kind: 'refused', why: 'forbidden' });
    expect(classifyListingError(refusal(503, 'server'))).toBeUndefined();
    expect(classifyListingError(new Error('x'))).toBeUndefined();
  });

  function requestsAnswering(answers: Array<() => unknown>) {
    const sent: string[] = [];
    const requests = {
      read: async (_op: string, _target: string, apiPath: string, _hooks: unknown, options?: { listPage?: { after?: string } }) => {
        sent.push(`${apiPath}${options?.listPage?.after ? `>${options.listPage.after}` : ''}`);
        return answers.shift()!();
      },
    } as unknown as VaultRequests;
    return { sent, requests };
  }

  test('HashiCorp Vault (no such endpoint): one request, then none for any folder of the mount', async () => {
    const { sent, requests } = requestsAnswering([() => { throw refusal(404, 'not-found', ': Invalid path for a versioned K/V secrets engine.'); }]);
    const learned: string[] = [];
    const kv = new KvV2(requests, Date.now, (state) => learned.push(state));
    expect(await kv.listDetailedPage(folder, { limit: 10 })).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(await kv.listDetailedPage({ mount: 'secret', key: 'other' }, { limit: 10 })).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(sent).toEqual(['secret/detailed-metadata/team-a/app']);
    expect(learned).toEqual(['unsupported']); // said once (the operator logs it)
    expect(kv.detailedListingSupport).toBe('unsupported');
  });

  test('a 403 is kept for a while (no request), then asked again: a policy fix is picked up', async () => {
    const { sent, requests } = requestsAnswering([() => { throw refusal(403, 'forbidden'); }, () => answer({ a: keyInfo(1) })]);
    let now = 1_000_000;
    const learned: string[] = [];
    const kv = new KvV2(requests, () => now, (state) => learned.push(state));
    expect(await kv.listDetailedPage(folder, { limit: 10 })).toEqual({ kind: 'refused', why: 'forbidden' });
    now += FORBIDDEN_LISTING_RECHECK_MS - 1;
    expect(await kv.listDetailedPage(folder, { limit: 10 })).toEqual({ kind: 'refused', why: 'forbidden' });
    expect(sent).toHaveLength(1);
    now += 1;
    const page = await kv.listDetailedPage(folder, { limit: 10 });
    expect(page.kind === 'page' ? [...page.page.entries.keys()] : page).toEqual(['a']);
    expect(sent).toHaveLength(2);
    expect(kv.detailedListingSupport).toBe('supported');
    expect(learned).toEqual(['forbidden', 'supported']);
  });

  test('an empty or absent folder (bare 404) is an empty page; a malformed answer is a clear terminal error', async () => {
    const { requests } = requestsAnswering([() => { throw refusal(404, 'not-found'); }, () => ({ data: { keys: 'x' } })]);
    const kv = new KvV2(requests);
    expect(await kv.listDetailedPage(folder, { limit: 10 })).toEqual({ kind: 'page', page: { names: [], entries: new Map() } });
    await expect(kv.listDetailedPage(folder, { limit: 10 })).rejects.toMatchObject({ kind: 'bad-request', message: expect.stringMatching(/^Vault list-detailed secret\/team-a\/app failed: the server's detailed listing could not be read: the listing has no list of key names$/) });
  });
});

describe('the pipeline: pages through the fair line, drift behind changes', () => {
  const tick = async () => {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  };
  type Hooks = { onStart?(): void; source?: string };

  function servedClient(pages: Map<string | undefined, string[]>) {
    const calls: Array<{ name: string; serve(): void }> = [];
    const call = (name: string, hooks: Hooks | undefined, value: unknown) => new Promise((resolve) => calls.push({ name, serve: () => (hooks?.onStart?.(), resolve(value)) }));
    const client = {
      writeData: (p: { key: string }, _d: unknown, _o: unknown, hooks?: Hooks) => call(`write:${p.key}`, hooks, { version: 1 }),
      readMetadata: (p: { key: string }, hooks?: Hooks) => call(`read-metadata:${p.key}`, hooks, undefined),
      listDetailedPage: (f: { key: string }, page: { after?: string; limit: number }, hooks?: Hooks) => {
        const names = pages.get(page.after) ?? [];
        return call(`list-detailed:${f.key}>${page.after ?? ''}`, hooks, { kind: 'page', page: { names, entries: new Map(names.map((n) => [n, { currentVersion: 1, customMetadata: {} }])) } });
      },
    };
    return { calls, client: client as unknown as NodeVaultClient };
  }

  async function serveAll(calls: Array<{ name: string; serve(): void }>): Promise<string[]> {
    const order: string[] = [];
    for (let served = 0; served < calls.length; served++) {
      order.push(calls[served].name);
      calls[served].serve();
      await tick();
    }
    return order;
  }

  test('drift reads rank below data and marks', () => {
    expect([levelOf('read-metadata'), levelOf('write-metadata'), levelOf('list-detailed', true), levelOf('write', true)]).toEqual([Level.data, Level.marks, Level.drift, Level.drift]);
    expect(Level.drift).toBeGreaterThan(Level.marks);
  });

  test('a drift check queued before a change\'s writes is served after them', async () => {
    const { calls, client } = servedClient(new Map());
    const pipeline = new VaultPipeline({ client, batchSize: 1, largeSecretThresholdBytes: 1024, maxSecretBytes: 2048, log: pino({ level: 'silent' }) });
    const first = pipeline.writeData({ mount: 'secret', key: 'busy/0' }, new Map(), { cas: 0 }, { source: 'Deployment/ns/busy', scope });
    await tick();
    const drift = [pipeline.readMetadata({ mount: 'secret', key: 'quiet/x' }, { source: 'Deployment/ns/quiet', scope, drift: true }), pipeline.listDetailedMetadata({ mount: 'secret', key: 'quiet' }, { source: 'Deployment/ns/quiet', scope, drift: true })];
    await tick();
    const writes = [1, 2].map((i) => pipeline.writeData({ mount: 'secret', key: `change/${i}` }, new Map(), { cas: 0 }, { source: 'Deployment/ns/change', scope }));
    await tick();
    const order = await serveAll(calls);
    await Promise.all([first, ...drift, ...writes]);
    expect(order).toEqual(['write:busy/0', 'write:change/1', 'write:change/2', 'read-metadata:quiet/x', 'list-detailed:quiet>']);
    await pipeline.stop();
  });

  test('each page is one request, after the last name of the page before, and a folder outside the scope is refused unsent', async () => {
    const full = Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    const { calls, client } = servedClient(new Map([[undefined, full], ['n0999', ['z']]]));
    const pipeline = new VaultPipeline({ client, batchSize: 5, largeSecretThresholdBytes: 1024, maxSecretBytes: 2048, log: pino({ level: 'silent' }) });
    const listing = pipeline.listDetailedMetadata({ mount: 'secret', key: 'big' }, { source: 'Deployment/ns/a', scope });
    await tick();
    expect(await serveAll(calls)).toEqual(['list-detailed:big>', 'list-detailed:big>n0999']);
    const result = await listing;
    expect('refused' in result ? -1 : result.entries.size).toBe(1001);
    await expect(pipeline.listDetailedMetadata({ mount: 'other', key: 'x' }, { source: 'Deployment/ns/a', scope })).rejects.toMatchObject({ kind: 'outside-scope' });
    expect(calls).toHaveLength(2);
    await pipeline.stop();
  });
});

describe('the gatherer: one listing per folder', () => {
  const paths = (folderKey: string, count: number) => Array.from({ length: count }, (_, i) => `${folderKey}/s${i}`);

  /** A Deployment syncing 10 Secrets into one folder, with a drift period. */
  async function syncedWorld(detailed: 'supported' | 'unsupported' | 'forbidden') {
    const world = syncWorld();
    world.vault.detailedListing = detailed;
    const names = Array.from({ length: 10 }, (_, i) => `s${i}`);
    for (const name of names) world.cluster.putSecret('team-a', name, { v: name });
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web', 'vault-sync.io/reconcile': '1m' }, names);
    await world.reconciler.reconcile('Deployment/team-a/web');
    return world;
  }

  async function driftCheck(world: Awaited<ReturnType<typeof syncedWorld>>) {
    world.clock.now += 61_000;
    const before = world.vault.requests.length;
    const outcome = await world.reconciler.reconcile('Deployment/team-a/web');
    return { outcome, requests: world.vault.requests.slice(before) };
  }

  test('before its slot a source sends nothing and is requeued for the slot; at the slot it checks, and is requeued one period on', async () => {
    const world = await syncedWorld('supported');
    const key = 'Deployment/team-a/web';
    const last = Date.parse(world.records.records.get(key)!.lastDriftCheckTime!);
    const due = driftDueInMs(key, 60_000, last, world.clock.now);
    expect(due).toBeGreaterThan(0);
    const before = world.vault.requests.length;
    expect(await world.reconciler.reconcile(key)).toEqual({ outcome: 'unchanged', requeueAfterMs: due });
    expect(world.vault.requests.length).toBe(before);
    world.clock.now += due;
    expect(await world.reconciler.reconcile(key)).toEqual({ outcome: 'unchanged', requeueAfterMs: 60_000 });
    expect(world.vault.requests.slice(before).map((r) => r.op)).toEqual(['list-detailed']);
  });

  test('a drift check of 10 paths in one folder is one detailed listing, made as a drift check', async () => {
    const world = await syncedWorld('supported');
    const { requests } = await driftCheck(world);
    expect(requests.map((r) => `${r.op} ${r.path.key}${r.drift ? ' (drift)' : ''}`)).toEqual(['list-detailed team-a/web (drift)']);
  });

  test('without the listing (HashiCorp Vault, or no `list`), one metadata read per path, still as a drift check', async () => {
    for (const detailed of ['unsupported', 'forbidden'] as const) {
      const world = await syncedWorld(detailed);
      const { requests } = await driftCheck(world);
      const reads = requests.filter((r) => r.op === 'read-metadata');
      expect(reads).toHaveLength(10);
      expect(reads.every((r) => r.drift)).toBe(true);
      expect(requests.filter((r) => r.op === 'list-detailed')).toHaveLength(detailed === 'forbidden' ? 1 : 0);
    }
  });

  test('an out-of-band change found by the listing is restored with one write: the listing already proved the path ours', async () => {
    const world = await syncedWorld('supported');
    world.vault.writeOutOfBand({ mount: 'secret', key: 'team-a/web/s3' }, { v: 'by hand' });
    const { requests } = await driftCheck(world);
    expect(world.vault.value('secret/team-a/web/s3')).toEqual({ v: 's3' });
    expect(requests.map((r) => `${r.op} ${r.path.key}${r.drift ? ' (drift)' : ''}`)).toEqual(['list-detailed team-a/web (drift)', 'write team-a/web/s3']);
  });

  test('deleting the source: its 10 paths are proved ours by one listing, then deleted: 11 requests', async () => {
    const world = await syncedWorld('supported');
    world.cluster.deleteObject('Deployment', 'team-a', 'web');
    const before = world.vault.requests.length;
    await world.reconciler.reconcile('Deployment/team-a/web');
    const ops = world.vault.requests.slice(before).map((r) => r.op);
    expect(ops.filter((op) => op === 'list-detailed')).toHaveLength(1);
    expect(ops.filter((op) => op === 'read-metadata')).toHaveLength(0);
    expect(ops.filter((op) => op.startsWith('delete'))).toHaveLength(10);
    expect(ops).toHaveLength(11);
    expect(paths('secret/team-a/web', 10).every((p) => world.vault.value(p) === undefined)).toBe(true);
  });

  test('plan with a token refused the listing reads each path instead, and says the same', async () => {
    const world = await syncedWorld('forbidden');
    const before = world.vault.requests.length;
    const plan = await world.planner.planSource('Deployment/team-a/web');
    const ops = world.vault.requests.slice(before).map((r) => r.op);
    expect(new Set(ops)).toEqual(new Set(['list-detailed', 'read-metadata']));
    expect(ops.filter((op) => op === 'read-metadata')).toHaveLength(10);
    expect(plan).toBeDefined();
  });
});

describe('drift checks spread over their period', () => {
  const PERIOD = 5 * 60_000;

  test('1,000 sources checked together (a restart) fall on slots spread over the period: no tenth of it holds more than twice its share', () => {
    const restart = 1_700_000_000_000;
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 1000; i++) {
      const due = driftDueInMs(`Deployment/ns-${i}/app`, PERIOD, restart, restart);
      expect(due).toBeGreaterThan(0);
      expect(due).toBeLessThanOrEqual(PERIOD);
      buckets[Math.floor(((due - 1) / PERIOD) * 10)]++;
    }
    expect(Math.max(...buckets)).toBeLessThanOrEqual(200);
    expect(Math.min(...buckets)).toBeGreaterThanOrEqual(50);
  });

  test('never more than one period between two checks, and the slot is the source\'s own', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1_000, max: 24 * 3_600_000 }), fc.integer({ min: 0, max: 2 ** 42 }), (key, period, last) => {
        const due = driftDueInMs(key, period, last, last);
        if (!(due > 0 && due <= period)) return false;
        // The check falls on the source's phase, whenever the last one was.
        return (((last + due - driftPhaseMs(key, period)) % period) + period) % period === 0;
      }),
    );
  });

  test('no record of a check: due now', () => {
    expect(driftDueInMs('Deployment/a/b', PERIOD, undefined, 5)).toBe(0);
  });
});
