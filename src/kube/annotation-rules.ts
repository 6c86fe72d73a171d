// The operator's verdict on each vault-sync.io annotation value, in one place, and the rules behind it as
// data. scripts/gen-admission-policy.ts turns the data into the CEL of the chart's ValidatingAdmissionPolicy;
// the e2e test test/e2e/admission-policy.test.ts checks that the real apiserver's verdict equals
// annotationProblem() for a corpus of values, so the policy and the operator cannot drift apart.
import { parseDurationMs } from '../config.js';
import { checkTenancy } from '../vault/tenancy.js';
import { parseVaultPath } from '../vault/path.js';
import { Annotations, ANNOTATION_PREFIX } from './annotations.js';
import { parseCustomMetadata } from './custom-metadata.js';

export { ANNOTATION_PREFIX };

/** Every annotation the operator reads (a key under ANNOTATION_PREFIX that is not one of these is unknown). */
export const KNOWN_ANNOTATIONS: readonly string[] = Object.values(Annotations);

/**
 * Annotations whose value is a switch: "true" or "false", in any case, with surrounding whitespace. Any other
 * value (`yes`, `1`, `ture`) is not what its user meant: the operator reports it (InvalidAnnotation) and reads
 * it as SWITCH_READ_ON_BAD_VALUE says.
 */
export const BOOLEAN_ANNOTATIONS: readonly string[] = switches(['preserveOnDelete', 'suspend', 'adopt']);
export const BOOLEAN_WORDS: readonly string[] = ['true', 'false'];

/**
 * How the operator reads a bad switch value: the safe side of each. `preserve-on-delete` guards deletion, so a
 * value that is not a clear "false" keeps the Vault data; `adopt` on would take over unmarked paths, so it
 * stays off; `suspend` off keeps syncing, as before. The admission policy's messages say the same.
 */
export const SWITCH_READ_ON_BAD_VALUE: Readonly<Record<string, 'true' | 'false'>> = {
  [Annotations.preserveOnDelete]: 'true',
  [Annotations.suspend]: 'false',
  [Annotations.adopt]: 'false',
};

/** The switches of the contract that exist (`adopt` arrives with the adoption work; listed here ahead of it). */
function switches(names: readonly string[]): string[] {
  const contract: Readonly<Record<string, string>> = Annotations;
  return names.flatMap((name) => (contract[name] === undefined ? [] : [contract[name]]));
}

/**
 * How the policy judges each annotation of the contract; a new annotation without a rule here fails the unit
 * test (test/unit/admission-policy.test.ts), so that it is not silently reported as unknown.
 */
export function ruleOf(key: string): 'path' | 'switch' | 'rotation-check' | 'update-policy' | 'duration' | 'custom-metadata' | 'left to the operator' | undefined {
  if (key === Annotations.path) return 'path';
  if (BOOLEAN_ANNOTATIONS.includes(key)) return 'switch';
  if (key === Annotations.rotationCheck) return 'rotation-check';
  if (key === Annotations.updatePolicy) return 'update-policy';
  if (key === Annotations.customMetadata) return 'custom-metadata';
  if (key === Annotations.reconcile) return 'duration';
  if (key === Annotations.secrets || key === Annotations.forceSync) return 'left to the operator';
  return undefined;
}

/** `vault-sync.io/rotation-check`: the operator turns change detection off on `disabled` (trimmed, any case). */
export const ROTATION_CHECK_WORDS: readonly string[] = ['enabled', 'disabled'];

/**
 * `vault-sync.io/update-policy` (trimmed, any case), as External Secrets' PushSecret spells them: `Replace`
 * writes every change, `IfNotExists` writes a path only when it has no live version.
 */
export const UPDATE_POLICY_WORDS: readonly string[] = ['replace', 'ifnotexists'];
/**
 * A bad update-policy is read as `IfNotExists`: the side that never overwrites what is in Vault (a typo of
 * IfNotExists read as Replace would overwrite a credential that Vault-side rotation owns).
 */
export const UPDATE_POLICY_READ_ON_BAD_VALUE = 'ifnotexists';

/**
 * `vault-sync.io/reconcile` as parseDurationMs (src/config.ts) reads it, after String.prototype.trim():
 * a decimal number and one unit. The unit test checks this against parseDurationMs itself.
 */
export const DURATION_GRAMMAR = { number: '[0-9]+(?:\\.[0-9]+)?', units: ['ms', 's', 'm', 'h'] } as const;

/**
 * The code points String.prototype.trim() removes (ECMAScript WhiteSpace and LineTerminator), as
 * inclusive ranges. The operator trims switch, word and duration values with it; the policy must strip
 * exactly these. The unit test checks the list against trim() over every code point.
 */
export const JS_TRIM_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029],
  [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff],
];

/**
 * Longest switch, word or duration value the policy judges: its regex costs in proportion to the value's length,
 * and the apiserver aborts a CEL evaluation beyond its cost limit (measured: 200 KiB of whitespace around `5m`).
 * A longer value is reported as too long; the only values this refuses that the operator's parsers would read are
 * valid ones padded with more than a thousand whitespace characters.
 */
export const MAX_SHORT_VALUE_LENGTH = 1024;

/** What the policy needs to know of the operator's configuration (the chart passes the same values to both). */
export interface AnnotationContext {
  namespace: string;
  allowedMounts: readonly string[];
  /** TENANT_PATH_TEMPLATE; undefined = "none" (no default restriction). */
  tenantPathTemplate: string | undefined;
}

/** One of the words (trimmed, any case), or undefined: how the operator compares switch and word values. */
export function parseWord(value: string, words: readonly string[]): string | undefined {
  const word = value.trim().toLowerCase();
  return words.includes(word) ? word : undefined;
}

/**
 * Why the operator would not read this value as meant, or undefined when it would. The path is judged on
 * its own (grammar, KV mount) and against the namespace's default tenant prefix; VaultSyncPolicy grants
 * are not visible to an admission policy, so the tenancy verdict is the default prefix's only.
 * `vault-sync.io/secrets` (JSON) and `vault-sync.io/force-sync` (any token) are not judged here.
 */
export function annotationProblem(key: string, value: string, context: AnnotationContext): string | undefined {
  if (!key.startsWith(ANNOTATION_PREFIX)) return undefined;
  const rule = ruleOf(key);
  switch (rule) {
    case undefined:
      return `unknown annotation (known: ${KNOWN_ANNOTATIONS.join(', ')})`;
    case 'path': {
      const parsed = parseVaultPath(value, context.allowedMounts);
      if (!parsed.ok) return parsed.reason;
      const tenancy = checkTenancy(parsed.path, context.namespace, context.tenantPathTemplate, []);
      return tenancy.ok ? undefined : tenancy.reason;
    }
    case 'switch':
    case 'rotation-check':
    case 'update-policy':
    case 'duration':
      if ([...value].length > MAX_SHORT_VALUE_LENGTH) return `is longer than ${MAX_SHORT_VALUE_LENGTH} characters`;
      return shortValueProblem(rule, value);
    case 'custom-metadata': {
      const parsed = parseCustomMetadata(value);
      return parsed.ok ? undefined : parsed.problem;
    }
    case 'left to the operator':
      return undefined;
  }
}

function shortValueProblem(rule: 'switch' | 'rotation-check' | 'update-policy' | 'duration', value: string): string | undefined {
  switch (rule) {
    case 'switch':
      return parseWord(value, BOOLEAN_WORDS) === undefined ? 'must be "true" or "false"' : undefined;
    case 'rotation-check':
      return parseWord(value, ROTATION_CHECK_WORDS) === undefined ? 'must be "enabled" or "disabled"' : undefined;
    case 'update-policy':
      return parseWord(value, UPDATE_POLICY_WORDS) === undefined ? 'must be "Replace" or "IfNotExists"' : undefined;
    case 'duration':
      return parseDurationMs(value) === undefined ? 'must be a duration like 30s, 5m or 1h' : undefined;
  }
}
