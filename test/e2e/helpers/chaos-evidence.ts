// What a failing chaos run prints: for each finding, which path, which values, which requests by whom and
// when; bounded (40 lines of at most 400 characters, 6 examples per finding). Pure: formats the verdicts of
// chaos-checks.ts. Values are shown by their position in the ledger (`value #3`), never themselves.
import {
  isKvWrite,
  type BucketReplay,
  type canaryLeaks,
  type checkPaths,
  type LandedWrite,
  type LeaseObservation,
  type leftovers,
  type LogMarker,
  type PathFinding,
  type ReplicaRequest,
  type Window,
} from './chaos-checks.js';

export interface EvidenceInput {
  /** Times are shown relative to this (ms since the epoch). */
  t0: number;
  settled: boolean;
  settleTimeoutMs: number;
  /** Deleted Deployments still in the API (`namespace/name`). */
  stillThere: readonly string[];
  observations: readonly LeaseObservation[];
  held: Map<string, Window[]>;
  markers: Map<string, LogMarker[]>;
  judgedByLeaseOnly: readonly string[];
  byNonHolders: readonly ReplicaRequest[];
  paths: ReturnType<typeof checkPaths>;
  left: ReturnType<typeof leftovers>;
  landed: readonly LandedWrite[];
  replay: BucketReplay;
  bucket: { rate: number; burst: number; toleranceMs: number };
  requestsAtRest: number;
  quietWindowMs: number;
  leaks: ReturnType<typeof canaryLeaks>;
}

const MAX_LINES = 40;
const MAX_LINE = 400;
const EXAMPLES = 6;

export function chaosEvidence(input: EvidenceInput): string[] {
  const { held, observations } = input;
  const rel = (at: number) => `${((at - input.t0) / 1000).toFixed(2)}s`;
  const lines: string[] = [];
  const add = (line: string) => lines.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
  const section = <T>(title: string, items: readonly T[], format: (item: T) => string) => {
    if (!items.length) return;
    add(`${title}: ${items.length}`);
    for (const item of items.slice(0, EXAMPLES)) add(`  ${format(item)}`);
    if (items.length > EXAMPLES) add(`  … and ${items.length - EXAMPLES} more`);
  };
  const holding = (identity: string, at: number) => (held.get(identity) ?? []).some((w) => w.from <= at && at < w.to);
  const holderAt = (at: number) => [...observations].reverse().find((o) => o.at <= at)?.holder || 'nobody';
  const windowsText = (identity: string) => (held.get(identity) ?? []).map((w) => `[${rel(w.from)}, ${Number.isFinite(w.to) ? rel(w.to) : 'end'})`).join(' ') || 'never';
  const writeText = (w: LandedWrite) => `${w.ref ? `value #${w.ref.index + 1}` : 'an unknown value'} by ${w.identity} at ${rel(w.at)}${holding(w.identity, w.at) ? '' : ' (NOT holding the Lease)'}`;
  const findingText = (f: PathFinding) =>
    `${f.path}: holds ${f.holds < 0 ? 'no value of its Secret' : `value #${f.holds + 1}`} of ${f.values} of ${f.secret}; ${f.versions} versions (allowed ${f.allowed}); last writes: ${f.writes.map(writeText).join('; ') || 'none seen'}`;
  const lastWritesAt = (path: string) => input.landed.filter((w) => w.path === path).slice(-3).map(writeText).join('; ') || 'no write seen';

  if (!input.settled) add(`the system did not settle within ${input.settleTimeoutMs / 1000} s after the workload stopped`);
  section('Deployments deleted but still there (the finalizer was not released)', input.stillThere, (d) => d);
  if (input.byNonHolders.length) {
    // Per replica first (how much, when, what it said of itself), then the Lease's history, then examples.
    for (const identity of [...new Set(input.byNonHolders.map((r) => r.identity))].sort()) {
      const mine = input.byNonHolders.filter((r) => r.identity === identity);
      const writes = mine.filter(isKvWrite);
      const applied = writes.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300);
      const said = (input.markers.get(identity) ?? []).map((m) => `${m.event} at ${rel(m.at)}`).join(', ');
      add(`${identity} sent ${mine.length} requests without holding the Lease, from ${rel(mine[0].at)} to ${rel(mine[mine.length - 1].at)}: ${writes.length} KV writes, ${applied.length} applied by Vault; it held the Lease in ${windowsText(identity)}; its own account: ${said || 'nothing'}`);
    }
    const history = observations.filter((o, i) => o.holder !== observations[i - 1]?.holder);
    add(`the Lease: ${history.slice(0, 12).map((o) => `${o.holder || 'nobody'} from ${rel(o.acquireTime ?? o.at)}`).join(', ')}${history.length > 12 ? ', …' : ''}`);
  }
  section('requests by a replica not holding the Lease (writes first)', [...input.byNonHolders.filter(isKvWrite), ...input.byNonHolders.filter((r) => !isKvWrite(r))], (r) =>
    `${r.method} ${r.path} by ${r.identity} at ${rel(r.at)} (${r.outcome}${r.status ? ` ${r.status}` : ''}; the Lease was last seen held by ${holderAt(r.at)})`,
  );
  section('live paths not holding the latest value of their Secret', input.paths.stale, findingText);
  section('stale values that landed after a newer one', input.paths.regressions, (r) => `${r.path}: ${writeText(r.write)} after ${writeText(r.after)}`);
  section('paths with more KV versions than values they should have received', input.paths.excess, findingText);
  section('left in Vault after their Deployment was deleted', input.left.deleted, (p) => `${p}: ${lastWritesAt(p)}`);
  section('left in Vault after their Deployment moved to another path', input.left.moved, (p) => `${p}: ${lastWritesAt(p)}`);
  section('keys in Vault the ledger never asked for', input.left.unknown, (p) => p);
  section('live paths without the ownership marks', input.paths.unmarked, (p) => p);
  const { replay, bucket } = input;
  if (replay.rejected) {
    add(`the merged audit log exceeds one ${bucket.rate}/s burst-${bucket.burst} bucket (tolerance ${bucket.toleranceMs} ms): ${replay.rejected} of ${replay.requests} requests over; busiest second ${replay.busiestSecond}; first over at ${replay.firstRejected.map(rel).join(', ')}`);
  }
  if (input.requestsAtRest) add(`${input.requestsAtRest} requests in the ${input.quietWindowMs / 1000} s quiet window after settling`);
  section('values found where they must never be', input.leaks.found, (l) => `${l.where}: ${l.count} (…${l.sample}…)`);
  if (input.judgedByLeaseOnly.length) add(`no acquisition found in the logs of ${input.judgedByLeaseOnly.join(', ')}: judged by the Lease alone`);
  if (lines.length > MAX_LINES) {
    const cut = lines.length - (MAX_LINES - 1);
    lines.splice(MAX_LINES - 1, cut, `… ${cut} more lines`);
  }
  return lines;
}
