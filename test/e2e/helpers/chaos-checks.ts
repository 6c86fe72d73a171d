// The chaos test's verdicts, as pure functions over what the harness observed (the ledger, the requests each
// replica's proxy saw, the Lease history it polled, the replicas' own logs, OpenBao's audit log, the final
// state of Vault). No I/O here: the harness gathers, these decide, and each finding carries its evidence.
import type { ChaosLedger, Target, ValueRef } from './chaos-ledger.js';

/** A half-open span of wall-clock time [from, to), ms since the epoch. */
export interface Window {
  from: number;
  to: number;
}

/** A version of the Lease record as polled: who held it and the times its holder wrote into it (this machine's clock). */
export interface LeaseObservation {
  /** When the poller first saw this version of the record. */
  at: number;
  holder: string;
  acquireTime?: number;
  renewTime?: number;
  durationMs: number;
}

/** What a replica said about itself (its log), or what the harness saw of it (its exit). */
export interface LogMarker {
  at: number;
  event: 'acquired' | 'lost' | 'released' | 'exited';
}

/** A request as the replica's own proxy saw it. */
export interface ReplicaRequest {
  identity: string;
  /** Date.now() when it reached the proxy. */
  at: number;
  method: string;
  path: string;
  outcome: string;
  status?: number;
  /** The ledger reference of the value a data write carried (`<secret>#<index>`), when it carried one. */
  note?: string;
}

/**
 * When the Lease said this identity held it: for each unbroken run of versions showing it as holder (same
 * acquireTime), from its acquireTime until the FIRST of
 * - the acquireTime written by the next holder (before that holder's write even landed: the hard limit, two
 *   writers from then on), and
 * - a lease duration after the poller first saw its last renewal: a standby may take over a lease duration
 *   after it saw the record change, and it cannot see a renewal long before the poller does (100 ms polls);
 *   where it did, the next holder's acquireTime cuts the window anyway.
 * Not renewTime + duration: renewTime is stamped before the renewal call, which can take seconds on a
 * loaded machine, and a standby counts from when it sees the renewal, not from its stamp.
 * Polls are far more frequent than a lease duration, so no renewal before a takeover goes unseen.
 */
export function leaseWindows(observations: readonly LeaseObservation[]): Map<string, Window[]> {
  const windows = new Map<string, Window[]>();
  let current: { holder: string; acquireTime?: number; window: Window } | undefined;
  let previous: Window | undefined;
  for (const o of observations) {
    if (!o.holder) {
      current = undefined;
      continue;
    }
    const end = o.at + o.durationMs;
    if (current && current.holder === o.holder && current.acquireTime === o.acquireTime) {
      current.window.to = Math.max(current.window.to, end);
      continue;
    }
    current = { holder: o.holder, acquireTime: o.acquireTime, window: { from: o.acquireTime ?? o.at, to: end } };
    // Whoever held it before held it at most until someone else took it.
    if (previous) previous.to = Math.max(previous.from, Math.min(previous.to, current.window.from));
    previous = current.window;
    windows.set(o.holder, [...(windows.get(o.holder) ?? []), current.window]);
  }
  return windows;
}

/** When the replica itself said it held the Lease: from "acquired" to "lost", "released" or its exit. */
export function logWindows(markers: readonly LogMarker[]): Window[] {
  const windows: Window[] = [];
  let open: number | undefined;
  for (const m of [...markers].sort((a, b) => a.at - b.at)) {
    if (m.event === 'acquired') open ??= m.at;
    else if (open !== undefined) {
      windows.push({ from: open, to: m.at });
      open = undefined;
    }
  }
  if (open !== undefined) windows.push({ from: open, to: Infinity });
  return windows;
}

export function intersect(a: readonly Window[], b: readonly Window[]): Window[] {
  const out: Window[] = [];
  for (const x of a) {
    for (const y of b) {
      const from = Math.max(x.from, y.from);
      const to = Math.min(x.to, y.to);
      if (from < to) out.push({ from, to });
    }
  }
  return out.sort((p, q) => p.from - q.from);
}

/**
 * "Held" is defined conservatively: a replica held the Lease at instant t only if BOTH the Lease (as polled)
 * says so by `leaseWindows` AND the replica's own log says so (between its "acquired" and its "lost" /
 * "released" / exit). A request that reached the replica's proxy outside every such window was sent by a
 * replica that could not prove it was the only writer. No clock tolerance is needed: every time compared
 * here comes from the same machine's clock, and a fenced replica checks its lease before the request leaves,
 * i.e. before the proxy sees it. A replica whose log has no acquisition at all is judged by the Lease alone
 * and listed in `judgedByLeaseOnly` (the log messages changed, or the log was lost).
 */
export function heldWindows(
  lease: Map<string, Window[]>,
  markers: Map<string, LogMarker[]>,
): { held: Map<string, Window[]>; judgedByLeaseOnly: string[] } {
  const held = new Map<string, Window[]>();
  const judgedByLeaseOnly: string[] = [];
  for (const identity of new Set([...lease.keys(), ...markers.keys()])) {
    const own = markers.get(identity) ?? [];
    const byLease = lease.get(identity) ?? [];
    if (!own.some((m) => m.event === 'acquired')) {
      if (byLease.length) judgedByLeaseOnly.push(identity);
      held.set(identity, byLease);
    } else held.set(identity, intersect(byLease, logWindows(own)));
  }
  return { held, judgedByLeaseOnly: judgedByLeaseOnly.sort() };
}

export function requestsByNonHolders(requests: readonly ReplicaRequest[], held: Map<string, Window[]>): ReplicaRequest[] {
  return requests.filter((r) => !(held.get(r.identity) ?? []).some((w) => w.from <= r.at && r.at < w.to));
}

export const isKvWrite = (r: Pick<ReplicaRequest, 'method' | 'path'>) =>
  /^\/v1\/[^/]+\/(data|metadata)\//.test(r.path) && (r.method === 'POST' || r.method === 'PUT' || r.method === 'DELETE');

export interface BucketReplay {
  requests: number;
  rejected: number;
  /** Times (ms) of the first rejected requests, at most 5. */
  firstRejected: number[];
  /** The most requests in any 1-s window. */
  busiestSecond: number;
}

/**
 * Replays request times through one token bucket (`rate` per second, `burst` deep, full at the first
 * request). A request may be counted up to `toleranceMs` LATER than its recorded time, never earlier: its
 * timestamp can be early relative to others by that much (injected latency in front of Vault that ends
 * between two requests, scheduling on a loaded machine). A request that finds no token even then is rejected
 * (and takes none).
 */
export function replayTokenBucket(times: readonly number[], { rate, burst, toleranceMs }: { rate: number; burst: number; toleranceMs: number }): BucketReplay {
  const sorted = [...times].sort((a, b) => a - b);
  let tokens = burst;
  let last = sorted[0] ?? 0;
  let rejected = 0;
  const firstRejected: number[] = [];
  for (const t of sorted) {
    const at = Math.max(t, last);
    const available = Math.min(burst, tokens + (rate * (at - last)) / 1000);
    const when = available >= 1 ? at : at + ((1 - available) * 1000) / rate;
    if (when - t <= toleranceMs) {
      tokens = Math.min(burst, tokens + (rate * (when - last)) / 1000) - 1;
      last = when;
    } else {
      rejected++;
      if (firstRejected.length < 5) firstRejected.push(t);
    }
  }
  let busiestSecond = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j] < sorted[i] + 1000) j++;
    busiestSecond = Math.max(busiestSecond, j - i);
  }
  return { requests: sorted.length, rejected, firstRejected, busiestSecond };
}

/** What Vault holds at a path at the end (read with the root token, around the operator). */
export interface PathState {
  /** The `value` key of the current version; undefined when the path has no readable data. */
  value?: string;
  /** KV v2 `current_version` (0 when the path does not exist). */
  versions: number;
  /** The operator's ownership marks (custom_metadata managed-by) are there. */
  marked: boolean;
}

/** A data write that Vault accepted (2xx), as a proxy saw it. */
export interface LandedWrite {
  path: string;
  identity: string;
  at: number;
  ref?: ValueRef;
}

export interface PathFinding {
  path: string;
  secret: string;
  /** Values the Secret was given in all. */
  values: number;
  /** Index of the value Vault holds (-1: none or not one of the Secret's values). */
  holds: number;
  versions: number;
  /** The most versions this path may have (see checkPaths). */
  allowed: number;
  /** The last writes that landed at this path, oldest first (at most 6). */
  writes: LandedWrite[];
}

/**
 * For each live target (a path some Deployment points at now):
 * - stale: Vault does not hold the LATEST value of its Secret;
 * - excess: more KV versions than the values the path should have received. Precisely: each version is one
 *   data write that landed; the path should have received each value of its Secret at most once, from the
 *   value the Secret held when the path became a target (or the older one the operator wrote first, when its
 *   cache lagged behind: not a defect) up to the latest. So `allowed = values - min(indexAtStart,
 *   index of the first value that landed)`. Intermediate values may be skipped (coalescing), never repeated:
 *   a repeat (an answer lost after the write applied, a restarted leader rewriting what landed) or a stale
 *   value in between shows as a version over that count;
 * - regressions: a write that landed with an OLDER value than one that landed before it (a stale writer),
 *   even when a later write repaired it.
 */
export function checkPaths(
  ledger: ChaosLedger,
  states: Map<string, PathState>,
  landed: readonly LandedWrite[],
): { stale: PathFinding[]; excess: PathFinding[]; unmarked: string[]; regressions: Array<{ path: string; write: LandedWrite; after: LandedWrite }> } {
  const byPath = new Map<string, LandedWrite[]>();
  for (const w of [...landed].sort((a, b) => a.at - b.at)) byPath.set(w.path, [...(byPath.get(w.path) ?? []), w]);
  const stale: PathFinding[] = [];
  const excess: PathFinding[] = [];
  const unmarked: string[] = [];
  const regressions: Array<{ path: string; write: LandedWrite; after: LandedWrite }> = [];
  for (const target of ledger.liveTargets()) {
    const state = states.get(target.path) ?? { versions: 0, marked: false };
    const values = ledger.values(target.secret);
    const writes = byPath.get(target.path) ?? [];
    const ref = state.value === undefined ? undefined : ledger.refOf(state.value);
    const holds = ref && ref.secret === target.secret ? ref.index : -1;
    const firstLanded = writes.find((w) => w.ref?.secret === target.secret)?.ref?.index ?? target.indexAtStart;
    const allowed = values.length - Math.min(target.indexAtStart, firstLanded);
    const finding: PathFinding = { path: target.path, secret: target.secret, values: values.length, holds, versions: state.versions, allowed, writes: writes.slice(-6) };
    if (holds !== values.length - 1) stale.push(finding);
    if (state.versions > allowed) excess.push(finding);
    if (state.versions > 0 && !state.marked) unmarked.push(target.path);
    let newest: LandedWrite | undefined;
    for (const w of writes) {
      if (!w.ref) continue;
      if (newest?.ref && w.ref.index < newest.ref.index) regressions.push({ path: target.path, write: w, after: newest });
      else newest = w;
    }
  }
  return { stale, excess, unmarked, regressions };
}

/** Keys in Vault that no live target accounts for, by what the ledger knows of them. Sorted. */
export function leftovers(listed: readonly string[], ledger: ChaosLedger): { deleted: string[]; moved: string[]; unknown: string[] } {
  const out = { deleted: [] as string[], moved: [] as string[], unknown: [] as string[] };
  for (const path of [...listed].sort()) {
    const target: Target | undefined = ledger.target(path);
    if (!target) out.unknown.push(path);
    else if (target.endedBy === 'deleted') out.deleted.push(path);
    else if (target.endedBy === 'moved') out.moved.push(path);
  }
  return out;
}

/** Occurrences of the run's values in texts (logs, Events, statuses, metrics), by where; context redacted. */
export function canaryLeaks(sources: ReadonlyArray<{ where: string; text: string }>, pattern: RegExp): { total: number; found: Array<{ where: string; count: number; sample: string }> } {
  const found: Array<{ where: string; count: number; sample: string }> = [];
  for (const { where, text } of sources) {
    const matches = [...text.matchAll(new RegExp(pattern.source, 'g'))];
    if (!matches.length) continue;
    const at = matches[0].index ?? 0;
    const sample = text.slice(Math.max(0, at - 80), at + 80).replace(new RegExp(`${pattern.source}[-0-9a-f]*`, 'g'), '<value>').replace(/\s+/g, ' ');
    found.push({ where, count: matches.length, sample });
  }
  return { total: found.reduce((n, f) => n + f.count, 0), found: found.sort((a, b) => (a.where < b.where ? -1 : 1)) };
}
