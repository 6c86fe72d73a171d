/**
 * Splits the JSON of a Kubernetes list (`{"kind":…,"metadata":{…},"items":[{…},{…}]}`), arriving in chunks,
 * into the bytes of each item as soon as that item is complete. So a page of a list is never held whole (as
 * bytes, as one string, or as one parsed tree): memory is bounded by the largest item, whatever the page size.
 *
 * Everything outside the items (kind, apiVersion, metadata with resourceVersion and continue) is kept as a
 * small "skeleton" (`"items":[]`) and parsed at the end.
 *
 * It scans structure only: strings are skipped with Buffer.indexOf (native), so the long base64 values of a
 * Secret cost almost nothing; only the bytes between strings are looked at one by one.
 */
export interface ListSplitterLimits {
  /** An item larger than this fails the list (a Secret is at most ~1.5 MiB of JSON). */
  maxItemBytes: number;
  /** The list without its items (metadata) larger than this fails the list. */
  maxSkeletonBytes: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

export class ListSplitter {
  private depth = 0;
  private inString = false;
  /** Parity of the run of backslashes that ended the previous chunk inside a string. */
  private pendingEscape = false;
  /** Depth-1 string last seen (the key of the next depth-1 value), only when short. */
  private lastTopString = '';
  private topStringStart = -1;
  private topStringParts: Buffer[] = [];
  /** True inside the top-level "items" array (depth 2 is then the level of the items themselves). */
  private inItems = false;
  private itemParts: Buffer[] = [];
  private itemBytes = 0;
  private inItem = false;
  private skeleton: Buffer[] = [];
  private skeletonBytes = 0;
  private finished = false;
  private headEmitted = false;
  itemCount = 0;

  constructor(
    private readonly onItem: (bytes: Buffer) => void,
    private readonly limits: ListSplitterLimits = { maxItemBytes: 16 * 1024 * 1024, maxSkeletonBytes: 1024 * 1024 },
    /**
     * Told once, when the items begin, what came before them (Kubernetes sends `metadata`, with `continue`,
     * first): so the next page can be asked for while this one streams. Not told if that part is not JSON.
     */
    private readonly onHead?: (head: Record<string, unknown>) => void,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    let itemStart = this.inItem ? 0 : -1;
    let skeletonStart = this.inItems ? -1 : 0;
    const n = chunk.length;
    while (i < n) {
      if (this.inString) {
        const quote = chunk.indexOf(QUOTE, i);
        if (quote === -1) {
          this.pendingEscape = endsWithOddBackslashes(chunk, i, n, this.pendingEscape);
          i = n;
          break;
        }
        const escaped = endsWithOddBackslashes(chunk, i, quote, this.pendingEscape);
        this.pendingEscape = false;
        i = quote + 1;
        if (escaped) continue;
        this.inString = false;
        if (this.topStringStart >= 0) this.endTopString(chunk.subarray(this.topStringStart, quote));
        continue;
      }
      const byte = chunk[i];
      if (byte === QUOTE) {
        if (this.inItems && this.depth === 2) throw new Error('malformed list: an item that is not an object');
        this.inString = true;
        this.pendingEscape = false;
        if (this.depth === 1) {
          this.topStringStart = i + 1;
          this.topStringParts = [];
        }
      } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
        this.depth += 1;
        if (this.depth === 2 && byte === OPEN_ARRAY && this.lastTopString === 'items') {
          this.inItems = true;
          if (skeletonStart >= 0) this.addSkeleton(chunk.subarray(skeletonStart, i + 1));
          skeletonStart = -1;
          this.emitHead();
        } else if (this.depth === 3 && this.inItems) {
          this.inItem = true;
          itemStart = i;
          this.itemParts = [];
          this.itemBytes = 0;
        }
      } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
        this.depth -= 1;
        if (this.depth === 2 && this.inItem) {
          this.inItem = false;
          this.addItemPart(chunk.subarray(itemStart, i + 1));
          itemStart = -1;
          this.emitItem();
        } else if (this.depth === 1 && this.inItems) {
          this.inItems = false;
          skeletonStart = i; // the closing bracket
        } else if (this.depth === 0) {
          this.finished = true;
        } else if (this.depth < 0) {
          throw new Error('malformed list: unbalanced brackets');
        }
      } else if (this.inItems && this.depth === 2 && !isSeparator(byte)) {
        throw new Error('malformed list: an item that is not an object');
      }
      i += 1;
    }
    if (this.inString && this.topStringStart >= 0) {
      // a depth-1 string goes on in the next chunk
      if (this.topStringStart < n) this.topStringParts.push(chunk.subarray(this.topStringStart, n));
      this.topStringStart = 0;
    }
    if (this.inItem && itemStart >= 0) this.addItemPart(chunk.subarray(itemStart, n));
    if (skeletonStart >= 0) this.addSkeleton(chunk.subarray(skeletonStart, n));
  }

  /** The list without its items; throws when the JSON did not end where a list ends. */
  end(): Record<string, unknown> {
    if (!this.finished || this.inString) throw new Error('truncated list');
    const parsed: unknown = JSON.parse(Buffer.concat(this.skeleton).toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('malformed list: not an object');
    return parsed as Record<string, unknown>;
  }

  private emitHead(): void {
    if (!this.onHead || this.headEmitted) return;
    this.headEmitted = true;
    let head: unknown;
    try {
      head = JSON.parse(Buffer.concat([...this.skeleton, Buffer.from(']}')]).toString('utf8'));
    } catch {
      return; // malformed: end() will say so
    }
    if (head && typeof head === 'object' && !Array.isArray(head)) this.onHead(head as Record<string, unknown>);
  }

  private endTopString(last: Buffer): void {
    this.topStringStart = -1;
    const total = this.topStringParts.reduce((s, p) => s + p.length, last.length);
    this.lastTopString = total <= 32 ? Buffer.concat([...this.topStringParts, last]).toString('utf8') : '';
    this.topStringParts = [];
  }

  private addItemPart(part: Buffer): void {
    this.itemBytes += part.length;
    if (this.itemBytes > this.limits.maxItemBytes) throw new Error(`list item larger than ${this.limits.maxItemBytes} bytes`);
    this.itemParts.push(part);
  }

  private emitItem(): void {
    const bytes = this.itemParts.length === 1 ? this.itemParts[0] : Buffer.concat(this.itemParts);
    this.itemParts = [];
    this.itemCount += 1;
    this.onItem(bytes);
  }

  private addSkeleton(part: Buffer): void {
    this.skeletonBytes += part.length;
    if (this.skeletonBytes > this.limits.maxSkeletonBytes) throw new Error(`list metadata larger than ${this.limits.maxSkeletonBytes} bytes`);
    this.skeleton.push(Buffer.from(part)); // a copy: the chunk is not kept alive by a few bytes of it
  }
}

function isSeparator(byte: number): boolean {
  return byte === 0x2c || byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09; // , space \n \r \t
}

/**
 * Whether the bytes [from, to) end with an odd run of backslashes (the next byte is escaped). `carry` is the
 * parity left by the previous chunk, counted only when the run reaches back to `from`.
 */
function endsWithOddBackslashes(chunk: Buffer, from: number, to: number, carry: boolean): boolean {
  let run = 0;
  let j = to - 1;
  while (j >= from && chunk[j] === BACKSLASH) {
    run += 1;
    j -= 1;
  }
  const odd = run % 2 === 1;
  return j < from ? odd !== carry : odd;
}
