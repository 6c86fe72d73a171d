// The admission policy's rules are generated from the operator's own; these tests keep the generated file and
// the rules' data honest. The apiserver's verdict against the operator's is test/e2e/admission-policy.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse } from 'yaml';
import { GENERATED_FILE, renderAdmissionPolicyRules } from '../../scripts/gen-admission-policy.js';
import { parseDurationMs } from '../../src/config.js';
import {
  annotationProblem,
  BOOLEAN_ANNOTATIONS,
  DURATION_GRAMMAR,
  JS_TRIM_RANGES,
  KNOWN_ANNOTATIONS,
  ruleOf,
  type AnnotationContext,
} from '../../src/kube/annotation-rules.js';
import { Annotations, isTrue } from '../../src/kube/annotations.js';

const context: AnnotationContext = { namespace: 'team-a', allowedMounts: ['secret'], tenantPathTemplate: 'secret/{namespace}/' };
const problem = (key: string, value: string) => annotationProblem(key, value, context);

describe('the generated CEL of the chart', () => {
  let generated: string;
  beforeAll(() => {
    generated = renderAdmissionPolicyRules();
  });

  test('the committed file is what the generator produces from the rules now (run npm run gen:admission-policy)', () => {
    expect(readFileSync(join(process.cwd(), GENERATED_FILE), 'utf8')).toBe(generated);
  });

  test('every known annotation but the free-form ones has a validation that names it', () => {
    const rules = parse(generated);
    const messages: string[] = rules.annotationValidations.map((v: any) => v.message ?? v.messageExpression);
    for (const key of KNOWN_ANNOTATIONS.filter((k) => k !== Annotations.secrets && k !== Annotations.forceSync)) {
      expect(messages.some((m) => m.startsWith(`${key}: `))).toBe(true);
    }
    expect(rules.tenancyValidations).toHaveLength(1);
  });

  test('every regex is a CEL raw string (no escaping layer between the generator and RE2)', () => {
    const rules = parse(generated);
    const expressions: string[] = [...rules.variables, ...rules.annotationValidations].map((v: any) => v.expression);
    const regexCalls = expressions.flatMap((e) => [...e.matchAll(/\.(matches|find)\(([^)]*)\)/g)].map((m) => m[2]));
    expect(regexCalls.length).toBeGreaterThanOrEqual(5);
    for (const argument of regexCalls) expect(argument).toMatch(/^r'/);
  });
});

describe('the rules the generator reads are the operator’s', () => {
  test('every annotation of the contract has a rule (a new one needs a line in src/kube/annotation-rules.ts, then npm run gen:admission-policy)', () => {
    expect(KNOWN_ANNOTATIONS.filter((key) => ruleOf(key) === undefined)).toEqual([]);
  });

  test('JS_TRIM_RANGES are exactly the code points String.prototype.trim() removes', () => {
    const inRanges = (c: number) => JS_TRIM_RANGES.some(([from, to]) => c >= from && c <= to);
    const mismatches: string[] = [];
    for (let c = 0; c <= 0x10ffff; c++) {
      if (c >= 0xd800 && c <= 0xdfff) continue;
      if ((String.fromCodePoint(c).trim() === '') !== inRanges(c)) mismatches.push(c.toString(16));
    }
    expect(mismatches).toEqual([]);
  });

  test('DURATION_GRAMMAR accepts exactly what parseDurationMs parses (seeded property)', () => {
    const grammar = new RegExp(`^${DURATION_GRAMMAR.number}(?:${DURATION_GRAMMAR.units.join('|')})$`);
    const piece = fc.constantFrom('1', '15', '0', '1.5', '.5', '5.', '-1', '1e3', '٣', 'ms', 's', 'm', 'h', 'd', 'S', 'M', ' ', '\t', '\u00a0', '\u200b', '\ufeff', '.', '+');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 5 }).map((parts) => parts.join('')), (value) => {
        expect(grammar.test(value.trim())).toBe(parseDurationMs(value) !== undefined);
      }),
      { seed: 20261129, numRuns: 2000 },
    );
  });

  test('a switch the operator reads as on (isTrue) is never reported; "false" neither; anything else is', () => {
    const word = fc.constantFrom('true', 'TRUE', 'True', 'false', 'FALSE', 'yes', '1', 'on', 'ture', 'falſe', '', ' ', '\u00a0', '\u200b');
    fc.assert(
      fc.property(fc.array(word, { maxLength: 3 }).map((parts) => parts.join('')), (value) => {
        for (const key of BOOLEAN_ANNOTATIONS) {
          const valid = problem(key, value) === undefined;
          expect(valid).toBe(isTrue(value) || value.trim().toLowerCase() === 'false');
        }
      }),
      { seed: 20261129, numRuns: 500 },
    );
  });

  test.each([
    [Annotations.path, 'secret/team-a/app', undefined],
    [Annotations.path, 'secret/data/team-a/app/', undefined],
    [Annotations.path, 'secret/team-b/app', 'outside'],
    [Annotations.path, 'secret/team-a/../team-b', 'traversal'],
    [Annotations.path, 'sys/team-a/x', 'allowed KV mount'],
    [Annotations.suspend, ' True\n', undefined],
    [Annotations.preserveOnDelete, 'yes', '"true" or "false"'],
    [Annotations.rotationCheck, 'DISABLED', undefined],
    [Annotations.rotationCheck, 'off', '"enabled" or "disabled"'],
    [Annotations.reconcile, '1.5m', undefined],
    [Annotations.reconcile, '5 minutes', 'duration'],
    [Annotations.secrets, 'not json', undefined], // left to the operator: CEL has no JSON parser
    [Annotations.forceSync, 'anything', undefined],
    [Annotations.updatePolicy, ' ifNotExists ', undefined],
    [Annotations.updatePolicy, 'Replace', undefined],
    [Annotations.updatePolicy, 'CreateOnce', '"Replace" or "IfNotExists"'],
    [Annotations.customMetadata, '{"team":"payments"}', undefined],
    [Annotations.customMetadata, '{"managed-by":"me"}', 'ownership marks'],
    [Annotations.customMetadata, 'team=payments', 'JSON object of string values'],
    ['vault-sync.io/pth', 'secret/team-a/x', 'unknown annotation'],
    ['other.io/suspend', 'yes', undefined],
  ])('%s: %j -> %s', (key, value, expected) => {
    const found = problem(key, value);
    if (expected === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(expected);
  });
});
