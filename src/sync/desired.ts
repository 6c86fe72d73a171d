import type { V1PodSpec } from '@kubernetes/client-node';
import { Annotations } from '../kube/annotations.js';
import { referencedSecrets } from '../kube/references.js';
import { InputLimits } from '../vault/path-grammar.js';
import { childPath, formatPath, parseVaultPath, quoteForMessage, type KvPath } from '../vault/path.js';
import { sortedByPath, sortedTexts } from '../vault/path-order.js';
import { permits, type RequestScope } from '../vault/scope.js';

/** The annotated object a sync is for: a Deployment or a Secret. Its key is `Kind/namespace/name`. */
export interface SyncSource {
  kind: 'Deployment' | 'Secret';
  namespace: string;
  name: string;
  uid: string;
  annotations: Record<string, string>;
  /** The pod template's spec; Deployments only. */
  podSpec?: V1PodSpec;
}

/** Which keys of one Secret go into a target, and under which prefix. */
export interface SecretSelection {
  secretName: string;
  /** Undefined: every key of the Secret. */
  keys?: string[];
  prefix: string;
  /** A missing optional Secret is skipped, not an error. */
  optional: boolean;
}

/** One Vault write: a path and the Secrets merged into it. */
export interface Target {
  path: KvPath;
  selections: SecretSelection[];
}

export type Problem = { code: ProblemCode; message: string };
export type ProblemCode =
  | 'InvalidPath'
  | 'InvalidSecretsAnnotation'
  | 'SecretNotFound'
  | 'KeyNotFound'
  | 'KeyConflict'
  | 'TooLarge'
  | 'TooManySecrets'
  | 'TooManyKeys';

export type SpecResult = { ok: true; targets: Target[] } | { ok: false; problem: Problem };

export interface SpecOptions {
  allowedMounts: readonly string[];
  /** Secrets one source may sync, listed or used by its pod template (--max-secrets-per-source). */
  maxSecretsPerSource: number;
  /** Keys one Vault write may hold (--max-keys-per-path, or the detected server's default). */
  maxKeysPerPath: number;
}

/**
 * Pure: which Vault paths a source writes and which Secrets feed each, from its annotations
 * (and, for a Deployment without `vault-sync.io/secrets`, the Secrets its pod template uses).
 */
export function deriveTargets(source: SyncSource, options: SpecOptions): SpecResult {
  const parsed = parseVaultPath(source.annotations[Annotations.path], options.allowedMounts);
  if (!parsed.ok) return { ok: false, problem: { code: 'InvalidPath', message: `${Annotations.path}: ${parsed.reason}` } };
  const base = parsed.path;

  const listed = source.annotations[Annotations.secrets];
  if (listed !== undefined && listed.trim() !== '') {
    const selections = parseSecretsAnnotation(listed, options.maxSecretsPerSource, options.maxKeysPerPath);
    if (!selections.ok && selections.tooMany) return { ok: false, problem: { code: 'TooManySecrets', message: `${Annotations.secrets}: ${selections.reason}` } };
    if (!selections.ok) return { ok: false, problem: { code: 'InvalidSecretsAnnotation', message: `${Annotations.secrets}: ${selections.reason}` } };
    return { ok: true, targets: [{ path: base, selections: selections.value }] };
  }

  if (source.kind === 'Secret') {
    return { ok: true, targets: [{ path: base, selections: [{ secretName: source.name, prefix: '', optional: false }] }] };
  }

  const references = referencedSecrets(source.podSpec);
  if (references.length > options.maxSecretsPerSource) {
    return { ok: false, problem: { code: 'TooManySecrets', message: `the pod template uses ${references.length} Secrets, more than the ${options.maxSecretsPerSource} one source may sync (the operator's --max-secrets-per-source); list the ones to sync in ${Annotations.secrets}` } };
  }
  const targets: Target[] = [];
  for (const ref of references) {
    const path = childPath(base, ref.name);
    if (!path.ok) return { ok: false, problem: { code: 'InvalidPath', message: `${Annotations.path}: ${path.reason}` } };
    targets.push({ path: path.path, selections: [{ secretName: ref.name, prefix: '', optional: ref.optional }] });
  }
  return { ok: true, targets };
}

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string; tooMany?: boolean };

/** A Secret's key name, as Kubernetes allows it (so a listed key that could never exist is refused early). */
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * `[{"name":"db","keys":["user","pass"],"prefix":"db_"}]`; names the first thing wrong. An item's `keys` are
 * bounded by what one Vault write may hold (more could never be written).
 */
export function parseSecretsAnnotation(text: string, maxSecretsPerSource: number, maxKeysPerPath: number): Parsed<SecretSelection[]> {
  if (text.length > InputLimits.maxSecretsAnnotationLength) {
    return { ok: false, tooMany: true, reason: `is ${text.length} characters long, more than the ${InputLimits.maxSecretsAnnotationLength} allowed` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the input; the input is not secret, but keep messages uniform and short.
    return { ok: false, reason: 'is not valid JSON (expected a list like [{"name":"db","keys":["user"],"prefix":"db_"}])' };
  }
  if (!Array.isArray(json)) return { ok: false, reason: 'must be a JSON list of {name, keys?, prefix?}' };
  if (json.length === 0) return { ok: false, reason: 'lists no Secrets' };
  if (json.length > maxSecretsPerSource) {
    return { ok: false, tooMany: true, reason: `lists ${json.length} Secrets, more than the ${maxSecretsPerSource} one source may sync (the operator's --max-secrets-per-source)` };
  }
  const seen = new Set<string>();
  const selections: SecretSelection[] = [];
  for (const [i, item] of json.entries()) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { ok: false, reason: `item ${i} must be an object` };
    const { name, keys, prefix, optional } = item as Record<string, unknown>;
    if (typeof name !== 'string' || name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
      return { ok: false, reason: `item ${i}: "name" must be a Secret name` };
    }
    if (keys !== undefined && (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string' && k !== ''))) {
      return { ok: false, reason: `item ${i} (${name}): "keys" must be a non-empty list of key names` };
    }
    if (keys !== undefined && keys.length > maxKeysPerPath) {
      return { ok: false, tooMany: true, reason: `item ${i} (${name}): "keys" lists ${keys.length} keys, more than the ${maxKeysPerPath} one Vault write may hold (the operator's --max-keys-per-path)` };
    }
    const badKey = (keys as string[] | undefined)?.find((k) => k.length > InputLimits.maxKeyNameLength || !SECRET_KEY.test(k));
    if (badKey !== undefined) return { ok: false, reason: `item ${i} (${name}): ${quoteForMessage(badKey)} is not a Secret key name (letters, digits, "-", "_", "." up to ${InputLimits.maxKeyNameLength})` };
    if (prefix !== undefined && typeof prefix !== 'string') return { ok: false, reason: `item ${i} (${name}): "prefix" must be a string` };
    if (typeof prefix === 'string' && prefix.length > InputLimits.maxKeyNameLength) return { ok: false, reason: `item ${i} (${name}): "prefix" is longer than ${InputLimits.maxKeyNameLength} characters` };
    if (optional !== undefined && typeof optional !== 'boolean') return { ok: false, reason: `item ${i} (${name}): "optional" must be true or false` };
    const identity = `${name}\0${(prefix as string | undefined) ?? ''}`;
    if (seen.has(identity)) return { ok: false, reason: `item ${i} (${name}) lists the same Secret with the same prefix again` };
    seen.add(identity);
    selections.push({ secretName: name, keys: keys as string[] | undefined, prefix: (prefix as string | undefined) ?? '', optional: optional === true });
  }
  return { ok: true, value: selections };
}

/** The data that lands at one path. Values are UTF-8 text, or base64 for keys listed in binaryKeys. */
export interface DesiredEntry {
  path: KvPath;
  /** Key names are user input: a Map, so `__proto__` or `constructor` is a key like any other. */
  data: ReadonlyMap<string, string>;
  binaryKeys: string[];
  /** Secrets that fed this entry, for messages and the Secret→source index. */
  secretNames: string[];
  /** Payload bytes (keys + values as they will be sent), for size limits and metrics. */
  sizeBytes: number;
}

export type MaterializeResult = { ok: true; entries: DesiredEntry[] } | { ok: false; problems: Problem[] };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Pure: the entries to write, from the targets and the Secrets' raw bytes (undefined = the Secret
 * does not exist). Every problem is reported with object and key names only, never values.
 */
export function materialize(
  targets: Target[],
  secrets: ReadonlyMap<string, ReadonlyMap<string, Uint8Array> | undefined>,
  limits: { maxEntryBytes: number; maxKeysPerPath: number },
): MaterializeResult {
  const maxKeys = limits.maxKeysPerPath;
  const entries: DesiredEntry[] = [];
  const problems: Problem[] = [];
  for (const target of targets) {
    const data = new Map<string, string>();
    const writtenBy = new Map<string, string>();
    const binaryKeys: string[] = [];
    const secretNames: string[] = [];
    let sizeBytes = 0;
    for (const selection of target.selections) {
      const secret = secrets.get(selection.secretName);
      if (secret === undefined) {
        if (!selection.optional) problems.push({ code: 'SecretNotFound', message: `Secret "${selection.secretName}" does not exist` });
        continue;
      }
      secretNames.push(selection.secretName);
      const keys = selection.keys ?? [...secret.keys()].sort();
      for (const key of keys) {
        const bytes = secret.get(key);
        if (bytes === undefined) {
          problems.push({ code: 'KeyNotFound', message: `Secret "${selection.secretName}" has no key ${quoteForMessage(key)}` });
          continue;
        }
        const outKey = selection.prefix + key;
        const earlier = writtenBy.get(outKey);
        if (earlier !== undefined) {
          problems.push({
            code: 'KeyConflict',
            message: `key ${quoteForMessage(outKey)} at ${formatPath(target.path)} would be written by both Secret "${earlier}" and Secret "${selection.secretName}"`,
          });
          continue;
        }
        writtenBy.set(outKey, selection.secretName);
        let value = decodeUtf8(bytes);
        if (value === undefined) {
          value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
          binaryKeys.push(outKey);
        }
        data.set(outKey, value);
        sizeBytes += Buffer.byteLength(outKey) + Buffer.byteLength(value);
      }
    }
    if (secretNames.length === 0) continue; // every Secret of this target is optional and absent
    if (data.size > maxKeys) {
      problems.push({
        code: 'TooManyKeys',
        message: `the data for ${formatPath(target.path)} has ${data.size} keys, more than the ${maxKeys} one Vault write may hold (the operator's --max-keys-per-path)`,
      });
      continue;
    }
    if (sizeBytes > limits.maxEntryBytes) {
      problems.push({
        code: 'TooLarge',
        message: `the data for ${formatPath(target.path)} is ${sizeBytes} bytes, over the limit of ${limits.maxEntryBytes} bytes`,
      });
      continue;
    }
    entries.push({ path: target.path, data, binaryKeys: binaryKeys.sort(), secretNames, sizeBytes });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, entries };
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * One message for many problems, sorted (byte order) and bounded: the first few in full, then how many more.
 * The problems name objects and keys only (never values); a key name is user input, so each is quoted
 * bounded and escaped.
 */
export function describeProblems(problems: readonly Problem[], shown = 5): string {
  const head = sortedTexts(problems.map((p) => p.message)).slice(0, shown).join('; ');
  return problems.length > shown ? `${head}; …and ${problems.length - shown} more` : head;
}

/** The paths cleanup may touch (inside the source's grant) and those it must not, each sorted and once. */
export interface SourcePaths {
  inside: KvPath[];
  /** Recorded or derived, but outside the grant (re-pointed elsewhere, a tampered record, a grant withdrawn). */
  outside: KvPath[];
}

/**
 * Pure: the paths a source may have written, for cleanup: those its record names, and (a record may be lost)
 * those its annotations derive now; split by its scope, since neither the annotation (re-pointed at another
 * tenant's prefix) nor the record (its status is writable) is proof that the path is the source's.
 */
export function pathsOfSource(recorded: readonly { path: KvPath }[], source: SyncSource, options: SpecOptions & { scope: RequestScope }): SourcePaths {
  const paths = new Map<string, KvPath>();
  for (const entry of recorded) paths.set(formatPath(entry.path), entry.path);
  const derived = deriveTargets(source, options);
  if (derived.ok) for (const target of derived.targets) paths.set(formatPath(target.path), target.path);
  const sorted = sortedByPath([...paths], ([text]) => text).map(([, path]) => path);
  return { inside: sorted.filter((path) => permits(options.scope, path)), outside: sorted.filter((path) => !permits(options.scope, path)) };
}

/** Every Secret name a set of targets reads: what the Secret→source index is built from. */
export function secretNamesOf(targets: Target[]): string[] {
  return [...new Set(targets.flatMap((t) => t.selections.map((s) => s.secretName)))].sort();
}
