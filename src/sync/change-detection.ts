import { createHash } from 'node:crypto';
import { parseDurationMs } from '../config.js';
import type { KvMetadata } from '../vault/port.js';
import type { Target } from './desired.js';
import type { SyncedEntry } from './plan.js';

/**
 * Pure pieces of "has anything changed?", shared by the reconciler and `plan` so both answer the same way.
 */

export const MIN_DRIFT_PERIOD_MS = 1_000; // the rate limiter protects Vault; this only stops a busy loop

/**
 * Hash of every input of the desired state; the force-sync token is appended so a new one is visible. `extras`:
 * inputs beyond the targets and the Secrets (the user custom_metadata, a non-default update policy), each a
 * string; none for a source without them, so its fingerprint is the one recorded before they existed.
 */
export function inputFingerprint(targets: Target[], secretNames: string[], dataHashOf: (secretName: string) => string | undefined, forceToken: string | undefined, extras: readonly string[] = []): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(targets));
  for (const secretName of secretNames) hash.update(`\0${secretName}\0${dataHashOf(secretName) ?? 'absent'}`);
  for (const extra of extras) hash.update(`\0\0${extra}`);
  return hash.digest('hex') + (forceToken !== undefined ? `:${forceToken}` : '');
}

/** A force-sync token that has not been honoured yet (a first sync needs no forcing). */
export function forceRequested(forceToken: string | undefined, previousFingerprint: string | undefined): boolean {
  return forceToken !== undefined && previousFingerprint !== undefined && !previousFingerprint.endsWith(`:${forceToken}`);
}

/** The `vault-sync.io/reconcile` period; undefined = no drift checks (absent or not a duration). */
export function driftPeriodMs(annotation: string | undefined): number | undefined {
  if (annotation === undefined) return undefined;
  const ms = parseDurationMs(annotation);
  return ms === undefined ? undefined : Math.max(ms, MIN_DRIFT_PERIOD_MS);
}

/**
 * The source's place in its drift period: a stable offset from its key (a hash, not a random draw), so that the
 * drift checks of many sources sharing a period are spread over it and stay spread after a restart, instead of
 * all firing together. The key is the source key, or its drift root's (drift-root.ts driftPhaseKey) where one
 * shared scan serves every source below the root: those fall due together on purpose.
 */
export function driftPhaseMs(sourceKey: string, periodMs: number): number {
  const hash = createHash('sha256').update(sourceKey).digest();
  return hash.readUIntBE(0, 6) % Math.max(1, Math.floor(periodMs));
}

/**
 * Pure: milliseconds until the source's next drift check is due (<= 0: due now). Checks fall on the source's
 * own slots (its phase + whole periods); the next one is the first slot after the last check, so two checks are
 * never more than one period apart (an out-of-band change is found within one period) and never bunched.
 */
export function driftDueInMs(sourceKey: string, periodMs: number, lastCheckMs: number | undefined, nowMs: number): number {
  if (lastCheckMs === undefined || !Number.isFinite(lastCheckMs)) return 0;
  const phase = driftPhaseMs(sourceKey, periodMs);
  const sinceSlot = (((lastCheckMs - phase) % periodMs) + periodMs) % periodMs; // how far past its slot the last check was
  const nextSlot = lastCheckMs - sinceSlot + periodMs;
  return nextSlot - nowMs;
}

/**
 * Did a path change in Vault out of band since it was synced (one metadata read, no data read)? `createOnce`
 * (update-policy IfNotExists): only a path with no live version left counts; new versions are Vault's own.
 */
export function hasDrifted(entry: SyncedEntry, metadata: KvMetadata | undefined, contentHashInMetadata: boolean, createOnce = false): boolean {
  if (!metadata || metadata.currentVersionDeleted) return true;
  if (createOnce) return false;
  if (metadata.currentVersion !== entry.version) return true;
  return contentHashInMetadata && metadata.customMetadata['content-hash'] !== entry.hash;
}
