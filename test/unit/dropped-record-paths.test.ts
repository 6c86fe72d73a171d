// Paths a loaded VaultSync status listed that are not Vault paths on an allowed mount are dropped by the
// store and reported once per source: a log line for the operator's admins (a few paths, quoted and
// escaped), a count, and an Event in the source's namespace that names no path at all.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { DroppedPaths } from '../../src/kube/vaultsync-store.js';
import { INVALID_RECORD, reportDroppedPaths } from '../../src/sync/state-store.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(...chunk.toString('utf8').split('\n').filter(Boolean).map((l: string) => JSON.parse(l))), done()) });
  return { log: pino({ level: 'info' }, sink), lines };
}

const dropped = new Map<string, DroppedPaths>([
  ['Deployment/team-b/api', { owner: { kind: 'Deployment', namespace: 'team-b', name: 'api', uid: 'u2' }, paths: ['secret/data/../x'] }],
  ['Deployment/team-a/web', { owner: { kind: 'Deployment', namespace: 'team-a', name: 'web', uid: 'u1' }, paths: ['sys/policy/x', 'secret/team-b/\u202Ex', 'a', 'b', 'c', 'd'] }],
]);

test('each source once, in order of its key: logged with at most five paths (escaped), counted, and an Event naming no path', async () => {
  const { log, lines } = capture();
  const events: Array<{ source: string; reason: string; message: string }> = [];
  let counted = 0;
  await reportDroppedPaths(dropped, { log, count: () => counted++, event: async (owner, reason, message) => void events.push({ source: `${owner.namespace}/${owner.name}`, reason, message }) });
  expect(lines.map((l) => [l.source, l.dropped, (l.paths as string[]).length])).toEqual([
    ['Deployment/team-a/web', 6, 5],
    ['Deployment/team-b/api', 1, 1],
  ]);
  expect(lines[0].paths).toContain('"secret/team-b/\\u{202E}x"');
  expect(counted).toBe(2);
  expect(events).toEqual([
    { source: 'team-a/web', reason: INVALID_RECORD, message: 'the VaultSync status of this Deployment listed 6 path(s) that are not Vault paths under the allowed KV mounts; they were dropped from its record and nothing is done with them' },
    { source: 'team-b/api', reason: INVALID_RECORD, message: expect.stringContaining('listed 1 path(s)') },
  ]);
  for (const event of events) expect(event.message).not.toMatch(/sys\/|secret\/|team-/);
});

test('sharding: only the sources this engine serves; without an Event recorder (plan, DRY_RUN) the log alone; a failed Event is logged, not thrown', async () => {
  const { log, lines } = capture();
  await reportDroppedPaths(dropped, { log, accepts: (namespace) => namespace === 'team-b' });
  expect(lines.map((l) => l.source)).toEqual(['Deployment/team-b/api']);

  const failing = capture();
  await reportDroppedPaths(dropped, { log: failing.log, event: () => Promise.reject(new Error('forbidden')) });
  expect(failing.lines.map((l) => l.msg)).toEqual([
    expect.stringContaining('not Vault paths'),
    'could not record an Event',
    expect.stringContaining('not Vault paths'),
    'could not record an Event',
  ]);
});
