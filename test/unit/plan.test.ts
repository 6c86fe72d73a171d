import type { DesiredEntry } from '../../src/sync/desired.js';
import { planSync } from '../../src/sync/plan.js';

const entry = (key: string): DesiredEntry => ({ path: { mount: 'secret', key }, data: new Map([['a', '1']]), binaryKeys: [], secretNames: ['s'], sizeBytes: 2 });
const on = { changeDetection: true, force: false };

describe('planSync: equal means no-op', () => {
  test.each([
    { reason: 'a path never synced is written', desired: [{ entry: entry('a'), hash: 'h1' }], synced: [], options: on, expected: [['write', 'a', 'not synced yet']] },
    { reason: 'an unchanged hash is a no-op', desired: [{ entry: entry('a'), hash: 'h1' }], synced: [{ path: { mount: 'secret', key: 'a' }, hash: 'h1', version: 3 }], options: on, expected: [['unchanged', 'a', 'content unchanged']] },
    { reason: 'a changed hash is written', desired: [{ entry: entry('a'), hash: 'h2' }], synced: [{ path: { mount: 'secret', key: 'a' }, hash: 'h1', version: 3 }], options: on, expected: [['write', 'a', 'content changed']] },
    {
      reason: 'change detection disabled writes even when equal',
      desired: [{ entry: entry('a'), hash: 'h1' }],
      synced: [{ path: { mount: 'secret', key: 'a' }, hash: 'h1' }],
      options: { changeDetection: false, force: false },
      expected: [['write', 'a', 'change detection disabled']],
    },
    {
      reason: 'force-sync writes once even when equal',
      desired: [{ entry: entry('a'), hash: 'h1' }],
      synced: [{ path: { mount: 'secret', key: 'a' }, hash: 'h1' }],
      options: { changeDetection: true, force: true },
      expected: [['write', 'a', 'force-sync requested']],
    },
    { reason: 'a path no longer produced is deleted', desired: [], synced: [{ path: { mount: 'secret', key: 'old' }, hash: 'h' }], options: on, expected: [['delete', 'old', 'no longer produced by the source']] },
  ])('$reason', ({ desired, synced, options, expected }) => {
    const plan = planSync(desired, synced, options).map((op) => [op.type, op.type === 'write' ? op.entry.path.key : op.path.key, op.reason]);
    expect(plan).toEqual(expected);
  });
});
