// Pure: a source's own custom_metadata (vault-sync.io/custom-metadata) and its update policy
// (vault-sync.io/update-policy), as the decisions read them. A bad value of either is reported by
// annotation-check.ts (InvalidAnnotation) and read here as that module's `meanwhile` says.
import { createHash } from 'node:crypto';
import { UPDATE_POLICY_READ_ON_BAD_VALUE, UPDATE_POLICY_WORDS, parseWord } from '../kube/annotation-rules.js';
import { Annotations } from '../kube/annotations.js';
import { CUSTOM_METADATA_LIMITS, parseCustomMetadata } from '../kube/custom-metadata.js';
import { compareUtf8 } from '../vault/path-order.js';

export const NO_USER_METADATA: ReadonlyMap<string, string> = new Map();

/**
 * The keys and values written beside the marks. A bad value is ignored as a whole (the Warning says so): the
 * data still syncs, with the marks only. No half of a refused object is written: which half was meant is a guess.
 */
export function userMetadataOf(annotations: Readonly<Record<string, string>>): ReadonlyMap<string, string> {
  const value = annotations[Annotations.customMetadata];
  if (value === undefined) return NO_USER_METADATA;
  const parsed = parseCustomMetadata(value);
  return parsed.ok ? parsed.metadata : NO_USER_METADATA;
}

/**
 * What the record keeps of the user metadata written with a path's marks: a hash of its keys and values in key
 * order (the order written in the annotation does not matter to Vault). Undefined for none, so records written
 * before this annotation existed, and sources without it, compare equal.
 */
export function userMetadataHash(metadata: ReadonlyMap<string, string>): string | undefined {
  if (metadata.size === 0) return undefined;
  const sorted = [...metadata].sort(([a], [b]) => compareUtf8(a, b));
  return `sha256:${createHash('sha256').update(JSON.stringify(sorted)).digest('hex')}`;
}

/**
 * The custom_metadata one marks write sends: the user's keys, then the marks (which no user key may name:
 * parseCustomMetadata refuses them). `userDropped`: the marks alone already fill Vault's 64 keys (an adoption
 * that keeps many `previous-` keys); the marks are what ownership needs, so they go without the user's keys.
 */
export function composeCustomMetadata(marks: Record<string, string>, user: ReadonlyMap<string, string>): { customMetadata: Record<string, string>; userDropped: boolean } {
  if (user.size === 0) return { customMetadata: marks, userDropped: false };
  if (Object.keys(marks).length + user.size > CUSTOM_METADATA_LIMITS.vaultKeys) return { customMetadata: marks, userDropped: true };
  // Object.fromEntries and spread define own properties: a key such as `__proto__` is kept as a key (an
  // assignment would set the prototype instead, and drop it).
  return { customMetadata: { ...Object.fromEntries(user), ...marks }, userDropped: false };
}

/** Did the user's keys change in Vault out of band (one missing, or another value)? Keys added there are not ours to judge. */
export function userMetadataDrifted(user: ReadonlyMap<string, string>, actual: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of user) if (!Object.hasOwn(actual, key) || actual[key] !== value) return true;
  return false;
}

export type UpdatePolicy = 'Replace' | 'IfNotExists';

/** `Replace` when absent; a bad value is read as IfNotExists (annotation-rules.ts says why). */
export function updatePolicyOf(annotations: Readonly<Record<string, string>>): UpdatePolicy {
  const value = annotations[Annotations.updatePolicy];
  if (value === undefined) return 'Replace';
  const word = parseWord(value, UPDATE_POLICY_WORDS) ?? UPDATE_POLICY_READ_ON_BAD_VALUE;
  return word === 'ifnotexists' ? 'IfNotExists' : 'Replace';
}
