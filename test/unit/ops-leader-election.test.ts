import { leaseIsFree, microTime, shardLeaseName, shardOf, shardRateLimit } from '../../src/kube/leader-election.js';

describe('sharding namespaces across replicas', () => {
  test('a namespace always maps to the same shard (every replica, every restart agrees)', () => {
    for (const ns of ['default', 'team-a', 'payments-prod']) {
      expect(shardOf(ns, 4)).toBe(shardOf(ns, 4));
      expect(shardOf(ns, 4)).toBeGreaterThanOrEqual(0);
      expect(shardOf(ns, 4)).toBeLessThan(4);
    }
    expect(shardOf('anything', 1)).toBe(0);
  });

  test('namespaces spread evenly enough over the shards (within 20 % of the mean for 4000 names)', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[shardOf(`team-${i}`, 4)]++;
    for (const count of counts) expect(Math.abs(count - 1000)).toBeLessThan(200);
  });

  test('one Lease per shard; a single shard uses the plain lease name (plain leader election)', () => {
    expect(shardLeaseName('vault-sync-operator', 0, 1)).toBe('vault-sync-operator');
    expect(shardLeaseName('vault-sync-operator', 2, 3)).toBe('vault-sync-operator-shard-2');
  });

  test('each shard gets an even share of the Vault budget, so the operator as a whole keeps to it', () => {
    expect(shardRateLimit({ rate: 10, burst: 20 }, 1)).toEqual({ rate: 10, burst: 20 });
    expect(shardRateLimit({ rate: 10, burst: 20 }, 4)).toEqual({ rate: 2.5, burst: 5 });
    expect(shardRateLimit({ rate: 10, burst: 3 }, 4)).toEqual({ rate: 2.5, burst: 1 }); // never below one token
  });
});

describe('lease expiry is judged by when this replica saw the record change, not by the holder\'s clock', () => {
  const lease = (holderIdentity: string) => ({ spec: { holderIdentity, leaseDurationSeconds: 15, renewTime: '2020-01-01T00:00:00.000000Z' as unknown as Date } });

  test('no lease, or a released one (empty holder), is free at once', () => {
    expect(leaseIsFree(undefined, undefined, 0)).toBe(true);
    expect(leaseIsFree(lease(''), { observedAt: 0 }, 0)).toBe(true);
  });

  test('a held lease seen for the first time is not free, however old its renewTime looks (clock skew)', () => {
    expect(leaseIsFree(lease('other'), undefined, Date.now())).toBe(false);
  });

  test('a held lease becomes free once it did not change for its lease duration', () => {
    expect(leaseIsFree(lease('other'), { observedAt: 1000 }, 16_000)).toBe(false);
    expect(leaseIsFree(lease('other'), { observedAt: 1000 }, 16_001)).toBe(true);
  });
});

test('MicroTime has exactly six fractional digits, as the apiserver expects', () => {
  expect(microTime(Date.parse('2026-03-04T05:06:07.891Z'))).toBe('2026-03-04T05:06:07.891000Z');
});
