// `vault-sync.io/custom-metadata`: a JSON object of string keys and values that the operator writes into each
// path's KV v2 custom_metadata beside its ownership marks. The grammar is data: the operator reads a value with
// the regexes below, and scripts/gen-admission-policy.ts writes the same regexes into the chart's admission
// policy (RE2), so both judge a value the same way (test/e2e/admission-policy.test.ts compares them).
//
// The accepted form is a strict subset of JSON that both can judge exactly: keys are written without escapes
// in the key alphabet below, values may use the escapes \" \\ \/ and no other (write the character itself:
// a \u escape can hide a character that is not printable). What is checked is what is stored and sent.
import { isMarkKey, MARK_NAMES, MARK_PREFIXES, MAX_MARKS } from '../vault/mark-keys.js';

/** Vault's (and OpenBao's) limits on custom_metadata, and ours on the annotation. */
export const CUSTOM_METADATA_LIMITS = {
  /** Keys Vault accepts in one path's custom_metadata, the operator's marks included. */
  vaultKeys: 64,
  /** What is left to the user once the operator's marks are counted. */
  userKeys: 64 - MAX_MARKS,
  /** Vault's bound on a key, in UTF-8 bytes (the key alphabet is ASCII: one byte a character). */
  keyBytes: 128,
  /** Vault's bound on a value, in UTF-8 bytes after the JSON escapes are decoded. */
  valueBytes: 512,
  /**
   * The annotation's own length, in characters: the policy's regexes cost in proportion to it and the apiserver
   * aborts an evaluation beyond its cost limit. Room for every key at its longest with values of ~300 bytes.
   */
  annotationLength: 32_768,
} as const;

/** The code point classes of the grammar, flavour-neutral: [from, to] inclusive. */
const JSON_WHITESPACE: ReadonlyArray<readonly [number, number]> = [[0x09, 0x0a], [0x0d, 0x0d], [0x20, 0x20]];
const KEY_CHARACTERS = 'A-Za-z0-9._/-';
/** The value escapes accepted after a backslash. */
const VALUE_ESCAPES = '"\\/';

export type RegexFlavour = 'js' | 're2';

function codePoint(c: number, flavour: RegexFlavour): string {
  const hex = c.toString(16);
  return flavour === 'js' ? `\\u{${hex}}` : `\\x{${hex}}`;
}

/**
 * The grammar's regexes in JavaScript (with the `u` flag) or RE2 (CEL's `matches`, `find`, `findAll`) syntax.
 * `printable`: every character is one Vault calls printable (Go's unicode.IsPrint: letters, marks, numbers,
 * punctuation, symbols, the ASCII space) or JSON whitespace (which the shape allows only between tokens).
 */
export function customMetadataGrammar(flavour: RegexFlavour) {
  const ws = `[${JSON_WHITESPACE.map(([a, b]) => (a === b ? codePoint(a, flavour) : `${codePoint(a, flavour)}-${codePoint(b, flavour)}`)).join('')}]*`;
  const key = `[${KEY_CHARACTERS}]+`;
  const escape = `\\\\[${[...VALUE_ESCAPES].map((c) => codePoint(c.codePointAt(0)!, flavour)).join('')}]`;
  const plain = `[^${codePoint(0x22, flavour)}${codePoint(0x5c, flavour)}${codePoint(0, flavour)}-${codePoint(0x1f, flavour)}]`;
  const value = `"(?:${escape}|${plain})*"`;
  const pair = `"${key}"${ws}:${ws}${value}`;
  return {
    printable: `^[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}${JSON_WHITESPACE.map(([a, b]) => (a === b ? codePoint(a, flavour) : `${codePoint(a, flavour)}-${codePoint(b, flavour)}`)).join('')}]*$`,
    shape: `^${ws}\\{${ws}(?:${pair}(?:${ws},${ws}${pair})*)?${ws}\\}${ws}$`,
    /** One key and its value; over a value of the right shape, the leftmost non-overlapping matches are its members in order. */
    pair,
    /** The key in a pair: its first run of key characters (right after the opening quote). */
    key,
    /** One escape in a value (counted: each decodes two characters to one byte). */
    escape: '\\\\.',
  } as const;
}

const JS = customMetadataGrammar('js');
const PRINTABLE = new RegExp(JS.printable, 'u');
const SHAPE = new RegExp(JS.shape, 'u');
const PAIR = new RegExp(JS.pair, 'gu');
const KEY = new RegExp(JS.key, 'u');

/** The words of each problem; the policy's messages say the same. */
export const CUSTOM_METADATA_PROBLEMS = {
  tooLong: `is longer than ${CUSTOM_METADATA_LIMITS.annotationLength} characters`,
  notPrintable: 'holds a character that is not printable (Vault accepts only printable characters in custom_metadata)',
  shape: `must be a JSON object of string values, with keys of letters, digits, ".", "_", "-" and "/" and no escapes in values but \\", \\\\ and \\/`,
  tooManyKeys: `has more than ${CUSTOM_METADATA_LIMITS.userKeys} keys (Vault allows ${CUSTOM_METADATA_LIMITS.vaultKeys} in custom_metadata and the operator's marks take up to ${MAX_MARKS})`,
  keyTooLong: `has a key longer than ${CUSTOM_METADATA_LIMITS.keyBytes} bytes (Vault's limit)`,
  duplicateKey: 'has a key twice',
  markKey: `has a key that is, or looks like, one of the operator's ownership marks (${MARK_NAMES.join(', ')}, ${MARK_PREFIXES.map((p) => `${p}*`).join(', ')}; any case)`,
  valueTooLong: `has a value longer than ${CUSTOM_METADATA_LIMITS.valueBytes} bytes (Vault's limit)`,
} as const;

export type CustomMetadataParse = { ok: true; metadata: ReadonlyMap<string, string> } | { ok: false; problem: string };

/** How much of a key a problem names (in characters). */
const NAMED_KEY_LENGTH = 40;
const named = (key: string) => JSON.stringify(key.length > NAMED_KEY_LENGTH ? `${key.slice(0, NAMED_KEY_LENGTH)}…` : key);

/**
 * Pure: the annotation's value as the keys and values written to Vault (in the order written), or the first
 * problem, naming the key it is about. The checks and their order are the admission policy's.
 */
export function parseCustomMetadata(value: string): CustomMetadataParse {
  const limits = CUSTOM_METADATA_LIMITS;
  if (value.length > limits.annotationLength) return { ok: false, problem: CUSTOM_METADATA_PROBLEMS.tooLong };
  if (!PRINTABLE.test(value)) return { ok: false, problem: CUSTOM_METADATA_PROBLEMS.notPrintable };
  if (!SHAPE.test(value)) return { ok: false, problem: CUSTOM_METADATA_PROBLEMS.shape };
  const pairs = [...value.matchAll(PAIR)].map((m) => m[0]);
  if (pairs.length > limits.userKeys) return { ok: false, problem: `${CUSTOM_METADATA_PROBLEMS.tooManyKeys}: ${pairs.length}` };
  const metadata = new Map<string, string>();
  for (const pair of pairs) {
    const key = KEY.exec(pair)![0];
    if (key.length > limits.keyBytes) return { ok: false, problem: `${CUSTOM_METADATA_PROBLEMS.keyTooLong}: ${named(key)}` };
    if (metadata.has(key)) return { ok: false, problem: `${CUSTOM_METADATA_PROBLEMS.duplicateKey}: ${named(key)}` };
    if (isMarkKey(key)) return { ok: false, problem: `${CUSTOM_METADATA_PROBLEMS.markKey}: ${named(key)}` };
    // The shape admits only the escapes JSON.parse decodes to one character each.
    const decoded: unknown = JSON.parse(pair.slice(pair.indexOf(':') + 1).trim());
    if (typeof decoded !== 'string') throw new Error('unreachable: the shape admits string values only');
    if (Buffer.byteLength(decoded, 'utf8') > limits.valueBytes) return { ok: false, problem: `${CUSTOM_METADATA_PROBLEMS.valueTooLong}: the value of ${named(key)}` };
    metadata.set(key, decoded);
  }
  return { ok: true, metadata };
}
