// Writes helm/vault-sync-operator/files/admission-policy.generated.yaml: the CEL of the chart's
// ValidatingAdmissionPolicies, generated from the operator's own rules (the Vault path grammar of
// src/vault/path-grammar.ts, the switch/word/duration rules of src/kube/annotation-rules.ts), so the policy
// checks what the operator checks. `npm run gen:admission-policy` writes it; `-- --check` fails when the
// committed file differs (test/unit/admission-policy.test.ts does the same).
//
// CEL here is Kubernetes' (cel-go with the strings, lists and regex libraries): `matches` and `find` are RE2,
// whose syntax differs from JavaScript's, so character classes are written out as code points (\x{..}),
// and regexes are CEL raw strings (r'...'). Every expression is total (guards before indexing), because an
// evaluation error is decided by failurePolicy, not by the rule.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Annotations } from '../src/kube/annotations.js';
import {
  ANNOTATION_PREFIX,
  BOOLEAN_ANNOTATIONS,
  BOOLEAN_WORDS,
  DURATION_GRAMMAR,
  JS_TRIM_RANGES,
  KNOWN_ANNOTATIONS,
  MAX_SHORT_VALUE_LENGTH,
  ROTATION_CHECK_WORDS,
  SWITCH_READ_ON_BAD_VALUE,
  UPDATE_POLICY_WORDS,
} from '../src/kube/annotation-rules.js';
import { CUSTOM_METADATA_LIMITS, CUSTOM_METADATA_PROBLEMS, customMetadataGrammar } from '../src/kube/custom-metadata.js';
import { MARK_NAMES, MARK_PREFIXES } from '../src/vault/mark-keys.js';
import { VaultPathGrammar as G } from '../src/vault/path-grammar.js';

export const GENERATED_FILE = join('helm', 'vault-sync-operator', 'files', 'admission-policy.generated.yaml');

interface Validation {
  expression: string;
  message?: string;
  messageExpression?: string;
  reason: 'Invalid';
}

/** A code point in an RE2 class: letters and digits as themselves (readable), anything else as \x{..}. */
const hex = (codePoint: number) => (/^[A-Za-z0-9]$/.test(String.fromCodePoint(codePoint)) ? String.fromCodePoint(codePoint) : `\\x{${codePoint.toString(16)}}`);
/** An RE2 character class of inclusive code point ranges. */
const rangeClass = (ranges: ReadonlyArray<readonly [number, number]>, negated = false) =>
  `[${negated ? '^' : ''}${ranges.map(([from, to]) => (from === to ? hex(from) : `${hex(from)}-${hex(to)}`)).join('')}]`;
const charsClass = (chars: string, negated = false) => rangeClass([...chars].map((c) => [c.codePointAt(0)!, c.codePointAt(0)!] as const), negated);
const celString = (text: string) => {
  if (/[\\'\n\r]/.test(text) || /[^\x20-\x7e]/.test(text)) throw new Error(`not a plain CEL string literal: ${JSON.stringify(text)}`);
  return `'${text}'`;
};
const celRaw = (regex: string) => {
  if (regex.includes("'")) throw new Error(`a CEL raw string cannot hold a quote: ${regex}`);
  return `r'${regex}'`;
};
const celList = (items: readonly string[]) => `[${items.map(celString).join(', ')}]`;

/**
 * The code points whose JavaScript toLowerCase() is exactly this one letter: what `value.toLowerCase() ===
 * word` accepts, letter by letter (an RE2 (?i) would also accept case-folding look-alikes such as the long
 * s, which toLowerCase() keeps as they are).
 */
let lowerCaseSourcesMemo: Map<string, number[]> | undefined;
function lowerCaseSources(): Map<string, number[]> {
  if (lowerCaseSourcesMemo) return lowerCaseSourcesMemo;
  const sources = new Map<string, number[]>();
  for (let c = 0; c <= 0x10ffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const lower = String.fromCodePoint(c).toLowerCase();
    if ([...lower].length !== 1) continue;
    const list = sources.get(lower) ?? [];
    list.push(c);
    sources.set(lower, list);
  }
  lowerCaseSourcesMemo = sources;
  return sources;
}

/** An RE2 pattern accepting what `parseWord(value, words)` accepts: surrounding JS whitespace, any case. */
function wordPattern(words: readonly string[], sources: Map<string, number[]>): string {
  const letter = (l: string) => rangeClass((sources.get(l) ?? [l.codePointAt(0)!]).map((c) => [c, c] as const));
  const ws = `${rangeClass(JS_TRIM_RANGES)}*`;
  return `^${ws}(?:${words.map((w) => [...w].map(letter).join('')).join('|')})${ws}$`;
}

function durationPattern(): string {
  const ws = `${rangeClass(JS_TRIM_RANGES)}*`;
  return `^${ws}${DURATION_GRAMMAR.number}(?:${DURATION_GRAMMAR.units.join('|')})${ws}$`;
}

const has = (key: string) => `${celString(key)} in variables.annotations`;
const valueOf = (key: string) => `variables.annotations[${celString(key)}]`;

/**
 * Variables shared by both policies. The chart's template defines `kvMounts` (list of the KV mounts) and
 * `tenantPrefix` (the namespace's default prefix, `mount/key/…/`, or '' when tenancy is off) before these.
 */
function variables(): Array<{ name: string; expression: string }> {
  const trimmed = charsClass(G.trimmedCharacters, true);
  const path = Annotations.path;
  const reserved = celList(G.reservedAfterMount);
  const dataAfterMount = `(size(variables.pathSegments) >= 2 && variables.pathSegments[1] == ${celString(G.kvV2DataSegment)})`;
  return [
    { name: 'annotations', expression: 'object.metadata.annotations' },
    { name: 'hasPath', expression: has(path) },
    { name: 'pathRaw', expression: `variables.hasPath ? ${valueOf(path)} : ''` },
    // The value without the surrounding characters the parser tolerates (find: the leftmost-longest match).
    { name: 'pathTrimmed', expression: `variables.pathRaw.find(${celRaw(`${trimmed}(?s:.*${trimmed})?`)})` },
    { name: 'pathNotEmpty', expression: `variables.pathTrimmed != ''` },
    { name: 'pathNotTooLong', expression: `size(variables.pathTrimmed) <= ${G.maxPathLength}` },
    // Segments are looked at only when the length is in bounds: splitting a value of 200 KiB into 100,000
    // segments and matching each one takes the apiserver past its request timeout (measured). Too long, the
    // text is '' and the segment rules below are skipped (pathJudgeable); the length rule reports it.
    { name: 'pathJudgeable', expression: 'variables.pathNotEmpty && variables.pathNotTooLong' },
    {
      name: 'pathText',
      expression: G.trailingSlashTolerated
        ? `!variables.pathNotTooLong ? '' : variables.pathTrimmed.endsWith('/') ? variables.pathTrimmed.substring(0, size(variables.pathTrimmed) - 1) : variables.pathTrimmed`
        : `!variables.pathNotTooLong ? '' : variables.pathTrimmed`,
    },
    { name: 'pathSegments', expression: `variables.pathText.split('/')` },
    { name: 'pathShortEnough', expression: `variables.pathNotTooLong && size(variables.pathSegments) <= ${G.maxSegments}` },
    { name: 'pathRelative', expression: `!variables.pathTrimmed.startsWith('/')` },
    { name: 'pathNoEmptySegment', expression: `variables.pathSegments.all(s, s != '')` },
    { name: 'pathNoDotSegment', expression: `variables.pathSegments.all(s, !(s in ${celList(G.dotSegments)}))` },
    {
      name: 'pathSegmentsValid',
      expression: `variables.pathSegments.all(s, s == '' || (size(s) <= ${G.maxSegmentLength} && s.matches(${celRaw(G.segmentPattern)})))`,
    },
    { name: 'pathMountAllowed', expression: `variables.pathSegments[0] in variables.kvMounts` },
    { name: 'pathNotReserved', expression: `size(variables.pathSegments) < 2 || !(variables.pathSegments[1] in ${reserved})` },
    { name: 'pathHasKey', expression: `size(variables.pathSegments) > (${dataAfterMount} ? 2 : 1)` },
    {
      name: 'pathValid',
      expression: [
        'variables.pathNotEmpty', 'variables.pathShortEnough', 'variables.pathRelative', 'variables.pathNoEmptySegment',
        'variables.pathNoDotSegment', 'variables.pathSegmentsValid', 'variables.pathMountAllowed', 'variables.pathNotReserved', 'variables.pathHasKey',
      ].join(' && '),
    },
    // mount/key, without the KV v2 API segment: the path as the operator stores, checks and shows it.
    ...customMetadataVariables(),
    {
      name: 'pathCanonical',
      expression: `${dataAfterMount} ? variables.pathSegments[0] + '/' + variables.pathText.substring(size(variables.pathSegments[0]) + ${G.kvV2DataSegment.length + 2}) : variables.pathText`,
    },
  ];
}

/**
 * vault-sync.io/custom-metadata, judged with the operator's own regexes (src/kube/custom-metadata.ts) in the same
 * order: length, printable, shape; then, over the members of a well-formed value (findAll of one member: over a
 * value of that shape, its leftmost matches are the members in order), count, key length, duplicates, mark names,
 * and each value's bytes once decoded (its UTF-8 bytes less its quotes, less one a backslash escape).
 */
function customMetadataVariables(): Array<{ name: string; expression: string }> {
  const G = customMetadataGrammar('re2');
  const key = Annotations.customMetadata;
  return [
    { name: 'cmHas', expression: has(key) },
    { name: 'cmRaw', expression: `variables.cmHas ? ${valueOf(key)} : ''` },
    { name: 'cmNotTooLong', expression: `size(variables.cmRaw) <= ${CUSTOM_METADATA_LIMITS.annotationLength}` },
    { name: 'cmPrintable', expression: `variables.cmNotTooLong && variables.cmRaw.matches(${celRaw(G.printable)})` },
    { name: 'cmShaped', expression: `variables.cmPrintable && variables.cmRaw.matches(${celRaw(G.shape)})` },
    { name: 'cmPairs', expression: `variables.cmShaped ? variables.cmRaw.findAll(${celRaw(G.pair)}) : []` },
    { name: 'cmFew', expression: `size(variables.cmPairs) <= ${CUSTOM_METADATA_LIMITS.userKeys}` },
    { name: 'cmKeys', expression: `variables.cmFew ? variables.cmPairs.map(p, p.find(${celRaw(G.key)})) : []` },
    { name: 'cmValues', expression: `variables.cmFew ? variables.cmPairs.map(p, p.substring(p.indexOf(':') + 1).trim()) : []` },
  ];
}

function customMetadataValidations(): Validation[] {
  const G = customMetadataGrammar('re2');
  const key = Annotations.customMetadata;
  const P = CUSTOM_METADATA_PROBLEMS;
  const rule = (expression: string, problem: string): Validation => ({ expression: `!variables.cmHas || ${expression}`, message: `${key}: ${problem}`, reason: 'Invalid' });
  const lower = 'k.lowerAscii()';
  const notMark = `!(${lower} in ${celList(MARK_NAMES)}) && ${MARK_PREFIXES.map((p) => `!${lower}.startsWith(${celString(p)})`).join(' && ')}`;
  return [
    rule('variables.cmNotTooLong', P.tooLong),
    rule('!variables.cmNotTooLong || variables.cmPrintable', P.notPrintable),
    rule('!variables.cmPrintable || variables.cmShaped', P.shape),
    rule('variables.cmFew', P.tooManyKeys),
    rule(`variables.cmKeys.all(k, size(k) <= ${CUSTOM_METADATA_LIMITS.keyBytes})`, P.keyTooLong),
    rule('variables.cmKeys.all(k, variables.cmKeys.filter(x, x == k).size() == 1)', P.duplicateKey),
    rule(`variables.cmKeys.all(k, ${notMark})`, P.markKey),
    rule(`variables.cmValues.all(v, size(bytes(v)) - 2 - size(v.findAll(${celRaw(G.escape)})) <= ${CUSTOM_METADATA_LIMITS.valueBytes})`, P.valueTooLong),
  ];
}

function annotationValidations(): Validation[] {
  const path = Annotations.path;
  // The rules on segments hold only for a path of judgeable length (the empty and length rules report the rest).
  const judged = new Set(['pathNotEmpty', 'pathShortEnough']);
  const pathRule = (variable: string, problem: string): Validation => ({
    expression: judged.has(variable) ? `!variables.hasPath || variables.${variable}` : `!variables.hasPath || !variables.pathJudgeable || variables.${variable}`,
    message: `${path}: ${problem}`,
    reason: 'Invalid',
  });
  const sources = lowerCaseSources();
  const known = celList(KNOWN_ANNOTATIONS);
  const unknown = `variables.annotations.filter(k, k.startsWith(${celString(ANNOTATION_PREFIX)}) && !(k in ${known}))`;
  return [
    {
      expression: `size(${unknown}) == 0`,
      // Bounded: the first unknown key and a count, whatever the number of keys.
      messageExpression: `'unknown vault-sync.io annotation ' + ${unknown}[0] + (size(${unknown}) > 1 ? ' (and ' + string(size(${unknown}) - 1) + ' more)' : '') + ' (known: ${KNOWN_ANNOTATIONS.join(', ')})'`,
      reason: 'Invalid',
    },
    pathRule('pathNotEmpty', 'the Vault path is empty'),
    pathRule('pathShortEnough', `the Vault path is longer than ${G.maxPathLength} characters or has more than ${G.maxSegments} segments`),
    pathRule('pathRelative', 'the Vault path must not start with "/"'),
    pathRule('pathNoEmptySegment', 'the Vault path has an empty segment'),
    pathRule('pathNoDotSegment', `the Vault path contains a ${G.dotSegments.map((s) => `"${s}"`).join(' or ')} segment (path traversal)`),
    pathRule(
      'pathSegmentsValid',
      `a segment of the Vault path is longer than ${G.maxSegmentLength} characters or holds a character other than letters, digits, ".", "_" and "-"`,
    ),
    {
      expression: '!variables.hasPath || !variables.pathJudgeable || variables.pathMountAllowed',
      message: `${path}: the Vault path is not under an allowed KV mount`,
      messageExpression: `'${path}: the Vault path is not under an allowed KV mount (' + variables.kvMounts.map(m, m + '/').join(', ') + ')'`,
      reason: 'Invalid',
    },
    pathRule('pathNotReserved', `the Vault path names a KV API endpoint (${G.reservedAfterMount.join(', ')}) right after the mount; write it as mount/key (or mount/${G.kvV2DataSegment}/key)`),
    pathRule('pathHasKey', 'the Vault path names the mount itself, not a secret below it'),
    ...[...BOOLEAN_ANNOTATIONS, Annotations.rotationCheck, Annotations.updatePolicy, Annotations.reconcile].map((key) => ({
      expression: `!(${has(key)}) || size(${valueOf(key)}) <= ${MAX_SHORT_VALUE_LENGTH}`,
      message: `${key}: is longer than ${MAX_SHORT_VALUE_LENGTH} characters`,
      reason: 'Invalid' as const,
    })),
    ...BOOLEAN_ANNOTATIONS.map((key) => ({
      expression: `!(${has(key)}) || size(${valueOf(key)}) > ${MAX_SHORT_VALUE_LENGTH} || ${valueOf(key)}.matches(${celRaw(wordPattern(BOOLEAN_WORDS, sources))})`,
      message: `${key}: must be "true" or "false" (any other value is read as ${SWITCH_READ_ON_BAD_VALUE[key]})`,
      reason: 'Invalid' as const,
    })),
    {
      expression: `!(${has(Annotations.rotationCheck)}) || size(${valueOf(Annotations.rotationCheck)}) > ${MAX_SHORT_VALUE_LENGTH} || ${valueOf(Annotations.rotationCheck)}.matches(${celRaw(wordPattern(ROTATION_CHECK_WORDS, sources))})`,
      message: `${Annotations.rotationCheck}: must be "enabled" or "disabled" (any other value is read as enabled)`,
      reason: 'Invalid',
    },
    {
      expression: `!(${has(Annotations.updatePolicy)}) || size(${valueOf(Annotations.updatePolicy)}) > ${MAX_SHORT_VALUE_LENGTH} || ${valueOf(Annotations.updatePolicy)}.matches(${celRaw(wordPattern(UPDATE_POLICY_WORDS, sources))})`,
      message: `${Annotations.updatePolicy}: must be "Replace" or "IfNotExists" (any other value is read as IfNotExists: nothing in Vault is overwritten)`,
      reason: 'Invalid',
    },
    ...customMetadataValidations(),
    {
      expression: `!(${has(Annotations.reconcile)}) || size(${valueOf(Annotations.reconcile)}) > ${MAX_SHORT_VALUE_LENGTH} || ${valueOf(Annotations.reconcile)}.matches(${celRaw(durationPattern())})`,
      message: `${Annotations.reconcile}: must be a duration like 30s, 5m or 1h (a number and one of ${DURATION_GRAMMAR.units.join(', ')}); the drift check is off otherwise`,
      reason: 'Invalid',
    },
  ];
}

function tenancyValidations(): Validation[] {
  const path = Annotations.path;
  return [
    {
      // Only a valid path is judged here (the other policy reports the rest), segment by segment: the
      // prefix ends with "/", and every character of both is in the segment grammar.
      expression: `!variables.hasPath || variables.tenantPrefix == '' || !variables.pathValid || (variables.pathCanonical + '/').startsWith(variables.tenantPrefix)`,
      message: `${path}: the Vault path is outside the default prefix of this namespace`,
      messageExpression: `'${path}: the Vault path "' + variables.pathText + '" is outside the default prefix of namespace "' + request.namespace + '" (' + variables.tenantPrefix + '); a cluster admin can grant more with a VaultSyncPolicy'`,
      reason: 'Invalid',
    },
  ];
}

function matchConditions(): Array<{ name: string; expression: string }> {
  const prefix = celString(ANNOTATION_PREFIX);
  const ours = (map: string) => `${map}.filter(k, k.startsWith(${prefix}))`;
  return [
    { name: 'has-vault-sync-annotations', expression: `has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith(${prefix}))` },
    // Finalizer removal and other updates of an object on its way out are never judged.
    { name: 'not-being-deleted', expression: '!has(object.metadata.deletionTimestamp)' },
    // An update is judged only when it adds or changes a vault-sync.io annotation: a value set before the
    // policy existed never blocks the operator's finalizer update, a rollout or a scale.
    {
      name: 'vault-sync-annotations-changed',
      expression:
        `request.operation == 'CREATE' || oldObject == null || !has(oldObject.metadata.annotations) || ` +
        `${ours('object.metadata.annotations')}.exists(k, !(k in oldObject.metadata.annotations) || oldObject.metadata.annotations[k] != object.metadata.annotations[k])`,
    },
  ];
}

/** The file's text: deterministic (no dates), so the check can compare bytes. */
export function renderAdmissionPolicyRules(): string {
  const header = [
    '# Generated by scripts/gen-admission-policy.ts from src/vault/path-grammar.ts and src/kube/annotation-rules.ts',
    '# -- do not edit: change those and run `npm run gen:admission-policy`. Read by templates/admission-policy.yaml.',
    '',
  ].join('\n');
  const body = {
    matchConditions: matchConditions(),
    variables: variables(),
    annotationValidations: annotationValidations(),
    tenancyValidations: tenancyValidations(),
    // For the chart's check of tenancy.pathTemplate (Helm's regexMatch is RE2 too).
    tenantTemplate: {
      placeholder: G.namespacePlaceholder,
      segmentPattern: `^(?:${G.segmentCharClass}|${G.namespacePlaceholder.replace(/[{}]/g, (c) => `\\${c}`)})+$`,
      dotSegments: [...G.dotSegments],
      dataSegment: G.kvV2DataSegment,
      reservedAfterMount: [...G.reservedAfterMount],
    },
  };
  return header + stringify(body, { lineWidth: 0 });
}

function main(argv: string[]): void {
  const file = join(process.cwd(), GENERATED_FILE);
  const text = renderAdmissionPolicyRules();
  if (argv.includes('--check')) {
    const committed = readFileSync(file, 'utf8');
    if (committed !== text) {
      console.error(`gen-admission-policy: ${GENERATED_FILE} is not what the generator produces now; run: npm run gen:admission-policy`);
      process.exit(1);
    }
    console.log(`gen-admission-policy: ${GENERATED_FILE} is up to date`);
    return;
  }
  writeFileSync(file, text);
  console.log(`gen-admission-policy: wrote ${GENERATED_FILE}`);
}

if (process.argv[1]?.endsWith('gen-admission-policy.js')) main(process.argv.slice(2));
