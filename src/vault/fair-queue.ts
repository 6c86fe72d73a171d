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
 *  - Aging (optional): strict levels alone let a lower level starve while a higher one never runs dry. An
 *    item that has waited through more than `afterServices` services (of any level) moves to level
 *    `toLevel`, at the end of its flow there, and is served in that level's round-robin from then on. So a
 *    waiting item is served within afterServices + (its place there) services, however much keeps coming.
 *    Counted in services, not time: the line stays pure, and at a steady rate the two are proportional.
 *
 * Flows are keyed by caller-given strings (source keys), so they live in Maps; an empty flow is forgotten
 * at once, so memory is bounded by the items waiting (plus, with aging, records of items served while an
 * older one waits: at most afterServices of them per level).
 */
export interface Aging {
  /** Services an item may wait through before it moves up. */
  afterServices: number;
  /** The level aged items move to (those at or above it never age). */
  toLevel: number;
}

export class FairQueue<T> {
  private readonly levels: Level<T>[];
  private count = 0;
  /** Items served so far: the clock of aging. */
  private services = 0;

  constructor(
    levelCount: number,
    private readonly aging?: Aging,
  ) {
    if (!Number.isInteger(levelCount) || levelCount < 1) throw new RangeError(`a fair queue needs at least one level, got ${levelCount}`);
    if (aging && (!Number.isInteger(aging.afterServices) || aging.afterServices < 0)) throw new RangeError(`aging needs a whole number of services >= 0, got ${aging.afterServices}`);
    if (aging && (!Number.isInteger(aging.toLevel) || aging.toLevel < 0 || aging.toLevel >= levelCount)) throw new RangeError(`no level ${aging.toLevel} to age into in a fair queue of ${levelCount}`);
    this.levels = Array.from({ length: levelCount }, () => ({ flows: new Map(), ring: [], next: 0, arrivals: [], arrivalsHead: 0 }));
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
    const node: Node<T> = { item, flowKey, pushedAt: this.services, done: false };
    this.append(this.levelAt(level), node);
    if (this.aging && level > this.aging.toLevel) this.levelAt(level).arrivals.push(node);
    this.count++;
  }

  /**
   * The next item in fair order among those `ready` accepts (all when omitted); undefined when none can go.
   * Serving a flow moves its turn to the next flow of the ring.
   */
  take(ready: (item: T) => boolean = () => true): T | undefined {
    this.promoteAged();
    for (const level of this.levels) {
      const ring = level.ring;
      for (let step = 0; step < ring.length; step++) {
        const index = (level.next + step) % ring.length;
        const flow = ring[index];
        const position = flow.items.findIndex((node) => ready(node.item));
        if (position < 0) continue;
        const [node] = flow.items.splice(position, 1);
        node.done = true;
        this.count--;
        this.services++;
        if (flow.items.length === 0) {
          this.removeFlow(level, index);
          level.next = ring.length === 0 ? 0 : index % ring.length; // the flow after it has the turn
        } else {
          level.next = (index + 1) % ring.length;
        }
        return node.item;
      }
    }
    return undefined;
  }

  /** Removes and returns every waiting item (shutdown). */
  drain(): T[] {
    const items: T[] = [];
    for (const level of this.levels) {
      for (const flow of level.ring) items.push(...flow.items.map((node) => node.item));
      level.flows.clear();
      level.ring.length = 0;
      level.next = 0;
      level.arrivals.length = 0;
      level.arrivalsHead = 0;
    }
    this.count = 0;
    return items;
  }

  /** Moves every item that has waited through more than afterServices services to the aging level. */
  private promoteAged(): void {
    if (!this.aging) return;
    const { afterServices, toLevel } = this.aging;
    for (let l = toLevel + 1; l < this.levels.length; l++) {
      const level = this.levels[l];
      // Arrivals are in push order, so the oldest waiting item is at the head (served ones are skipped).
      while (level.arrivalsHead < level.arrivals.length) {
        const node = level.arrivals[level.arrivalsHead];
        if (!node.done && this.services - node.pushedAt <= afterServices) break;
        level.arrivalsHead++;
        if (!node.done) this.move(level, node, this.levels[toLevel]);
      }
      if (level.arrivalsHead > 64 && level.arrivalsHead * 2 > level.arrivals.length) {
        level.arrivals.splice(0, level.arrivalsHead);
        level.arrivalsHead = 0;
      }
    }
  }

  private move(from: Level<T>, node: Node<T>, to: Level<T>): void {
    const flow = from.flows.get(node.flowKey)!;
    flow.items.splice(flow.items.indexOf(node), 1);
    if (flow.items.length === 0) {
      const index = from.ring.indexOf(flow);
      this.removeFlow(from, index);
      // The flow whose turn it was keeps it.
      if (index < from.next) from.next--;
      from.next = from.ring.length === 0 ? 0 : from.next % from.ring.length;
    }
    this.append(to, node);
  }

  private append(level: Level<T>, node: Node<T>): void {
    let flow = level.flows.get(node.flowKey);
    if (!flow) {
      flow = { key: node.flowKey, items: [] };
      level.flows.set(node.flowKey, flow);
      // The end of the ring is the end of the current round: after the flows still due in it (from `next`
      // on), before those already served in it (which wrap around to the start).
      level.ring.push(flow);
    }
    flow.items.push(node);
  }

  /** Forgets an empty flow (the caller decides whose turn it is then). */
  private removeFlow(level: Level<T>, index: number): void {
    level.flows.delete(level.ring[index].key);
    level.ring.splice(index, 1);
  }

  private levelAt(level: number): Level<T> {
    const at = this.levels[level];
    if (!at) throw new RangeError(`no level ${level} in a fair queue of ${this.levels.length}`);
    return at;
  }
}

interface Node<T> {
  item: T;
  flowKey: string;
  /** The service count when it was pushed. */
  pushedAt: number;
  /** Served (taken): its arrival record is skipped. */
  done: boolean;
}

interface Flow<T> {
  key: string;
  items: Node<T>[];
}

interface Level<T> {
  flows: Map<string, Flow<T>>;
  /** Active flows in service order; `next` is the flow whose turn it is. */
  ring: Flow<T>[];
  next: number;
  /** With aging: the level's items in push order (served ones are skipped lazily), from arrivalsHead on. */
  arrivals: Node<T>[];
  arrivalsHead: number;
}
