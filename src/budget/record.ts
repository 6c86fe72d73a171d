import type { Share } from './allocation.js';

/**
 * The installation's budget as it is published: one JSON annotation on one object (the budget Lease), written
 * with optimistic concurrency on its resourceVersion. Every holder's entry is in the same object, so every
 * write is checked against the latest shares of everybody: the sum of the published shares is a property of
 * one version of one object, which a compare-and-swap proves (annotations on the shard Leases would need a
 * transaction across objects that Kubernetes does not have).
 *
 * An entry is written only by its holder, except that another holder removes it once it has lapsed (not
 * renewed for the reclaim time, as observed on that holder's own clock).
 */
export const BUDGET_ANNOTATION = 'vault-sync.io/budget';
export const RECORD_VERSION = 1;
/** Entries one record may hold: every shard's holder plus as many lapsed ones (256 shards at most). */
export const MAX_ENTRIES = 512;
/** Identities are pod names (or host names): the object-name bound. */
export const MAX_IDENTITY_LENGTH = 253;
/** The serialized record must stay well under the 256 KiB annotations limit. */
export const MAX_RECORD_BYTES = 128 * 1024;
/** Bounds the numbers a record may carry (a demand above it is published as this). */
export const MAX_DEMAND = 1_000_000_000;

export interface BudgetEntry extends Share {
  /** Queued Vault operations of this holder when it wrote the entry. */
  demand: number;
  /** Incremented at each write by the holder: what others watch to see that it is renewed. */
  seq: number;
}

export interface BudgetRecord {
  /** By holder identity. */
  entries: Map<string, BudgetEntry>;
}

export class InvalidBudgetRecord extends Error {
  override readonly name = 'InvalidBudgetRecord';
}

export const emptyRecord = (): BudgetRecord => ({ entries: new Map() });

const isCount = (n: unknown, max: number): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max;
const isRate = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 1e9;

/** Parses the annotation's text (absent = empty); throws InvalidBudgetRecord with what is wrong (never echoing the text). */
export function parseRecord(text: string | undefined): BudgetRecord {
  if (text === undefined || text === '') return emptyRecord();
  if (text.length > MAX_RECORD_BYTES) throw new InvalidBudgetRecord(`the record is ${text.length} bytes, above ${MAX_RECORD_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InvalidBudgetRecord('the record is not JSON');
  }
  const object = raw as { version?: unknown; entries?: unknown };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidBudgetRecord('the record is not a JSON object');
  if (object.version !== RECORD_VERSION) throw new InvalidBudgetRecord(`unknown record version (expected ${RECORD_VERSION})`);
  if (typeof object.entries !== 'object' || object.entries === null || Array.isArray(object.entries)) throw new InvalidBudgetRecord('"entries" is not an object');
  const pairs = Object.entries(object.entries as Record<string, unknown>);
  if (pairs.length > MAX_ENTRIES) throw new InvalidBudgetRecord(`${pairs.length} entries, above ${MAX_ENTRIES}`);
  const entries = new Map<string, BudgetEntry>();
  for (const [identity, value] of pairs) {
    if (identity.length === 0 || identity.length > MAX_IDENTITY_LENGTH) throw new InvalidBudgetRecord(`an identity of ${identity.length} characters (1 to ${MAX_IDENTITY_LENGTH})`);
    const e = value as Partial<BudgetEntry>;
    if (typeof value !== 'object' || value === null || !isRate(e.rate) || !isCount(e.burst, 1e9) || !isCount(e.demand, MAX_DEMAND) || !isCount(e.seq, Number.MAX_SAFE_INTEGER)) {
      throw new InvalidBudgetRecord(`the entry of holder ${JSON.stringify(identity.slice(0, 64))} is not {rate, burst, demand, seq} with non-negative numbers`);
    }
    entries.set(identity, { rate: e.rate, burst: e.burst, demand: e.demand, seq: e.seq });
  }
  return { entries };
}

/** The annotation's text: entries sorted by identity (the same record always reads the same). */
export function serializeRecord(record: BudgetRecord): string {
  // fromEntries defines own properties: an identity such as "__proto__" stays a plain key.
  const entries = Object.fromEntries(
    [...record.entries.keys()].sort().map((identity) => {
      const e = record.entries.get(identity)!;
      return [identity, { rate: e.rate, burst: e.burst, demand: e.demand, seq: e.seq }];
    }),
  );
  return JSON.stringify({ version: RECORD_VERSION, entries });
}

/** The sum of the published shares. */
export function publishedTotal(record: BudgetRecord, except?: string): Share {
  let rate = 0;
  let burst = 0;
  for (const [identity, e] of record.entries) {
    if (identity === except) continue;
    rate += e.rate;
    burst += e.burst;
  }
  return { rate, burst };
}
