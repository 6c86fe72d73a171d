/**
 * A waiting line shared fairly between flows, in the spirit of Kubernetes API Priority and Fairness: pure
 * (no I/O, no timers), so that its order is a property that can be tested on its own.
 *
 *  - Levels are strict priorities: an item of a lower level is served only when no item of a higher level
 *    can be (level 0 is the highest).
 *  - Within a level, flows are served round-robin (one item per flow per round), and each flow is FIFO. A
 *    flow that becomes active joins the end of the current round. So the k-th waiting item of a flow is
 *    served within k × (active flows of its level) services of that level, whatever other flows queued.
 *  - `take(ready)` skips items the caller cannot start yet (e.g. their Vault path is busy): the flow's first
 *    ready item is served in its turn, the skipped ones keep their place.
 *
 * Flows are keyed by caller-given strings (source keys), so they live in Maps; an empty flow is forgotten
 * at once, so memory is bounded by the items waiting.
 */
export class FairQueue<T> {
  private readonly levels: Level<T>[];
  private count = 0;

  constructor(levelCount: number) {
    if (!Number.isInteger(levelCount) || levelCount < 1) throw new RangeError(`a fair queue needs at least one level, got ${levelCount}`);
    this.levels = Array.from({ length: levelCount }, () => ({ flows: new Map(), ring: [], next: 0 }));
  }

  get size(): number {
    return this.count;
  }

  /** Items waiting in one level. */
  sizeOf(level: number): number {
    let size = 0;
    for (const flow of this.levelAt(level).ring) size += flow.items.length;
    return size;
  }

  push(item: T, flowKey: string, level: number): void {
    const at = this.levelAt(level);
    let flow = at.flows.get(flowKey);
    if (!flow) {
      flow = { key: flowKey, items: [] };
      at.flows.set(flowKey, flow);
      // The end of the ring is the end of the current round: after the flows still due in it (from `next`
      // on), before those already served in it (which wrap around to the start).
      at.ring.push(flow);
    }
    flow.items.push(item);
    this.count++;
  }

  /**
   * The next item in fair order among those `ready` accepts (all when omitted); undefined when none can go.
   * Serving a flow moves its turn to the next flow of the ring.
   */
  take(ready: (item: T) => boolean = () => true): T | undefined {
    for (const level of this.levels) {
      const ring = level.ring;
      for (let step = 0; step < ring.length; step++) {
        const index = (level.next + step) % ring.length;
        const flow = ring[index];
        const position = flow.items.findIndex(ready);
        if (position < 0) continue;
        const [item] = flow.items.splice(position, 1);
        this.count--;
        if (flow.items.length === 0) {
          level.flows.delete(flow.key);
          ring.splice(index, 1);
          level.next = ring.length === 0 ? 0 : index % ring.length;
        } else {
          level.next = (index + 1) % ring.length;
        }
        return item;
      }
    }
    return undefined;
  }

  /** Removes and returns every waiting item (shutdown). */
  drain(): T[] {
    const items: T[] = [];
    for (const level of this.levels) {
      for (const flow of level.ring) items.push(...flow.items);
      level.flows.clear();
      level.ring.length = 0;
      level.next = 0;
    }
    this.count = 0;
    return items;
  }

  private levelAt(level: number): Level<T> {
    const at = this.levels[level];
    if (!at) throw new RangeError(`no level ${level} in a fair queue of ${this.levels.length}`);
    return at;
  }
}

interface Flow<T> {
  key: string;
  items: T[];
}

interface Level<T> {
  flows: Map<string, Flow<T>>;
  /** Active flows in service order; `next` is the flow whose turn it is. */
  ring: Flow<T>[];
  next: number;
}
