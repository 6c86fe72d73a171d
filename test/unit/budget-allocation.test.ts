// The split of the installation's Vault budget among shard holders (src/budget/allocation.ts): a pure function,
// checked over random demands, floors, rates and bursts.
import fc from 'fast-check';
import { allocate } from '../../src/budget/allocation.js';
import { parseRecord, serializeRecord, InvalidBudgetRecord, MAX_ENTRIES } from '../../src/budget/record.js';

const sum = (values: Iterable<{ rate: number; burst: number }>) => {
  let rate = 0;
  let burst = 0;
  for (const v of values) {
    rate += v.rate;
    burst += v.burst;
  }
  return { rate, burst };
};

const inputs = fc
  .record({
    slots: fc.integer({ min: 1, max: 12 }),
    rate: fc.double({ min: 0.1, max: 500, noNaN: true }),
    burstPerSlot: fc.integer({ min: 1, max: 10 }),
    floorRate: fc.double({ min: 0, max: 5, noNaN: true }),
    demands: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 })), { minLength: 1, maxLength: 14 }),
  })
  .map(({ slots, rate, burstPerSlot, floorRate, demands }) => ({
    slots,
    rate,
    burst: slots * burstPerSlot + (demands.length % 3),
    floorRate,
    demands: new Map(demands.map((d, i) => [`holder-${String(i).padStart(2, '0')}`, d])),
  }));

describe('allocate: one budget split among the shard holders', () => {
  test('the shares never sum above the installation rate or burst; every holder gets a share; idle holders keep the floor', () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const shares = allocate(input);
        expect([...shares.keys()].sort()).toEqual([...input.demands.keys()].sort());
        const total = sum(shares.values());
        expect(total.rate).toBeLessThanOrEqual(input.rate + 1e-6);
        expect(total.burst).toBeLessThanOrEqual(input.burst);
        const participants = Math.max(input.slots, input.demands.size);
        const floor = Math.min(input.floorRate, input.rate / participants);
        for (const [id, share] of shares) {
          expect(share.rate).toBeGreaterThanOrEqual(floor - 0.0011);
          expect(Number.isInteger(share.burst)).toBe(true);
          // One whole request each while the installation's burst has one for every shard.
          if (input.burst >= participants) expect(share.burst).toBeGreaterThanOrEqual(1);
          if ((input.demands.get(id) ?? 0) === 0 && [...input.demands.values()].some((d) => d > 0)) expect(share.rate).toBeLessThanOrEqual(floor + 1e-9);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('one busy holder among idle ones gets all but the floors of the others (rate and burst)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 500 }), (slots, ratePerSlot, demand) => {
        const rate = ratePerSlot * slots;
        const burst = 2 * slots + 4;
        const floorRate = 0.2;
        const demands = new Map(Array.from({ length: slots }, (_, i) => [`h${i}`, i === 0 ? demand : 0]));
        const busy = allocate({ demands, slots, floorRate, rate, burst }).get('h0')!;
        expect(busy.rate).toBeGreaterThanOrEqual(rate - floorRate * (slots - 1) - 0.001);
        expect(busy.burst).toBe(burst - (slots - 1));
      }),
    );
  });

  test('3 shards, 10/s, burst 20, floor 0.2/s: the busy shard gets 9.6/s and 18 (96 %), an even split when all are idle', () => {
    const base = { slots: 3, floorRate: 0.2, rate: 10, burst: 20 };
    const busy = allocate({ ...base, demands: new Map([['a', 0], ['b', 250], ['c', 0]]) });
    expect(Object.fromEntries(busy)).toEqual({ a: { rate: 0.2, burst: 1 }, b: { rate: 9.6, burst: 18 }, c: { rate: 0.2, burst: 1 } });
    const idle = allocate({ ...base, demands: new Map([['a', 0], ['b', 0], ['c', 0]]) });
    expect([...idle.values()].map((s) => s.rate)).toEqual([3.333, 3.333, 3.333]);
    expect(sum(idle.values()).burst).toBe(20);
  });

  test('a holder that has not published yet is counted: the first one alone keeps room for the floors of the others', () => {
    const first = allocate({ slots: 3, floorRate: 0.2, rate: 10, burst: 20, demands: new Map([['a', 40]]) }).get('a')!;
    expect(first).toEqual({ rate: 9.6, burst: 18 });
  });
});

describe('the budget record: bounded, validated, in a canonical form', () => {
  test('round trip: what is serialized parses to the same entries, sorted by identity', () => {
    const record = parseRecord(JSON.stringify({ version: 1, entries: { b: { rate: 1.5, burst: 2, demand: 3, seq: 4 }, a: { rate: 0.2, burst: 1, demand: 0, seq: 9 } } }));
    const text = serializeRecord(record);
    expect(text).toBe('{"version":1,"entries":{"a":{"rate":0.2,"burst":1,"demand":0,"seq":9},"b":{"rate":1.5,"burst":2,"demand":3,"seq":4}}}');
    expect(parseRecord(text)).toEqual(record);
  });

  test.each([
    ['not JSON', '{', 'not JSON'],
    ['an unknown version', '{"version":2,"entries":{}}', 'unknown record version'],
    ['a negative rate', '{"version":1,"entries":{"a":{"rate":-1,"burst":1,"demand":0,"seq":1}}}', 'non-negative numbers'],
    ['a fractional burst', '{"version":1,"entries":{"a":{"rate":1,"burst":1.5,"demand":0,"seq":1}}}', 'non-negative numbers'],
    ['too many entries', JSON.stringify({ version: 1, entries: Object.fromEntries(Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => [`h${i}`, { rate: 0, burst: 0, demand: 0, seq: 0 }])) }), 'above 512'],
  ])('refuses %s with a reason that does not echo the text', (_name, text, says) => {
    expect(() => parseRecord(text)).toThrow(InvalidBudgetRecord);
    expect(() => parseRecord(text)).toThrow(says);
  });

  test('an identity named __proto__ stays a plain key', () => {
    const record = parseRecord('{"version":1,"entries":{"__proto__":{"rate":1,"burst":1,"demand":0,"seq":1}}}');
    expect([...record.entries.keys()]).toEqual(['__proto__']);
    expect(parseRecord(serializeRecord(record))).toEqual(record);
  });
});
