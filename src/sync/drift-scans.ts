// The shared result of a drift root's scan (src/sync/drift-root.ts), on the I/O side of the decisions (the
// gatherer): the drift checks of all sources below one root, due together, cost one scan. The rule that keeps
// "an out-of-band change is restored within one period": a check is served only by a scan TAKEN AT OR AFTER THE
// TIME THE CHECK FELL DUE (a scan in flight that started before it is not joined; a new one is sent). Only drift
// checks come here: change traffic (ownership lookups before writes, deletes) always asks Vault itself.
import { formatPath, type KvPath } from '../vault/path.js';
import type { ScanAnswer, ScanEntries, ScanRefusal } from '../vault/detailed-scan.js';
import { FORBIDDEN_LISTING_RECHECK_MS } from '../vault/kv-v2.js';

/** How long a scan's result may serve checks at all: the checks of one root fall due together and run soon after. */
export const SHARED_SCAN_TTL_MS = 60_000;
/** Roots whose latest scan is held at once (each holds its root's metadata): the oldest is dropped past this. */
export const SHARED_SCAN_MAX_ROOTS = 256;
/** A root whose answer passed the byte cap is checked by folder listings for this long, then scanned again. */
export const TOO_LARGE_RECHECK_MS = 60 * 60_000;
/** Roots remembered as too large at once (bounded like every map keyed by input). */
const MAX_TOO_LARGE_ROOTS = 4_096;

export interface DriftScansOptions {
  /** Wall clock, milliseconds: the same clock the due times are computed on (decide()'s `now`). */
  now(): number;
  /** Told once per refusal that changes what the operator does (the operator logs and counts it). */
  onRefused?(root: KvPath, why: ScanRefusal): void;
  ttlMs?: number;
  maxRoots?: number;
}

interface Taken {
  /** When the scan was asked for (before the line and the limiter): no later than what the server saw. */
  takenAt: number;
  result: Promise<ScanEntries | undefined>;
}

/** What the scan says about the root, or undefined: no scan to be had, check by folder listings. */
export type SharedScan = ScanEntries | undefined;

export class DriftScans {
  private readonly latest = new Map<string, Taken>();
  /** Mounts where no scan is to be had: for good (`unsupported`), or until a time (`forbidden`). */
  private readonly mounts = new Map<string, number>();
  private readonly tooLarge = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxRoots: number;

  constructor(private readonly options: DriftScansOptions) {
    this.ttlMs = options.ttlMs ?? SHARED_SCAN_TTL_MS;
    this.maxRoots = options.maxRoots ?? SHARED_SCAN_MAX_ROOTS;
  }

  /**
   * May the drift checks below this root count on a scan (so their slots are aligned by the root)? Not where the
   * server or the token refused scans on its mount, nor while the root is too large; unknown counts as yes.
   */
  usable(root: KvPath): boolean {
    const now = this.options.now();
    const until = this.mounts.get(root.mount);
    return (until === undefined || now >= until) && (this.tooLarge.get(formatPath(root)) ?? -Infinity) <= now;
  }

  /**
   * The metadata below the root for a check that fell due at `dueAt`: the latest scan if it was taken at or
   * after `dueAt` and is still fresh (in flight or answered), else a new scan. Undefined when the server, the
   * token or the cap refuses a scan of this root: the caller checks folder by folder. `scan` sends one (the port's
   * scanDetailedMetadata with the context of the check that sends it: its scope permits the root).
   */
  below(root: KvPath, dueAt: number, scan: (root: KvPath) => Promise<ScanAnswer>): Promise<SharedScan> {
    const key = formatPath(root);
    const now = this.options.now();
    if (!this.usable(root)) return Promise.resolve(undefined);
    const held = this.latest.get(key);
    if (held && held.takenAt >= dueAt && now - held.takenAt <= this.ttlMs) return held.result;
    const taken: Taken = { takenAt: now, result: this.send(root, key, scan) };
    this.latest.delete(key); // re-inserted last: the map's order is the order of taking
    this.latest.set(key, taken);
    for (const [oldKey, old] of this.latest) {
      if (this.latest.size <= this.maxRoots && now - old.takenAt <= this.ttlMs) break;
      this.latest.delete(oldKey);
    }
    // A failed scan is not kept: the next check asks again (its own error reaches the checks that joined it).
    taken.result.catch(() => {
      if (this.latest.get(key) === taken) this.latest.delete(key);
    });
    return taken.result;
  }

  private async send(root: KvPath, key: string, scan: (root: KvPath) => Promise<ScanAnswer>): Promise<SharedScan> {
    const answer = await scan(root);
    if (answer.kind === 'scan') return answer.entries;
    const now = this.options.now();
    if (answer.why === 'too-large') {
      this.tooLarge.delete(key);
      this.tooLarge.set(key, now + TOO_LARGE_RECHECK_MS);
      if (this.tooLarge.size > MAX_TOO_LARGE_ROOTS) this.tooLarge.delete(this.tooLarge.keys().next().value!);
    } else {
      this.mounts.set(root.mount, answer.why === 'unsupported' ? Infinity : now + FORBIDDEN_LISTING_RECHECK_MS);
    }
    this.options.onRefused?.(root, answer.why);
    return undefined;
  }
}
