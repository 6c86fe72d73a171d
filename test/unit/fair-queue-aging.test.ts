// Marks cannot starve: with aging, a waiting item of a lower level moves up after a bounded number of
// services, however many items of the higher level keep coming (the values-first line of the batcher).
import fc from 'fast-check';
import { FairQueue } from '../../src/vault/fair-queue.js';

const DATA = 1;
const MARKS = 2;

test('without aging, marks wait as long as data keeps coming; with aging, a mark is served after afterServices services', () => {
  const run = (aging: boolean) => {
    const queue = new FairQueue<string>(3, aging ? { afterServices: 4, toLevel: DATA } : undefined);
    queue.push('mark', 'Deployment/ns/a', MARKS);
    const served: string[] = [];
    for (let i = 0; i < 20; i++) {
      queue.push(`data-${i}`, `Deployment/ns/busy-${i % 3}`, DATA); // one new data write per service
      served.push(queue.take()!);
    }
    return served;
  };
  expect(run(false)).not.toContain('mark');
  const served = run(true);
  // Four services at the data level, then the mark joins that level's round at the end of the round: its
  // own flow is new there, so it goes after the flows already due in the round.
  expect(served.indexOf('mark')).toBeGreaterThanOrEqual(4);
  expect(served.indexOf('mark')).toBeLessThanOrEqual(4 + 3);
  expect(served.filter((s) => s === 'mark')).toHaveLength(1);
});

test('an aged item keeps its place behind its own flow: per-flow FIFO holds across the move', () => {
  const queue = new FairQueue<string>(3, { afterServices: 0, toLevel: DATA });
  queue.push('a-data-1', 'a', DATA);
  queue.push('a-mark', 'a', MARKS);
  queue.push('a-data-2', 'a', DATA);
  expect(queue.take()).toBe('a-data-1');
  // The mark aged (one service > 0) and now waits behind a-data-2 in flow a.
  expect(queue.take()).toBe('a-data-2');
  expect(queue.take()).toBe('a-mark');
  expect(queue.size).toBe(0);
});

test('aging never skips a ready check and never loses or duplicates an item', () => {
  const queue = new FairQueue<string>(3, { afterServices: 1, toLevel: DATA });
  queue.push('blocked-mark', 'a', MARKS);
  queue.push('d1', 'b', DATA);
  queue.push('d2', 'b', DATA);
  queue.push('d3', 'b', DATA);
  const ready = (item: string) => item !== 'blocked-mark';
  expect([queue.take(ready), queue.take(ready), queue.take(ready), queue.take(ready)]).toEqual(['d1', 'd2', 'd3', undefined]);
  expect(queue.size).toBe(1);
  expect(queue.sizeOf(DATA)).toBe(1); // moved up, still waiting for its path
  expect(queue.take()).toBe('blocked-mark');
  expect(queue.drain()).toEqual([]);
});

test('property: under any firehose of data writes, every mark is served within afterServices + 1 + flows × (marks waiting when it came)', () => {
  const AFTER = 6;
  const DATA_FLOWS = 7;
  const step = fc.record({
    data: fc.array(fc.integer({ min: 0, max: DATA_FLOWS - 1 }), { minLength: 1, maxLength: 3 }), // at least one new data write per service
    mark: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 200 }), (steps) => {
      const queue = new FairQueue<{ id: number; mark: boolean; pushedAt: number; bound: number }>(3, { afterServices: AFTER, toLevel: DATA });
      let services = 0;
      let marksWaiting = 0;
      let id = 0;
      const check = (item: { mark: boolean; pushedAt: number; bound: number } | undefined) => {
        if (!item) return;
        services++;
        if (!item.mark) return;
        marksWaiting--;
        expect(services - item.pushedAt).toBeLessThanOrEqual(item.bound);
      };
      for (const s of steps) {
        for (const flow of s.data) queue.push({ id: id++, mark: false, pushedAt: services, bound: Infinity }, `data-${flow}`, DATA);
        if (s.mark) {
          marksWaiting++;
          // Its flow holds the marks ahead of it; at most DATA_FLOWS + 1 flows share the data level's rounds.
          queue.push({ id: id++, mark: true, pushedAt: services, bound: AFTER + 1 + (DATA_FLOWS + 1) * marksWaiting }, 'marks-source', MARKS);
        }
        check(queue.take());
      }
      while (queue.size > 0) check(queue.take());
      expect(marksWaiting).toBe(0);
    }),
    { seed: 14, numRuns: 300 },
  );
});
