// The reconciler carrying out verdicts, with fake dependencies (test/unit/fakes/sync-world.ts): what it sends to
// Vault (counted and in order), what it records, and what it tells the source.
import { VersionConflictError } from '../../src/sync/reconciler.js';
import { VaultRequestError } from '../../src/vault/errors.js';
import { formatPath, type KvPath } from '../../src/vault/path.js';
import { syncWorld, type SyncWorld, type VaultRequest } from './fakes/sync-world.js';

const KEY = 'Deployment/team-a/web';
const DB = 'secret/team-a/web/db';
const shown = (requests: readonly VaultRequest[]) => requests.map((r) => `${r.op} ${formatPath(r.path)}${r.cas !== undefined ? ` cas=${r.cas}` : ''}`);

/** team-a/web uses Secret db and syncs to secret/team-a/web (one child path per Secret). */
function worldWithWeb(annotations: Record<string, string> = {}): SyncWorld {
  const world = syncWorld();
  world.cluster.putSecret('team-a', 'db', { password: 'one' });
  world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web', ...annotations }, ['db']);
  return world;
}

/** The requests made during `run`. */
async function requestsOf(world: SyncWorld, run: () => Promise<unknown>): Promise<string[]> {
  const before = world.vault.requests.length;
  await run();
  return shown(world.vault.requests.slice(before));
}

describe('the reconciler carries out the verdict', () => {
  test('apply: a new path is looked up, claimed by the data write (cas=0), then marked; recorded and reported', async () => {
    const world = worldWithWeb();
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([`read-metadata ${DB}`, `write ${DB} cas=0`, `marks ${DB}`]);
    expect(result).toEqual({ outcome: 'synced' });
    expect(world.vault.value(DB)).toEqual({ password: 'one' });
    expect(world.vault.marksOf(DB)).toMatchObject({ 'managed-by': 'vault-sync-operator', 'source-namespace': 'team-a', 'source-name': 'web' });
    const record = world.records.records.get(KEY)!;
    expect(record.entries.map((e) => [formatPath(e.path), e.version, e.marksPending ?? false])).toEqual([[DB, 1, false]]);
    expect(record.intents).toEqual([]);
    expect(world.records.conditions.get(KEY)).toMatchObject({ status: 'True', reason: 'Synced' });
    expect(world.cluster.deployment('team-a', 'web')!.finalizers).toEqual(['vault-sync.io/finalizer']);
    expect(world.cluster.events.map((e) => [e.type, e.reason])).toEqual([['Normal', 'Synced']]);
  });

  test('unchanged: nothing changed since the last sync, so no Vault request at all', async () => {
    const world = worldWithWeb();
    await world.reconciler.reconcile(KEY);
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([]);
    expect(result).toEqual({ outcome: 'unchanged' });
  });

  test('a changed Secret is written with cas on the recorded version, no lookup', async () => {
    const world = worldWithWeb();
    await world.reconciler.reconcile(KEY);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`write ${DB} cas=1`]);
    expect(world.vault.value(DB)).toEqual({ password: 'two' });
  });

  test('suspended: the condition says so, nothing is sent', async () => {
    const world = worldWithWeb({ 'vault-sync.io/suspend': 'true' });
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([]);
    expect(result).toEqual({ outcome: 'suspended' });
    expect(world.records.conditions.get(KEY)).toMatchObject({ status: 'False', reason: 'Suspended' });
  });

  test('reject: a path outside the namespace prefix is refused with its code, an Event, and no request', async () => {
    const world = syncWorld();
    world.cluster.putSecret('team-a', 'db', { password: 'one' });
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-b/web' }, ['db']);
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([]);
    expect(result).toEqual({ outcome: 'refused' });
    expect(world.records.conditions.get(KEY)).toMatchObject({ status: 'False', reason: 'OutsideTenantPrefix' });
    expect(world.cluster.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'Refused']]);
  });

  test('finalize: a deleted source has its paths deleted (ownership read first), then its finalizer and record go', async () => {
    const world = worldWithWeb();
    await world.reconciler.reconcile(KEY);
    world.cluster.deleteObject('Deployment', 'team-a', 'web');
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([`read-metadata ${DB}`, `delete-all ${DB}`]);
    expect(result).toEqual({ outcome: 'deleted' });
    expect(world.vault.paths.has(DB)).toBe(false);
    expect(world.cluster.deployment('team-a', 'web')).toBeUndefined(); // its last finalizer went
    expect(world.records.records.has(KEY)).toBe(false);
  });
});

test('finalize with Vault down: retried until the cleanup timeout, then the finalizer goes with a DataLeftBehind Event', async () => {
  const world = worldWithWeb();
  await world.reconciler.reconcile(KEY);
  world.vault.readMetadata = async (path: KvPath) => {
    throw new VaultRequestError('read-metadata', formatPath(path), undefined, 'connection', 'no response (ECONNREFUSED)');
  };
  world.cluster.deleteObject('Deployment', 'team-a', 'web');
  await expect(world.reconciler.reconcile(KEY)).rejects.toBeInstanceOf(VaultRequestError);
  expect(world.cluster.deployment('team-a', 'web')).toBeDefined();
  world.clock.now += 61_000;
  expect(await world.reconciler.reconcile(KEY)).toEqual({ outcome: 'deleted' });
  expect(world.cluster.deployment('team-a', 'web')).toBeUndefined();
  expect(world.cluster.events.at(-1)).toMatchObject({ type: 'Warning', reason: 'DataLeftBehind' });
  expect(world.cluster.events.at(-1)!.message).toMatch(/^source deleted; Vault failed for 61s \(.*\); releasing the finalizer and leaving in Vault: secret\/team-a\/web\/db$/);
});

test('a Deployment using 1,000 Secrets: one detailed listing of the folder, 1,000 claims and 1,000 marks; then nothing at rest', async () => {
  const world = syncWorld();
  const names = Array.from({ length: 1000 }, (_, i) => `s${String(i).padStart(4, '0')}`);
  for (const name of names) world.cluster.putSecret('team-a', name, { v: name });
  world.cluster.putDeployment('team-a', 'big', { 'vault-sync.io/path': 'secret/team-a/big' }, names);
  const requests = await requestsOf(world, () => world.reconciler.reconcile('Deployment/team-a/big'));
  const count = (op: string) => requests.filter((r) => r.startsWith(`${op} `)).length;
  expect([count('list-detailed'), count('list'), count('read-metadata'), count('write'), count('marks')]).toEqual([1, 0, 0, 1000, 1000]);
  expect(world.records.records.get('Deployment/team-a/big')!.entries).toHaveLength(1000);
  expect(await requestsOf(world, () => world.reconciler.reconcile('Deployment/team-a/big'))).toEqual([]);
});

test('where the server has no detailed listing (HashiCorp Vault), 1,000 new paths keep one plain LIST of the folder', async () => {
  const world = syncWorld();
  world.vault.detailedListing = 'unsupported';
  const names = Array.from({ length: 1000 }, (_, i) => `s${String(i).padStart(4, '0')}`);
  for (const name of names) world.cluster.putSecret('team-a', name, { v: name });
  world.cluster.putDeployment('team-a', 'big', { 'vault-sync.io/path': 'secret/team-a/big' }, names);
  const requests = await requestsOf(world, () => world.reconciler.reconcile('Deployment/team-a/big'));
  const count = (op: string) => requests.filter((r) => r.startsWith(`${op} `)).length;
  expect([count('list-detailed'), count('list'), count('read-metadata'), count('write'), count('marks')]).toEqual([0, 1, 0, 1000, 1000]);
});

test("a source's Secrets are in the Secret→source index before their values are read: a change made meanwhile re-queues the source", async () => {
  const world = syncWorld();
  world.cluster.putSecret('team-a', 'db', { password: 'one' });
  world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web' }, ['db']);
  const readersWhenRead: string[][] = [];
  world.cluster.onReadSecret = (namespace, name) => readersWhenRead.push(world.index.readersOf(namespace, name));
  await world.reconciler.reconcile(KEY);
  expect(readersWhenRead).toEqual([[KEY]]);
});

test('a Secret changed after its values were read is not recorded as synced: the next reconcile writes the newer value', async () => {
  const world = syncWorld();
  world.cluster.putSecret('team-a', 'db', { password: 'one' });
  world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web' }, ['db']);
  world.cluster.onReadSecret = () => {
    world.cluster.onReadSecret = undefined;
    world.cluster.putSecret('team-a', 'db', { password: 'two' }); // reaches the cache after the API read
  };
  await world.reconciler.reconcile(KEY);
  expect(world.vault.value(DB)).toEqual({ password: 'one' });
  await world.reconciler.reconcile(KEY); // the change's event re-queues the source (its index knows db)
  expect(world.vault.value(DB)).toEqual({ password: 'two' });
});

describe('a version conflict is a fence', () => {
  test('a cas mismatch sends no second write; the source is requeued and decides again from the record read from the API', async () => {
    const world = worldWithWeb();
    await world.reconciler.reconcile(KEY);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    // Another writer (a stale replica, with our marks) writes between our decision and our write.
    world.vault.beforeWrite = (path) => {
      world.vault.beforeWrite = undefined;
      world.vault.writeOutOfBand(path, { password: 'stale' });
    };
    const first = await requestsOf(world, () => expect(world.reconciler.reconcile(KEY)).rejects.toBeInstanceOf(VersionConflictError));
    expect(first).toEqual([`write ${DB} cas=1`]); // exactly one write: never retried with the new version
    const record = world.records.records.get(KEY)!;
    expect(record.entries).toEqual([{ path: { mount: 'secret', key: 'team-a/web/db' }, hash: '' }]); // nothing recorded as landed
    // The write's intent stays with its content blanked: a lost earlier attempt may have landed at version 2.
    expect(record.intents).toEqual([{ path: { mount: 'secret', key: 'team-a/web/db' }, version: 2, hash: '' }]);
    expect(world.records.conditions.get(KEY)).toMatchObject({ status: 'False', reason: 'VersionConflict' });

    expect(world.records.refreshes).toBe(0);
    const second = await requestsOf(world, () => world.reconciler.reconcile(KEY));
    expect(world.records.refreshes).toBe(1);
    expect(second).toEqual([`read-metadata ${DB}`, `write ${DB} cas=2`]);
    expect(world.vault.value(DB)).toEqual({ password: 'two' });
    expect(world.vault.versionsOf(DB)).toBe(3);
  });

  test('an answer lost after Vault applied the write is resolved from the intent: no second version', async () => {
    const world = worldWithWeb();
    world.vault.loseAnswerOf = () => true;
    await expect(world.reconciler.reconcile(KEY)).rejects.toBeInstanceOf(VaultRequestError);
    world.vault.loseAnswerOf = undefined;
    expect(world.records.records.get(KEY)!.intents!.map((i) => [formatPath(i.path), i.version])).toEqual([[DB, 1]]);

    const requests = await requestsOf(world, () => world.reconciler.reconcile(KEY));
    expect(requests).toEqual([`read-metadata ${DB}`, `marks ${DB}`]); // recovered: its marks follow, no data write
    expect(world.vault.versionsOf(DB)).toBe(1);
    expect(world.records.records.get(KEY)!.entries.map((e) => [formatPath(e.path), e.version, e.marksPending ?? false])).toEqual([[DB, 1, false]]);
  });
});

describe('the record proves a path ours when its marks did not follow', () => {
  /** Synced with the marks failing (Vault down after the data landed): the path is in Vault, unmarked. */
  async function landedWithoutMarks(): Promise<SyncWorld> {
    const world = worldWithWeb();
    const writeMetadata = world.vault.writeMetadata.bind(world.vault);
    world.vault.writeMetadata = async (path: KvPath) => {
      throw new VaultRequestError('write-metadata', formatPath(path), 503, 'server', 'HTTP 503');
    };
    await expect(world.reconciler.reconcile(KEY)).rejects.toBeInstanceOf(VaultRequestError);
    world.vault.writeMetadata = writeMetadata;
    expect(world.vault.marksOf(DB)).toEqual({});
    expect(world.records.records.get(KEY)!.entries).toMatchObject([{ version: 1, marksPending: true }]);
    return world;
  }

  test('a deleted source deletes its unmarked path (the record names its version)', async () => {
    const world = await landedWithoutMarks();
    world.cluster.deleteObject('Deployment', 'team-a', 'web');
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `delete-all ${DB}`]);
    expect(world.vault.paths.has(DB)).toBe(false);
  });

  test('a source moved to another path deletes its unmarked old path', async () => {
    const world = await landedWithoutMarks();
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/moved' }, ['db']);
    await world.reconciler.reconcile(KEY);
    expect(world.vault.paths.has(DB)).toBe(false);
    expect(world.vault.value('secret/team-a/moved/db')).toEqual({ password: 'one' });
  });

  test('a retried write whose lost first attempt landed meets a version conflict; the source then moves: the landed data is still proved ours and deleted', async () => {
    const world = await landedWithoutMarks(); // version 1 in Vault, unmarked, recorded with marks pending
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    // The first attempt of the update lands (version 2, no marks yet) and its answer is lost; the retry with
    // the same cas=1 then meets version 2: a mismatch (a reset after Vault applied the write, then a retry).
    world.vault.beforeWrite = (path) => {
      world.vault.beforeWrite = undefined;
      world.vault.writeOutOfBand(path, { password: 'two' });
    };
    await expect(world.reconciler.reconcile(KEY)).rejects.toBeInstanceOf(VersionConflictError);
    expect(world.vault.versionsOf(DB)).toBe(2);
    expect(world.records.records.get(KEY)!.intents!.map((i) => [formatPath(i.path), i.version, i.hash])).toEqual([[DB, 2, '']]);
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/moved' }, ['db']);
    await world.reconciler.reconcile(KEY);
    expect(world.vault.paths.has(DB)).toBe(false);
    expect(world.vault.value('secret/team-a/moved/db')).toEqual({ password: 'two' });
  });

  test('a write whose last attempt was answered 503 after an unanswered one that landed keeps its intent: the source then moves and the data is deleted', async () => {
    const world = await landedWithoutMarks(); // version 1 in Vault, unmarked
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    const writeData = world.vault.writeData.bind(world.vault);
    world.vault.writeData = async (path, data, options, context) => {
      world.vault.writeData = writeData;
      await writeData(path, data, options, context); // the first attempt lands; its answer is lost
      const error = new VaultRequestError('write', formatPath(path), 503, 'server', 'HTTP 503'); // the retries' answer
      error.earlierAttemptUnanswered = true;
      throw error;
    };
    await expect(world.reconciler.reconcile(KEY)).rejects.toBeInstanceOf(VaultRequestError);
    expect(world.vault.versionsOf(DB)).toBe(2);
    expect(world.records.records.get(KEY)!.intents!.map((i) => [formatPath(i.path), i.version])).toEqual([[DB, 2]]);
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/moved' }, ['db']);
    await world.reconciler.reconcile(KEY);
    expect(world.vault.paths.has(DB)).toBe(false);
  });

  test('an unmarked path at another version than recorded is not ours: refused, not deleted', async () => {
    const world = await landedWithoutMarks();
    world.vault.writeOutOfBand({ mount: 'secret', key: 'team-a/web/db' }, { by: 'hand' });
    world.cluster.deleteObject('Deployment', 'team-a', 'web');
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`]);
    expect(world.vault.value(DB)).toEqual({ by: 'hand' });
    expect(world.cluster.events.at(-1)).toMatchObject({ type: 'Warning', reason: 'Refused', message: `not deleting ${DB}: it is not managed by this operator` });
  });
});

test("a source re-pointed at another tenant's prefix, then deleted, cleans up only its own path and never reads theirs", async () => {
  const world = worldWithWeb();
  await world.reconciler.reconcile(KEY);
  world.vault.writeOutOfBand({ mount: 'secret', key: 'team-b/web/db' }, { theirs: 'x' });
  world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-b/web' }, ['db']);
  expect(await world.reconciler.reconcile(KEY)).toEqual({ outcome: 'refused' });
  world.cluster.deleteObject('Deployment', 'team-a', 'web');
  const requests = await requestsOf(world, () => world.reconciler.reconcile(KEY));
  expect(requests).toEqual([`read-metadata ${DB}`, `delete-all ${DB}`]);
  expect(world.vault.value('secret/team-b/web/db')).toEqual({ theirs: 'x' });
  // Only the refusal of the annotation itself names their prefix; nothing says who owns their path, or that it exists.
  expect(world.cluster.events.filter((e) => e.message.includes('team-b')).map((e) => e.message)).toEqual([
    'the Vault path "secret/team-b/web/db" is outside what namespace "team-a" may write to (secret/team-a/); a cluster admin can grant more with a VaultSyncPolicy',
  ]);
});

describe('a record edited to name paths outside the scope', () => {
  test('is never acted on: the paths are not read nor deleted, and the Event names none of them', async () => {
    const world = worldWithWeb();
    await world.reconciler.reconcile(KEY);
    const record = world.records.records.get(KEY)!;
    record.entries.push({ path: { mount: 'secret', key: 'team-b/x' }, hash: 'h', version: 1 }, { path: { mount: 'sys', key: 'policies/acl/x' }, hash: 'h', version: 1 });
    record.intents = [{ path: { mount: 'secret', key: 'team-b/y' }, version: 1, hash: 'h' }];
    world.restart();
    world.cluster.deleteObject('Deployment', 'team-a', 'web');
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `delete-all ${DB}`]);
    const warning = world.cluster.events.find((e) => e.reason === 'OutsideGrant')!;
    expect(warning.message).toBe('not touching 3 path(s) this source names or recorded: they are outside what namespace "team-a" (secret/team-a/) may reach');
  });
});

describe('plan prints the verdict the reconciler carries out', () => {
  test('the paths plan says are written and deleted are the ones the reconciler then writes and deletes', async () => {
    const world = worldWithWeb();
    world.cluster.putSecret('team-a', 'api', { token: 't' });
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web' }, ['db', 'api']);
    const plan = await world.planner.planSource(KEY);
    expect(plan!.paths.map((p) => [p.path, p.action])).toEqual([
      ['secret/team-a/web/api', 'create'],
      ['secret/team-a/web/db', 'create'],
    ]);
    const requests = await requestsOf(world, () => world.reconciler.reconcile(KEY));
    expect(requests.filter((r) => r.startsWith('write')).sort()).toEqual(['write secret/team-a/web/api cas=0', 'write secret/team-a/web/db cas=0']);

    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web' }, ['db']);
    const next = await world.planner.planSource(KEY);
    expect(next!.paths.map((p) => [p.path, p.action])).toEqual([
      ['secret/team-a/web/api', 'delete'],
      ['secret/team-a/web/db', 'unchanged'],
    ]);
    const after = await requestsOf(world, () => world.reconciler.reconcile(KEY));
    expect(after).toEqual(['read-metadata secret/team-a/web/api', 'delete-all secret/team-a/web/api']);
  });

  test('a custom-metadata change is planned as a metadata write, and IfNotExists as kept: create-once', async () => {
    const world = worldWithWeb({ 'vault-sync.io/custom-metadata': '{"team":"a"}', 'vault-sync.io/update-policy': 'IfNotExists' });
    await world.reconciler.reconcile(KEY);
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web', 'vault-sync.io/custom-metadata': '{"team":"b"}', 'vault-sync.io/update-policy': 'IfNotExists' }, ['db']);
    expect((await world.planner.planSource(KEY))!.paths).toEqual([
      { path: DB, action: 'update', reason: 'custom_metadata changed (vault-sync.io/custom-metadata): written with the marks (no new version)' },
    ]);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`marks ${DB}`]);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    const kept = await world.planner.planSource(KEY);
    expect(kept!.paths.map((p) => [p.path, p.action, p.reason])).toEqual([[DB, 'keep', expect.stringMatching(/^kept: create-once/)]]);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
    // Once recorded as kept, the plan still says why nothing is written.
    expect((await world.planner.planSource(KEY))!.paths.map((p) => [p.action, p.reason])).toEqual([['unchanged', expect.stringMatching(/^kept: create-once/)]]);
  });
});

describe('vault-sync.io/custom-metadata: the user\'s keys beside the marks', () => {
  const META = 'vault-sync.io/custom-metadata';
  const withMetadata = (value: string, extra: Record<string, string> = {}) => worldWithWeb({ [META]: value, ...extra });
  const annotate = (world: SyncWorld, annotations: Record<string, string>) => {
    const web = world.cluster.deployment('team-a', 'web')!;
    world.cluster.putDeployment('team-a', 'web', { ...web.annotations, ...annotations }, ['db']);
  };

  test('a new path gets the user keys with its marks: the same two requests as without them', async () => {
    const world = withMetadata('{"team":"payments","tier":"gold"}');
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `write ${DB} cas=0`, `marks ${DB}`]);
    expect(world.vault.marksOf(DB)).toMatchObject({ team: 'payments', tier: 'gold', 'managed-by': 'vault-sync-operator' });
    expect(world.records.records.get(KEY)!.entries[0].metadataHash).toMatch(/^sha256:/);
  });

  test('a change of the annotation alone: one metadata write per path, no data write, no new version; then nothing', async () => {
    const world = withMetadata('{"team":"payments"}');
    await world.reconciler.reconcile(KEY);
    annotate(world, { [META]: '{"team":"billing","on-call":"ops"}' });
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([`marks ${DB}`]);
    expect(result).toEqual({ outcome: 'synced' });
    expect(world.vault.versionsOf(DB)).toBe(1);
    expect(world.vault.marksOf(DB)).toMatchObject({ team: 'billing', 'on-call': 'ops', 'source-name': 'web' });
    expect(world.records.conditions.get(KEY)!.message).toContain(`wrote the custom_metadata of ${DB}`);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
    // The keys in another order are the same metadata: no write.
    annotate(world, { [META]: '{ "on-call":"ops", "team":"billing" }' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
  });

  test('removing the annotation removes the user keys with one metadata write; the marks stay', async () => {
    const world = withMetadata('{"team":"payments"}');
    await world.reconciler.reconcile(KEY);
    const web = world.cluster.deployment('team-a', 'web')!;
    const { [META]: _, ...rest } = web.annotations;
    world.cluster.putDeployment('team-a', 'web', rest, ['db']);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`marks ${DB}`]);
    expect(world.vault.marksOf(DB)).not.toHaveProperty('team');
    expect(world.vault.marksOf(DB)).toMatchObject({ 'managed-by': 'vault-sync-operator' });
  });

  test('content and metadata changed together: the data write and one marks write', async () => {
    const world = withMetadata('{"team":"payments"}');
    await world.reconciler.reconcile(KEY);
    annotate(world, { [META]: '{"team":"billing"}' });
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`write ${DB} cas=1`, `marks ${DB}`]);
    expect(world.vault.marksOf(DB)).toMatchObject({ team: 'billing' });
  });

  test('a mark name is refused with an InvalidAnnotation Warning naming it; the data still syncs, with the marks only', async () => {
    const world = withMetadata('{"team":"payments","managed-by":"me"}');
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `write ${DB} cas=0`, `marks ${DB}`]);
    expect(world.vault.marksOf(DB)).toMatchObject({ 'managed-by': 'vault-sync-operator' });
    expect(world.vault.marksOf(DB)).not.toHaveProperty('team');
    const warning = world.cluster.events.find((e) => e.reason === 'InvalidAnnotation')!;
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain(`${META}:`);
    expect(warning.message).toContain('ownership marks');
    expect(warning.message).toContain('"managed-by"');
    expect(warning.message).toContain('synced with the ownership marks only');
  });

  test('the drift check restores user keys removed out of band with one metadata write (no data write)', async () => {
    const world = withMetadata('{"team":"payments"}', { 'vault-sync.io/reconcile': '1m' });
    await world.reconciler.reconcile(KEY);
    const { team: _, ...stripped } = world.vault.marksOf(DB)!;
    world.vault.paths.get(DB)!.customMetadata = stripped;
    world.clock.now += 61_000;
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([`read-metadata ${DB}`, `marks ${DB}`]);
    expect(result).toEqual({ outcome: 'drift-corrected', requeueAfterMs: 60_000 });
    expect(world.vault.marksOf(DB)).toMatchObject({ team: 'payments' });
    expect(world.vault.versionsOf(DB)).toBe(1);
    expect(world.cluster.events.filter((e) => e.reason === 'DriftCorrected')).toHaveLength(1);
    world.clock.now += 61_000;
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`]);
  });

  test('an update whose answer was lost is recovered with its marks written again (which user keys are there is unknown); plan says so', async () => {
    const world = withMetadata('{"team":"payments"}');
    await world.reconciler.reconcile(KEY);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    world.vault.loseAnswerOf = () => true;
    await expect(world.reconciler.reconcile(KEY)).rejects.toThrow(/no response/);
    world.vault.loseAnswerOf = undefined;
    const plan = await world.planner.planSource(KEY);
    expect(plan!.paths.map((p) => [p.path, p.action, p.reason])).toEqual([[DB, 'update', expect.stringContaining('its custom_metadata is written again')]]);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `marks ${DB}`]);
    expect(world.vault.versionsOf(DB)).toBe(2);
    expect(world.vault.marksOf(DB)).toMatchObject({ team: 'payments' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
  });

  test('KV v1: a Warning that KV v1 has no custom_metadata; the data is synced, no user key written', async () => {
    const world = syncWorld({}, 1);
    world.cluster.putSecret('team-a', 'db', { password: 'one' });
    world.cluster.putDeployment('team-a', 'web', { 'vault-sync.io/path': 'secret/team-a/web', [META]: '{"team":"payments"}' }, ['db']);
    expect(await world.reconciler.reconcile(KEY)).toEqual({ outcome: 'synced' });
    expect(world.vault.value(DB)).toEqual({ password: 'one' });
    expect(world.vault.marksOf(DB)).not.toHaveProperty('team');
    const warning = world.cluster.events.find((e) => e.reason === 'InvalidAnnotation')!;
    expect(warning.message).toContain('KV v1 has no custom_metadata');
    expect(warning.message).toContain('their data is synced without it');
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
  });
});

describe('vault-sync.io/update-policy: IfNotExists writes a path only when it has no live version', () => {
  const POLICY = { 'vault-sync.io/update-policy': 'IfNotExists' };

  test('created once; a later Secret change is not written, and the status says kept: create-once', async () => {
    const world = worldWithWeb(POLICY);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `write ${DB} cas=0`, `marks ${DB}`]);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    let result;
    expect(await requestsOf(world, async () => (result = await world.reconciler.reconcile(KEY)))).toEqual([]);
    expect(result).toEqual({ outcome: 'unchanged' });
    expect(world.vault.value(DB)).toEqual({ password: 'one' });
    expect(world.records.conditions.get(KEY)).toMatchObject({ status: 'True', reason: 'Synced' });
    expect(world.records.conditions.get(KEY)!.message).toContain(`kept: create-once (vault-sync.io/update-policy: IfNotExists) ${DB}`);
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
  });

  test('a new version made in Vault (rotation) is not drift: nothing is written back', async () => {
    const world = worldWithWeb({ ...POLICY, 'vault-sync.io/reconcile': '1m' });
    await world.reconciler.reconcile(KEY);
    world.vault.writeOutOfBand({ mount: 'secret', key: 'team-a/web/db' }, { password: 'rotated' });
    world.clock.now += 61_000;
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`]);
    expect(world.vault.value(DB)).toEqual({ password: 'rotated' });
    expect(world.cluster.events.filter((e) => e.reason === 'DriftCorrected')).toEqual([]);
    expect(world.records.conditions.get(KEY)!.message).toBe('1 path(s) in sync; no drift; kept: create-once (vault-sync.io/update-policy: IfNotExists)');
  });

  test('deleted out of band: written again (the Secret\'s value now) only when the source asks for drift checks', async () => {
    const drift = worldWithWeb({ ...POLICY, 'vault-sync.io/reconcile': '1m' });
    await drift.reconciler.reconcile(KEY);
    drift.cluster.putSecret('team-a', 'db', { password: 'two' });
    await drift.reconciler.reconcile(KEY);
    await drift.vault.deleteLatest({ mount: 'secret', key: 'team-a/web/db' });
    drift.clock.now += 61_000;
    expect(await requestsOf(drift, () => drift.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `write ${DB} cas=1`]);
    expect(drift.vault.value(DB)).toEqual({ password: 'two' });

    const noDrift = worldWithWeb(POLICY);
    await noDrift.reconciler.reconcile(KEY);
    await noDrift.vault.deleteAll({ mount: 'secret', key: 'team-a/web/db' });
    noDrift.clock.now += 3_600_000;
    expect(await requestsOf(noDrift, () => noDrift.reconciler.reconcile(KEY))).toEqual([]);
    expect(noDrift.vault.value(DB)).toBeUndefined();
  });

  test('an unrecorded path with a live version of ours (the record lost) is kept and recorded again, not written', async () => {
    const world = worldWithWeb(POLICY);
    await world.reconciler.reconcile(KEY);
    world.records.records.delete(KEY);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`]);
    expect(world.vault.value(DB)).toEqual({ password: 'one' });
    expect(world.records.records.get(KEY)!.entries.map((e) => [formatPath(e.path), e.version])).toEqual([[DB, 1]]);
  });

  test('an unmarked live path is never adopted over: refused, even with adopt', async () => {
    const world = worldWithWeb({ ...POLICY, 'vault-sync.io/adopt': 'true' });
    world.vault.writeOutOfBand({ mount: 'secret', key: 'team-a/web/db' }, { password: 'theirs' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`]);
    expect(world.vault.value(DB)).toEqual({ password: 'theirs' });
    expect(world.cluster.events.find((e) => e.reason === 'Refused')!.message).toContain('IfNotExists never writes over one');
  });

  test('a bad value is reported and read as IfNotExists (the side that never overwrites)', async () => {
    const world = worldWithWeb({ 'vault-sync.io/update-policy': 'CreateOnce' });
    await world.reconciler.reconcile(KEY);
    world.cluster.putSecret('team-a', 'db', { password: 'two' });
    expect(await requestsOf(world, () => world.reconciler.reconcile(KEY))).toEqual([]);
    expect(world.vault.value(DB)).toEqual({ password: 'one' });
    expect(world.cluster.events.find((e) => e.reason === 'InvalidAnnotation')!.message).toContain('read as "IfNotExists"');
  });

  test('deletion follows preserve-on-delete as usual: deleted without it, kept with it', async () => {
    const deleting = worldWithWeb(POLICY);
    await deleting.reconciler.reconcile(KEY);
    deleting.cluster.deleteObject('Deployment', 'team-a', 'web');
    expect(await requestsOf(deleting, () => deleting.reconciler.reconcile(KEY))).toEqual([`read-metadata ${DB}`, `delete-all ${DB}`]);
    expect(deleting.vault.value(DB)).toBeUndefined();

    const preserving = worldWithWeb({ ...POLICY, 'vault-sync.io/preserve-on-delete': 'true' });
    await preserving.reconciler.reconcile(KEY);
    preserving.cluster.deleteObject('Deployment', 'team-a', 'web');
    expect(await requestsOf(preserving, () => preserving.reconciler.reconcile(KEY))).toEqual([]);
    expect(preserving.vault.value(DB)).toEqual({ password: 'one' });
  });
});
