// Drift checks by one shared scan per root (OpenBao's SCAN): the strict parse of a scan and its byte cap, what a
// refusal means and how long it is kept, the choice of a source's root and the alignment of drift slots by root,
// the sharing rules (never a result taken before the check fell due), and the gatherer over the fake KV engine.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { driftDueInMs, driftPhaseMs } from '../../src/sync/change-detection.js';
import { driftPhaseKey, driftRootOf, relativeTo, rootOfPath } from '../../src/sync/drift-root.js';
import { DriftScans, SHARED_SCAN_TTL_MS, TOO_LARGE_RECHECK_MS } from '../../src/sync/drift-scans.js';
import { ListingFormatError } from '../../src/vault/detailed-listing.js';
import { classifyScanError, parseDetailedScan, type ScanAnswer } from '../../src/vault/detailed-scan.js';
import { toVaultError, VaultRequestError } from '../../src/vault/errors.js';
import { FORBIDDEN_LISTING_RECHECK_MS, KvV2 } from '../../src/vault/kv-v2.js';
import type { KvPath } from '../../src/vault/path.js';
import { wholeMounts, type RequestScope } from '../../src/vault/scope.js';
import { VaultTransport } from '../../src/vault/transport.js';
import type { VaultRequests } from '../../src/vault/vault-api.js';
import { syncWorld } from './fakes/sync-world.js';

/** One key as OpenBao 2.7.2 answers it in a scan (the same object as in a detailed listing). */
function keyInfo(version: number, custom: Record<string, string> | null = null, deleted = false) {
  const versions: Record<string, unknown> = {};
  for (let v = 1; v <= version; v++) versions[String(v)] = { created_time: '2026-12-03T15:34:07Z', deletion_time: deleted && v === version ? '2026-12-03T15:34:10Z' : '', destroyed: false };
  return { cas_required: false, created_time: '2026-12-03T15:34:07Z', current_metadata_version: 0, current_version: version, custom_metadata: custom, delete_version_after: '0s', max_versions: 0, metadata_cas_required: false, oldest_version: 0, updated_time: '2026-12-03T15:34:07Z', versions };
}
/** A scan's answer: keys are paths relative to the folder, in no particular order (as OpenBao sends them). */
const scanAnswer = (info: Record<string, unknown>, keys = Object.keys(info)) => ({ request_id: 'x', data: { key_info: info, keys } });
const path = (key: string): KvPath => ({ mount: 'secret', key });

describe('a scan, parsed strictly', () => {
  test('metadata by relative path, in any order; a sub-folder name or a segment outside the grammar is no path', () => {
    const entries = parseDetailedScan(scanAnswer({ q: keyInfo(1, null, true), 'b/z': keyInfo(3), 'a/x': keyInfo(1, { 'managed-by': 'vault-sync-operator' }), 'a/c d': keyInfo(1), 'a/': {}, 'a/../b': keyInfo(1) }));
    expect([...entries.keys()]).toEqual(['q', 'b/z', 'a/x']);
    expect(entries.get('b/z')).toEqual({ currentVersion: 3, customMetadata: {}, currentVersionDeleted: false });
    expect(entries.get('q')?.currentVersionDeleted).toBe(true);
    expect(entries.get('a/x')?.customMetadata).toEqual({ 'managed-by': 'vault-sync-operator' });
  });

  test('an empty or absent folder is `data: {}` (OpenBao answers 200): nothing below it', () => {
    expect(parseDetailedScan({ data: {} }).size).toBe(0);
  });

  test.each([
    ['no data object', { data: null }, /no data object/],
    ['keys not a list of strings', { data: { keys: [1], key_info: {} } }, /no list of key names/],
    ['no key_info', { data: { keys: ['a'] } }, /no key_info object/],
    ['a key without metadata', { data: { keys: ['a'], key_info: {} } }, /no metadata object/],
    ['a key named twice', scanAnswer({ a: keyInfo(1) }, ['a', 'a']), /names a key twice/],
    ['a current_version that is not whole', scanAnswer({ a: { ...keyInfo(1), current_version: 1.5 } }), /current_version/],
    ['custom_metadata values that are not strings', scanAnswer({ a: { ...keyInfo(1), custom_metadata: { k: 1 } } }), /custom_metadata/],
  ])('refused, never guessed at: %s', (_name, raw, message) => {
    expect(() => parseDetailedScan(raw)).toThrow(ListingFormatError);
    expect(() => parseDetailedScan(raw)).toThrow(message);
  });

  test('bounded: more keys than the bound is refused', () => {
    const info = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`k${i}`, keyInfo(1)]));
    expect(() => parseDetailedScan(scanAnswer(info), 3)).toThrow(/4 keys, more than 3/);
    expect(parseDetailedScan(scanAnswer(info), 4).size).toBe(4);
  });

  test('user keys named like Object.prototype members are plain keys (a Map, own properties)', () => {
    const entries = parseDetailedScan(JSON.parse('{"data":{"keys":["__proto__","constructor/x"],"key_info":{"__proto__":' + JSON.stringify(keyInfo(2)) + ',"constructor/x":' + JSON.stringify(keyInfo(1)) + '}}}'));
    expect([...entries.keys()]).toEqual(['__proto__', 'constructor/x']);
    expect(entries.get('__proto__')?.currentVersion).toBe(2);
  });
});

describe('the byte cap of a scan\'s answer', () => {
  let server: Server;
  let base: string;
  let body = '';
  const seen: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('sent as GET with the fixed query ?scan=true; an answer within the cap is read, one past it is aborted as a terminal too-large', async () => {
    const transport = new VaultTransport({ address: base, timeoutMs: 5_000 });
    try {
      body = JSON.stringify(scanAnswer({ a: keyInfo(1) }));
      const within = await transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team-a`, scanQuery: true, maxResponseBytes: body.length });
      expect(within.body.data.keys).toEqual(['a']);
      expect(seen.at(-1)).toBe('/v1/secret/detailed-metadata/team-a?scan=true');
      body = JSON.stringify(scanAnswer(Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`k${i}`, keyInfo(1)]))));
      const over = await transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team-a`, scanQuery: true, maxResponseBytes: 64 * 1024 }).catch((e: unknown) => e);
      const error = toVaultError('scan-detailed', 'secret/team-a', over);
      expect(error).toMatchObject({ kind: 'too-large', message: 'Vault scan-detailed secret/team-a failed: the answer was longer than the bytes this request may read; not read' });
      expect(classifyScanError(error)).toEqual({ kind: 'refused', why: 'too-large' });
    } finally {
      transport.close();
    }
  });
});

describe('what the server says about scans, learned per mount', () => {
  const refusal = (status: number, kind: VaultRequestError['kind'], says = '') => new VaultRequestError('scan-detailed', 'secret/x', status, kind, `HTTP ${status}${says}`);

  test('classification: 405, 400 and an invalid path are no scan; a bare 404 an empty folder; 403 no `scan` capability', () => {
    expect(classifyScanError(refusal(405, 'unknown'))).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(classifyScanError(refusal(400, 'bad-request', ': unsupported operation'))).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(classifyScanError(refusal(404, 'not-found', ': Invalid path for a versioned K/V secrets engine.'))).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(classifyScanError(refusal(404, 'not-found'))).toEqual({ kind: 'empty' });
    expect(classifyScanError(refusal(403, 'forbidden', ': permission denied'))).toEqual({ kind: 'refused', why: 'forbidden' });
    expect(classifyScanError(refusal(413, 'too-large'))).toBeUndefined();
    expect(classifyScanError(refusal(503, 'server'))).toBeUndefined();
  });

  function requestsAnswering(answers: Array<() => unknown>) {
    const sent: Array<{ path: string; options: unknown }> = [];
    const requests = {
      read: async (_op: string, _target: string, apiPath: string, _hooks: unknown, options?: unknown) => {
        sent.push({ path: apiPath, options });
        return answers.shift()!();
      },
    } as unknown as VaultRequests;
    return { sent, requests };
  }
  const folder = path('team-a');

  test('the request carries the scan query and the cap; the answer is parsed', async () => {
    const { sent, requests } = requestsAnswering([() => scanAnswer({ 'web/s1': keyInfo(2) })]);
    const answer = await new KvV2(requests).scanDetailed(folder, 1234);
    expect(answer.kind === 'scan' ? [...answer.entries.keys()] : answer).toEqual(['web/s1']);
    expect(sent).toEqual([{ path: 'secret/detailed-metadata/team-a', options: { scanQuery: true, maxResponseBytes: 1234 } }]);
  });

  test('no scan on the server (405): one request, then none for any folder of the mount', async () => {
    const { sent, requests } = requestsAnswering([() => { throw refusal(405, 'unknown'); }]);
    const kv = new KvV2(requests);
    expect(await kv.scanDetailed(folder, 1_000)).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(await kv.scanDetailed(path('team-b'), 1_000)).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(sent).toHaveLength(1);
  });

  test('a mount known to have no detailed listing is never scanned', async () => {
    const { sent, requests } = requestsAnswering([() => { throw refusal(404, 'not-found', ': Invalid path for a versioned K/V secrets engine.'); }]);
    const kv = new KvV2(requests);
    expect(await kv.listDetailedPage(folder, { limit: 10 })).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(await kv.scanDetailed(folder, 1_000)).toEqual({ kind: 'refused', why: 'unsupported' });
    expect(sent).toHaveLength(1);
  });

  test('a 403 is kept for a while (no request), then asked again: a policy that grants `scan` is picked up', async () => {
    const { sent, requests } = requestsAnswering([() => { throw refusal(403, 'forbidden'); }, () => scanAnswer({ a: keyInfo(1) })]);
    let now = 1_000_000;
    const kv = new KvV2(requests, () => now);
    expect(await kv.scanDetailed(folder, 1_000)).toEqual({ kind: 'refused', why: 'forbidden' });
    now += FORBIDDEN_LISTING_RECHECK_MS - 1;
    expect(await kv.scanDetailed(folder, 1_000)).toEqual({ kind: 'refused', why: 'forbidden' });
    expect(sent).toHaveLength(1);
    now += 1;
    expect((await kv.scanDetailed(folder, 1_000)).kind).toBe('scan');
    expect(sent).toHaveLength(2);
  });

  test('an answer over the cap refuses that scan only: the next one is sent', async () => {
    const cut = toVaultError('scan-detailed', 'secret/team-a', { name: 'VaultTransportError' });
    expect(cut.kind).not.toBe('too-large'); // (only the transport's own cap error maps to too-large)
    const tooLarge = new VaultRequestError('scan-detailed', 'secret/team-a', 200, 'too-large', 'the answer was longer than the bytes this request may read; not read');
    const { sent, requests } = requestsAnswering([() => { throw tooLarge; }, () => scanAnswer({})]);
    const kv = new KvV2(requests);
    expect(await kv.scanDetailed(folder, 10)).toEqual({ kind: 'refused', why: 'too-large' });
    expect(await kv.scanDetailed(folder, 10)).toEqual({ kind: 'scan', entries: new Map() });
    expect(sent).toHaveLength(2);
  });

  test('an answer that is not a scan is a terminal bad request naming the folder', async () => {
    const { requests } = requestsAnswering([() => ({ data: { keys: 'a' } })]);
    await expect(new KvV2(requests).scanDetailed(folder, 1_000)).rejects.toMatchObject({ kind: 'bad-request', message: "Vault scan-detailed secret/team-a failed: the server's detailed scan could not be read: the scan has no list of key names" });
  });
});

describe('the drift root of a source', () => {
  const tenant = (namespace: string, ...extra: string[][]): RequestScope => ({ namespace, mounts: ['secret'], prefixes: [{ mount: 'secret', key: [namespace] }, ...extra.map((key) => ({ mount: 'secret', key }))] });

  test('the tenant prefix, when the scope gives one: every source of the namespace shares it', () => {
    expect(rootOfPath(tenant('team-a'), path('team-a/web/s1'))).toEqual(path('team-a'));
    expect(driftRootOf(tenant('team-a'), [path('team-a/web/s1'), path('team-a/api/s1')])).toEqual(path('team-a'));
  });

  test('the shortest granted prefix strictly above the path (a VaultSyncPolicy prefix elsewhere is its own root)', () => {
    const scope = tenant('team-a', ['team-a', 'deep'], ['shared', 'team-a']);
    expect(rootOfPath(scope, path('team-a/deep/x/s1'))).toEqual(path('team-a'));
    expect(rootOfPath(scope, path('shared/team-a/s1'))).toEqual(path('shared/team-a'));
  });

  test('whole mounts (no tenant template): the first folder below the mount; a path right below the mount has none', () => {
    const scope = wholeMounts(['secret'], 'team-a');
    expect(rootOfPath(scope, path('apps/web/s1'))).toEqual(path('apps'));
    expect(rootOfPath(scope, path('s1'))).toBeUndefined();
  });

  test('never outside the scope: a grant of one path is no folder, and the first folder above it is not granted', () => {
    const scope: RequestScope = { namespace: 'team-a', mounts: ['secret'], prefixes: [{ mount: 'secret', key: ['shared', 'one'] }] };
    expect(rootOfPath(scope, path('shared/one'))).toBeUndefined();
    expect(driftRootOf(scope, [path('shared/one')])).toBeUndefined();
  });

  test('the root of most paths (ties: the first in path order); none without paths', () => {
    const scope = wholeMounts(['secret'], 'x');
    expect(driftRootOf(scope, [path('b/1/s'), path('a/1/s'), path('b/2/s')])).toEqual(path('b'));
    expect(driftRootOf(scope, [path('b/1/s'), path('a/1/s')])).toEqual(path('a'));
    expect(driftRootOf(scope, [])).toBeUndefined();
  });

  test('relative paths: strictly below the folder, on its mount', () => {
    expect(relativeTo(path('team-a'), path('team-a/web/s1'))).toBe('web/s1');
    expect(relativeTo(path('team-a'), path('team-ab/s1'))).toBeUndefined();
    expect(relativeTo(path('team-a'), { mount: 'other', key: 'team-a/s1' })).toBeUndefined();
  });

  test('aligned by root: any two sources below one root fall due on the same slot, whatever their last checks in the period before', () => {
    const PERIOD = 300_000;
    const root = path('team-a');
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }), fc.string({ minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 2 ** 42 }), fc.integer({ min: 0, max: PERIOD - 1 }), (a, b, slotBase, offset) => {
        // Both last checked within the same slot interval of the root: their next slots are the same instant.
        const phaseKeyA = driftPhaseKey(`Deployment/team-a/${a}`, root);
        const phaseKeyB = driftPhaseKey(`Deployment/team-a/${b}`, root);
        const lastA = slotBase;
        const dueA = lastA + driftDueInMs(phaseKeyA, PERIOD, lastA, lastA);
        const lastB = dueA - PERIOD + offset;
        const dueB = lastB + driftDueInMs(phaseKeyB, PERIOD, lastB, lastB);
        return phaseKeyA === phaseKeyB && dueA === dueB;
      }),
    );
    expect(driftPhaseKey('Deployment/team-a/web', undefined)).toBe('Deployment/team-a/web');
  });
});

describe('the shared scan of a root', () => {
  const root = path('team-a');
  function harness() {
    const clock = { now: 1_000_000 };
    const sent: Array<{ at: number; resolve(answer: ScanAnswer): void; reject(error: unknown): void }> = [];
    const refused: string[] = [];
    const scans = new DriftScans({ now: () => clock.now, onRefused: (r, why) => refused.push(`${r.key} ${why}`) });
    const scan = () => new Promise<ScanAnswer>((resolve, reject) => sent.push({ at: clock.now, resolve, reject }));
    const answered = (size: number): ScanAnswer => ({ kind: 'scan', entries: new Map(Array.from({ length: size }, (_, i) => [`web/s${i}`, { currentVersion: 1, customMetadata: {} }])) });
    return { clock, sent, refused, scans, scan, answered };
  }

  test('checks due at or before the scan was taken join it: one scan for all of them, in flight or answered', async () => {
    const { clock, sent, scans, scan, answered } = harness();
    const first = scans.below(root, clock.now, scan);
    const joined = scans.below(root, clock.now - 5_000, scan);
    expect(sent).toHaveLength(1);
    sent[0].resolve(answered(3));
    clock.now += 10_000;
    const later = scans.below(root, clock.now - 10_000, scan);
    expect(sent).toHaveLength(1);
    expect([(await first)?.size, (await joined)?.size, (await later)?.size]).toEqual([3, 3, 3]);
  });

  test('never a result taken before the check fell due: a check due after the scan was taken sends its own, also while the older one is in flight', async () => {
    const { clock, sent, scans, scan, answered } = harness();
    const early = scans.below(root, clock.now, scan);
    clock.now += 1;
    const due = clock.now;
    const late = scans.below(root, due, scan);
    expect(sent.map((s) => s.at)).toEqual([due - 1, due]);
    sent[0].resolve(answered(1));
    sent[1].resolve(answered(2));
    expect([(await early)?.size, (await late)?.size]).toEqual([1, 2]);
    // The newest scan serves what falls due up to its time, the older one nothing more.
    expect((await scans.below(root, due, scan))?.size).toBe(2);
    expect(sent).toHaveLength(2);
  });

  test('short-lived: past its time a result serves no check, even one due long before', async () => {
    const { clock, sent, scans, scan, answered } = harness();
    const dueAt = clock.now;
    void scans.below(root, dueAt, scan);
    sent[0].resolve(answered(1));
    clock.now += SHARED_SCAN_TTL_MS + 1;
    void scans.below(root, dueAt, scan);
    expect(sent).toHaveLength(2);
  });

  test('a failed scan is not kept: the checks that joined it get its error, the next check asks again', async () => {
    const { clock, sent, scans, scan } = harness();
    const a = scans.below(root, clock.now, scan);
    const b = scans.below(root, clock.now, scan);
    sent[0].reject(new Error('connection reset'));
    await expect(a).rejects.toThrow('connection reset');
    await expect(b).rejects.toThrow('connection reset');
    void scans.below(root, clock.now, scan);
    expect(sent).toHaveLength(2);
  });

  test('no scan on the server: folder listings for good, the mount no longer aligned; said once', async () => {
    const { clock, sent, refused, scans, scan } = harness();
    const answer = scans.below(root, clock.now, scan);
    sent[0].resolve({ kind: 'refused', why: 'unsupported' });
    expect(await answer).toBeUndefined();
    expect(scans.usable(root)).toBe(false);
    clock.now += 365 * 24 * 3_600_000;
    expect(await scans.below(path('team-b'), clock.now, scan)).toBeUndefined();
    expect(sent).toHaveLength(1);
    expect(refused).toEqual(['team-a unsupported']);
  });

  test('no `scan` capability: folder listings for a while, then asked again', async () => {
    const { clock, sent, scans, scan, answered } = harness();
    const answer = scans.below(root, clock.now, scan);
    sent[0].resolve({ kind: 'refused', why: 'forbidden' });
    expect(await answer).toBeUndefined();
    clock.now += FORBIDDEN_LISTING_RECHECK_MS - 1;
    expect(scans.usable(root)).toBe(false);
    expect(await scans.below(root, clock.now, scan)).toBeUndefined();
    clock.now += 1;
    expect(scans.usable(root)).toBe(true);
    const again = scans.below(root, clock.now, scan);
    sent[1].resolve(answered(4));
    expect((await again)?.size).toBe(4);
  });

  test('over the cap: that root by folder listings for an hour, the other roots of the mount still scanned', async () => {
    const { clock, sent, refused, scans, scan, answered } = harness();
    const big = scans.below(root, clock.now, scan);
    sent[0].resolve({ kind: 'refused', why: 'too-large' });
    expect(await big).toBeUndefined();
    expect([scans.usable(root), scans.usable(path('team-b'))]).toEqual([false, true]);
    const other = scans.below(path('team-b'), clock.now, scan);
    sent[1].resolve(answered(1));
    expect((await other)?.size).toBe(1);
    clock.now += 1;
    expect(await scans.below(root, clock.now, scan)).toBeUndefined();
    expect(sent).toHaveLength(2);
    clock.now += TOO_LARGE_RECHECK_MS;
    void scans.below(root, clock.now, scan);
    expect(sent).toHaveLength(3);
    expect(refused).toEqual(['team-a too-large']);
  });

  test('bounded: at most maxRoots results are held; the oldest is dropped', async () => {
    const clock = { now: 0 };
    let sent = 0;
    const scans = new DriftScans({ now: () => clock.now, maxRoots: 2 });
    const scan = async (): Promise<ScanAnswer> => (sent++, { kind: 'scan', entries: new Map() });
    for (const key of ['a', 'b', 'c']) await scans.below(path(key), 0, scan);
    await scans.below(path('c'), 0, scan);
    await scans.below(path('b'), 0, scan);
    expect(sent).toBe(3);
    await scans.below(path('a'), 0, scan);
    expect(sent).toBe(4);
  });
});

describe('the gatherer: N sources below one namespace, one scan a period', () => {
  const PERIOD = 60_000;
  const SOURCES = 5;

  /** SOURCES Deployments in namespace team-a, each syncing 4 Secrets into its own folder, all with `reconcile: 1m`. */
  async function syncedWorld(scan: 'supported' | 'unsupported' | 'forbidden' | 'too-large' | 'off') {
    const world = syncWorld({}, 2, { driftScanMaxBytes: scan === 'off' ? 0 : 16 * 1024 * 1024 });
    world.vault.detailedScan = scan === 'off' ? 'supported' : scan;
    const names = ['s0', 's1', 's2', 's3'];
    for (const name of names) world.cluster.putSecret('team-a', name, { v: name });
    for (let i = 0; i < SOURCES; i++) world.cluster.putDeployment('team-a', `app${i}`, { 'vault-sync.io/path': `secret/team-a/app${i}`, 'vault-sync.io/reconcile': '1m' }, names);
    const keys = Array.from({ length: SOURCES }, (_, i) => `Deployment/team-a/app${i}`);
    for (const key of keys) await world.reconciler.reconcile(key);
    return { world, keys };
  }

  /** Each source reconciled when its requeue says, over `periods` whole periods from now (the end excluded): the requests sent, in order. */
  async function runPeriods(world: Awaited<ReturnType<typeof syncedWorld>>['world'], keys: string[], periods: number, meanwhile?: (period: number) => void) {
    const dueAt = new Map(keys.map((key) => [key, world.clock.now]));
    const end = world.clock.now + periods * PERIOD;
    const before = world.vault.requests.length;
    const checks: Array<{ key: string; at: number }> = [];
    let period = -1;
    for (;;) {
      const [key, at] = [...dueAt.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0];
      if (at >= end) break; // a half-open window: a slot at its end is the next window's
      world.clock.now = Math.max(world.clock.now, at);
      const nowPeriod = Math.floor((world.clock.now - (end - periods * PERIOD)) / PERIOD);
      if (nowPeriod !== period) meanwhile?.((period = nowPeriod));
      const sentBefore = world.vault.requests.length;
      const outcome = await world.reconciler.reconcile(key);
      if (world.vault.requests.length > sentBefore) checks.push({ key, at: world.clock.now });
      dueAt.set(key, world.clock.now + (outcome.requeueAfterMs ?? PERIOD));
    }
    world.clock.now = end; // the next window starts where this one ends
    return { requests: world.vault.requests.slice(before), checks };
  }

  test('with scans: the sources fall due together, and each period costs one scan of the namespace (no listings)', async () => {
    const { world, keys } = await syncedWorld('supported');
    const { requests } = await runPeriods(world, keys, 3);
    const ops = requests.map((r) => `${r.op} ${r.path.key}${r.drift ? ' (drift)' : ''}`);
    expect(ops.filter((op) => op.startsWith('scan-detailed'))).toEqual(['scan-detailed team-a (drift)', 'scan-detailed team-a (drift)', 'scan-detailed team-a (drift)']);
    expect(ops).toHaveLength(3);
  });

  test('an out-of-band change is restored within one period, by one scan and one write', async () => {
    const { world, keys } = await syncedWorld('supported');
    await runPeriods(world, keys, 1);
    const changedAt = world.clock.now;
    world.vault.writeOutOfBand(path('team-a/app2/s1'), { v: 'by hand' });
    const { requests } = await runPeriods(world, keys, 1);
    expect(world.vault.value('secret/team-a/app2/s1')).toEqual({ v: 's1' });
    const write = world.vault.requests.findIndex((r) => r.op === 'write' && r.path.key === 'team-a/app2/s1' && r.source === 'Deployment/team-a/app2');
    expect(write).toBeGreaterThan(-1);
    expect(requests.map((r) => r.op)).toEqual(['scan-detailed', 'write']);
    expect(world.clock.now - changedAt).toBeLessThanOrEqual(PERIOD);
  });

  test('change traffic never uses a shared scan: a new path of a source is looked up in Vault itself', async () => {
    const { world, keys } = await syncedWorld('supported');
    await runPeriods(world, keys, 1);
    world.cluster.putSecret('team-a', 's4', { v: 's4' });
    world.cluster.putDeployment('team-a', 'app0', { 'vault-sync.io/path': 'secret/team-a/app0', 'vault-sync.io/reconcile': '1m' }, ['s0', 's1', 's2', 's3', 's4']);
    const before = world.vault.requests.length;
    await world.reconciler.reconcile('Deployment/team-a/app0');
    const ops = world.vault.requests.slice(before).map((r) => r.op);
    expect(ops).not.toContain('scan-detailed');
    expect(ops).toContain('write');
    expect(world.vault.value('secret/team-a/app0/s4')).toEqual({ v: 's4' });
  });

  test.each(['unsupported', 'forbidden', 'too-large'] as const)('scan %s: after the one refused scan, one listing per folder per period, exactly as without scans', async (answer) => {
    const { world, keys } = await syncedWorld(answer);
    const first = await runPeriods(world, keys, 1);
    expect(first.requests.filter((r) => r.op === 'scan-detailed')).toHaveLength(1);
    // The period of the change: a source checked on the root's slot may check again on its own slot (once).
    const listings = first.requests.filter((r) => r.op === 'list-detailed').length;
    expect(listings).toBeGreaterThanOrEqual(SOURCES);
    expect(listings).toBeLessThanOrEqual(2 * SOURCES);
    const { requests, checks } = await runPeriods(world, keys, 1);
    const ops = requests.map((r) => `${r.op} ${r.path.key}`).sort();
    expect(ops).toEqual(keys.map((k) => `list-detailed team-a/${k.split('/')[2]}`).sort());
    // Each on its own slot again (the source key's phase), as without scans.
    expect(checks.every((c) => (((c.at - driftPhaseMs(c.key, PERIOD)) % PERIOD) + PERIOD) % PERIOD === 0)).toBe(true);
  });

  test('the setting off: no scan ever, each source on its own slot as before', async () => {
    const { world, keys } = await syncedWorld('off');
    const { requests, checks } = await runPeriods(world, keys, 2);
    expect(requests.every((r) => r.op === 'list-detailed')).toBe(true);
    expect(requests).toHaveLength(2 * SOURCES);
    expect(new Set(checks.slice(SOURCES).map((c) => c.at)).size).toBeGreaterThan(1);
  });
});
