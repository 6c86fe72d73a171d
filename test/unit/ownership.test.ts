import { ownershipMetadata, ownershipOf } from '../../src/sync/ownership.js';

const source = { kind: 'Deployment' as const, namespace: 'team-a', name: 'web', uid: 'u1' };

describe('ownershipOf: touch only what you own', () => {
  test.each([
    { reason: 'our own marks', meta: ownershipMetadata(source, 'prod'), expected: 'ours' },
    { reason: 'the same source recreated (new uid) takes its path back', meta: ownershipMetadata({ ...source, uid: 'u2' }, 'prod'), expected: 'ours' },
    { reason: 'no marks at all: written by a person or another tool', meta: {}, expected: 'unowned' },
    { reason: 'missing metadata', meta: undefined, expected: 'unowned' },
    { reason: 'another source in the same namespace', meta: ownershipMetadata({ ...source, name: 'api' }, 'prod'), expected: 'other-source' },
    { reason: 'the same source name in another cluster', meta: ownershipMetadata(source, 'staging'), expected: 'other-source' },
    { reason: 'another manager', meta: { 'managed-by': 'external-secrets' }, expected: 'other-manager' },
  ])('$reason → $expected', ({ meta, expected }) => {
    expect(ownershipOf(meta, source, 'prod')).toBe(expected);
  });
});
