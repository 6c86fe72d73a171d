import { adoptionAllowed, classifyFailure, decideWrite, ownershipMarks, planLookups, sanitizeVaultMessage, SLOW_RETRY_MS, type WriteInput } from '../../src/sync/write-policy.js';
import { ownershipMetadata } from '../../src/sync/ownership.js';

const source = { kind: 'Deployment' as const, namespace: 'team-a', name: 'web', uid: 'u1' };
const ours = ownershipMetadata(source, 'prod');
const path = { mount: 'secret', key: 'team-a/web/db' };
const base: Omit<WriteInput, 'vault'> = { source, clusterName: 'prod', adoptAllowed: false };
const present = (currentVersion: number, customMetadata: Record<string, string>, currentVersionDeleted = false) => ({ state: 'present' as const, metadata: { currentVersion, customMetadata, currentVersionDeleted } });

describe('decideWrite: who may be written, and how', () => {
  test.each([
    { why: 'a recorded version is updated with cas on it, no lookup', input: { ...base, recordedVersion: 4, vault: { state: 'unknown' as const } }, expected: { action: 'update', cas: 4 } },
    { why: 'nothing recorded: look it up before any write reaches it', input: { ...base, vault: { state: 'unknown' as const } }, expected: { action: 'lookup' } },
    { why: 'an intended claim may have landed (its answer lost): Vault is asked before anything is sent', input: { ...base, intent: { version: 1, hash: 'h' }, vault: { state: 'unknown' as const } }, expected: { action: 'lookup' } },
    { why: 'an intended update on a recorded path: Vault is asked first, never a second version on the recorded one', input: { ...base, recordedVersion: 4, intent: { version: 5, hash: 'h' }, vault: { state: 'unknown' as const } }, expected: { action: 'lookup' } },
    { why: 'an intended claim that did not land (absent): the data write with cas=0 is the claim', input: { ...base, intent: { version: 1, hash: 'h' }, vault: { state: 'absent' as const } }, expected: { action: 'create', cas: 0 } },
    { why: 'absent (not in its folder): the data write with cas=0 is the claim', input: { ...base, vault: { state: 'absent' as const } }, expected: { action: 'create', cas: 0 } },
    { why: 'foreign metadata with no version (cas=0 would succeed): refused', input: { ...base, vault: present(0, { 'managed-by': 'external-secrets' }) }, expected: { action: 'refuse' } },
    { why: 'unmarked metadata with no version, adoption not asked: refused', input: { ...base, vault: present(0, { note: 'x' }) }, expected: { action: 'refuse' } },
    { why: 'our own empty claim (older release): claimed again by the data write', input: { ...base, vault: present(0, ours) }, expected: { action: 'create', cas: 0 } },
    { why: 'ours, record lost: update on the current version', input: { ...base, vault: present(3, ours) }, expected: { action: 'update', cas: 3 } },
    { why: 'unmarked at exactly the intended version: our write landed, marks missing', input: { ...base, intent: { version: 1, hash: 'h' }, vault: present(1, {}) }, expected: { action: 'recover', version: 1, markMissing: true } },
    { why: 'ours at exactly the intended version: landed', input: { ...base, intent: { version: 6, hash: 'h' }, vault: present(6, ours) }, expected: { action: 'recover', version: 6, markMissing: false } },
    { why: 'unmarked at another version than intended: not ours, refused', input: { ...base, intent: { version: 1, hash: 'h' }, vault: present(2, {}) }, expected: { action: 'refuse' } },
    { why: 'foreign at the intended version is still foreign', input: { ...base, intent: { version: 1, hash: 'h' }, vault: present(1, { 'managed-by': 'someone' }) }, expected: { action: 'refuse' } },
    { why: 'the intended version was deleted since: not recovered', input: { ...base, intent: { version: 2, hash: 'h' }, vault: present(2, ours, true) }, expected: { action: 'update', cas: 2 } },
    { why: 'unmarked, adoption allowed: adopt on its version', input: { ...base, adoptAllowed: true, vault: present(7, { owner: 'script' }) }, expected: { action: 'adopt', cas: 7, previousMetadata: { owner: 'script' } } },
    { why: 'another manager is never adopted', input: { ...base, adoptAllowed: true, vault: present(1, { 'managed-by': 'external-secrets' }) }, expected: { action: 'refuse' } },
    { why: 'another cluster is never adopted', input: { ...base, adoptAllowed: true, vault: present(1, ownershipMetadata(source, 'staging')) }, expected: { action: 'refuse' } },
  ])('$why', ({ input, expected }) => {
    const decision = decideWrite(input);
    expect(decision).toMatchObject(expected);
    expect(decision.reason.length).toBeGreaterThan(0);
  });

  test('a refusal says who owns the path and how to adopt an unmarked one', () => {
    expect(decideWrite({ ...base, vault: present(1, {}) }).reason).toContain('vault-sync.io/adopt');
    expect(decideWrite({ ...base, vault: present(1, { 'managed-by': 'x' }) }).reason).toContain('managed by "x"');
  });
});

describe('planLookups: one request per folder of new paths', () => {
  test('several new children of one folder: one LIST; a lone one: its metadata read; a path under the mount: a read', () => {
    const lookups = planLookups([
      { mount: 'secret', key: 'a/app/x' },
      { mount: 'secret', key: 'a/app/y' },
      { mount: 'secret', key: 'a/app/z' },
      { mount: 'secret', key: 'b/lone' },
      { mount: 'secret', key: 'top' },
    ]);
    expect(lookups).toEqual([
      { kind: 'read-metadata', path: { mount: 'secret', key: 'top' } },
      { kind: 'list-folder', folder: { mount: 'secret', key: 'a/app' }, paths: [{ mount: 'secret', key: 'a/app/x' }, { mount: 'secret', key: 'a/app/y' }, { mount: 'secret', key: 'a/app/z' }] },
      { kind: 'read-metadata', path: { mount: 'secret', key: 'b/lone' } },
    ]);
  });
});

describe('adoption grants', () => {
  const grants = [{ namespaces: ['team-*'], adoptPathPrefixes: ['secret/legacy/{namespace}/'] }];
  test.each([
    { why: 'the source asks', path: 'other/x', asks: true, expected: true },
    { why: 'a policy prefix with the namespace filled in', path: 'legacy/team-a/db', asks: false, expected: true },
    { why: 'segments, not characters: legacy/team-ab is not under legacy/team-a', path: 'legacy/team-ab/db', asks: false, expected: false },
    { why: 'outside every prefix', path: 'apps/team-a/db', asks: false, expected: false },
  ])('$why → $expected', ({ path: key, asks, expected }) => {
    expect(adoptionAllowed({ mount: 'secret', key }, 'team-a', asks, grants)).toBe(expected);
  });
  test('a prefix in the KV v2 API form covers the same paths as the plain form (parsed like the tenancy grants)', () => {
    const apiForm = [{ namespaces: ['team-a'], adoptPathPrefixes: ['secret/data/legacy/'] }];
    expect(adoptionAllowed({ mount: 'secret', key: 'legacy/x' }, 'team-a', false, apiForm)).toBe(true);
    expect(adoptionAllowed({ mount: 'secret', key: 'legacy-2/x' }, 'team-a', false, apiForm)).toBe(false);
    expect(adoptionAllowed({ mount: 'kv', key: 'legacy/x' }, 'team-a', false, apiForm)).toBe(false);
  });
  test('a policy for other namespaces grants nothing', () => {
    expect(adoptionAllowed({ mount: 'secret', key: 'legacy/prod/db' }, 'prod', false, grants)).toBe(false);
  });
});

describe('ownership marks', () => {
  test('an adopted path keeps its previous custom_metadata under previous-; ours win on a clash', () => {
    const marks = ownershipMarks(source, 'prod', { binaryKeys: ['cert'], previousMetadata: { owner: 'script', 'managed-by': 'ignored' } });
    expect(marks).toMatchObject({ 'previous-owner': 'script', 'previous-managed-by': 'ignored', 'managed-by': 'vault-sync-operator', 'base64-keys': 'cert' });
    expect(marks['content-hash']).toBeUndefined();
  });
});

describe('terminal Vault answers', () => {
  test.each([
    { kind: 'bad-request', terminal: true, slow: false },
    { kind: 'too-large', terminal: true, slow: false },
    { kind: 'not-found', terminal: true, slow: false },
    { kind: 'forbidden', terminal: true, slow: true },
    { kind: 'server', terminal: false, slow: false },
    { kind: 'connection', terminal: false, slow: false },
  ])('$kind: terminal=$terminal', ({ kind, terminal, slow }) => {
    const retryable = kind === 'server' || kind === 'connection';
    const decision = classifyFailure({ kind, retryable, detail: 'HTTP 400: x' });
    expect(decision.terminal).toBe(terminal);
    expect(decision.terminal && decision.retryAfterMs).toBe(slow ? SLOW_RETRY_MS : terminal ? undefined : false);
  });

  test('Vault messages that echo input are redacted and bounded', () => {
    expect(sanitizeVaultMessage('HTTP 400: invalid key "hunter2-secret" in request')).toBe('HTTP 400: invalid key "…" in request');
    expect(sanitizeVaultMessage(`HTTP 400: bad ${'A'.repeat(60)}`)).toBe('HTTP 400: bad …');
    expect(sanitizeVaultMessage('a\u202eb\u0000c')).toBe('a b c');
    expect(sanitizeVaultMessage('x '.repeat(500)).length).toBeLessThanOrEqual(240);
  });
});
