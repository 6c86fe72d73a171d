// The fair waiting line in front of the rate limiter: its order is a property of the pure FairQueue, so it is
// checked here over arbitrary interleavings of submissions and services (fast-check, seeded).
import fc from 'fast-check';
import { FairQueue } from '../../src/vault/fair-queue.js';

const LEVELS = 3;

interface Item {
  id: number;
  flow: string;
  level: number;
  /** How many items of its flow were waiting once it was pushed (itself included): it is the k-th. */
  k: number;
  /** Services of its level so far when it was pushed. */
  levelServicesAtPush: number;
  /** Most active flows its level had while it waited. */
  maxActiveFlows: number;
}

type Step = { push: { flow: number; level: number } } | { take: true };

const steps = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ push: fc.record({ flow: fc.integer({ min: 0, max: 6 }), level: fc.integer({ min: 0, max: LEVELS - 1 }) }) }) },
    { weight: 2, arbitrary: fc.constant({ take: true as const }) },
  ),
  { maxLength: 300 },
);

/** Runs the steps, then takes everything left; returns the service order with what each item saw. */
function simulate(script: Step[]) {
  const queue = new FairQueue<Item>(LEVELS);
  const waiting: Item[] = [];
  const served: Array<{ item: Item; waitingBefore: Item[] }> = [];
  const levelServices = Array<number>(LEVELS).fill(0);
  const noteActiveFlows = () => {
    const flows = Array.from({ length: LEVELS }, () => new Set<string>());
    for (const w of waiting) flows[w.level].add(w.flow);
    for (const w of waiting) w.maxActiveFlows = Math.max(w.maxActiveFlows, flows[w.level].size);
  };
  let nextId = 0;
  const take = () => {
    const snapshot = [...waiting];
    const item = queue.take();
    if (!item) {
      expect(waiting).toHaveLength(0);
      return false;
    }
    waiting.splice(waiting.indexOf(item), 1);
    levelServices[item.level]++;
    served.push({ item, waitingBefore: snapshot });
    (item as Item & { servicesUntilServed: number }).servicesUntilServed = levelServices[item.level] - item.levelServicesAtPush;
    return true;
  };
  for (const step of script) {
    if ('take' in step) {
      take();
      continue;
    }
    const flow = `source-${step.push.flow}`;
    const level = step.push.level;
    const k = waiting.filter((i) => i.flow === flow && i.level === level).length + 1;
    const item: Item = { id: nextId++, flow, level, k, levelServicesAtPush: levelServices[level], maxActiveFlows: 0 };
    queue.push(item, flow, level);
    waiting.push(item);
    noteActiveFlows();
  }
  while (take()) noteActiveFlows();
  expect(queue.size).toBe(0);
  return served;
}

const seeded = { seed: 0x5eed, numRuns: 2000 };

describe('FairQueue: round-robin across flows within a level, FIFO within a flow, strict levels', () => {
  test('a flow is served in the order it submitted (FIFO within a flow)', () => {
    fc.assert(
      fc.property(steps, (script) => {
        const served = simulate(script);
        const lastIdOf = new Map<string, number>();
        for (const { item } of served) {
          const key = `${item.level}/${item.flow}`;
          expect(item.id).toBeGreaterThan(lastIdOf.get(key) ?? -1);
          lastIdOf.set(key, item.id);
        }
      }),
      seeded,
    );
  });

  test('a lower level is served only when no higher level waits', () => {
    fc.assert(
      fc.property(steps, (script) => {
        for (const { item, waitingBefore } of simulate(script)) {
          expect(waitingBefore.some((w) => w.level < item.level)).toBe(false);
        }
      }),
      seeded,
    );
  });

  test('round-robin: while a flow keeps waiting, no other flow of its level is served twice between two of its turns', () => {
    fc.assert(
      fc.property(steps, (script) => {
        const served = simulate(script);
        for (let level = 0; level < LEVELS; level++) {
          const ofLevel = served.filter((s) => s.item.level === level);
          // Since each flow's last service: which other flows have been served (a flow still waiting may not see another flow twice).
          const seenSince = new Map<string, Set<string>>();
          for (const { item, waitingBefore } of ofLevel) {
            for (const [flow, others] of seenSince) {
              if (flow === item.flow) continue;
              const stillWaiting = waitingBefore.some((w) => w.level === level && w.flow === flow);
              if (!stillWaiting) continue;
              expect(others.has(item.flow)).toBe(false);
              others.add(item.flow);
            }
            seenSince.set(item.flow, new Set());
          }
        }
      }),
      seeded,
    );
  });

  test("a flow's k-th waiting item is served within k × (active flows of its level) services of that level", () => {
    fc.assert(
      fc.property(steps, (script) => {
        for (const { item } of simulate(script)) {
          const waited = (item as Item & { servicesUntilServed: number }).servicesUntilServed;
          expect(waited).toBeLessThanOrEqual(item.k * item.maxActiveFlows);
        }
      }),
      seeded,
    );
  });

  test('one change of a small source waits for one round of the big sources, not for their backlog', () => {
    const queue = new FairQueue<string>(1);
    for (let source = 0; source < 10; source++) for (let i = 0; i < 40; i++) queue.push(`big${source}-${i}`, `big${source}`, 0);
    for (let i = 0; i < 25; i++) queue.take(); // the big sources are being served
    queue.push('small', 'small', 0);
    const order: string[] = [];
    for (let item = queue.take(); item !== undefined; item = queue.take()) order.push(item);
    expect(order.indexOf('small')).toBeLessThanOrEqual(10);
    expect(order).toHaveLength(10 * 40 - 25 + 1);
  });

  test('items that cannot start yet are skipped in their turn and keep their place; the flow serves its first ready one', () => {
    const queue = new FairQueue<string>(1);
    queue.push('a1', 'a', 0);
    queue.push('a2', 'a', 0);
    queue.push('b1', 'b', 0);
    queue.push('b2', 'b', 0);
    const blocked = new Set(['a1', 'b1', 'b2']);
    const ready = (item: string) => !blocked.has(item);
    expect(queue.take(ready)).toBe('a2');
    expect(queue.take(ready)).toBeUndefined(); // nothing else is ready
    blocked.clear();
    expect([queue.take(), queue.take(), queue.take()]).toEqual(['b1', 'a1', 'b2']);
    expect(queue.size).toBe(0);
  });

  test('drain returns everything waiting and leaves the queue empty; a level out of range is refused', () => {
    const queue = new FairQueue<number>(2);
    queue.push(1, 'x', 0);
    queue.push(2, 'y', 1);
    expect(queue.sizeOf(1)).toBe(1);
    expect(queue.drain().sort()).toEqual([1, 2]);
    expect(queue.size).toBe(0);
    expect(queue.take()).toBeUndefined();
    expect(() => queue.push(3, 'x', 2)).toThrow(/no level 2/);
    expect(() => new FairQueue(0)).toThrow(/at least one level/);
  });
});
