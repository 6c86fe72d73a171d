// The operator's own report of bad annotation values: it must agree with annotationProblem (the rules the
// chart's admission policy is generated from) for every value, and fall back to the safe reading of each.
import fc from 'fast-check';
import { annotationProblem, BOOLEAN_ANNOTATIONS, KNOWN_ANNOTATIONS, SWITCH_READ_ON_BAD_VALUE, type AnnotationContext } from '../../src/kube/annotation-rules.js';
import { Annotations, isTrue } from '../../src/kube/annotations.js';
import { boundMessage } from '../../src/kube/message-bounds.js';
import { annotationFindings, describeFinding, preservationReason, preservesOnDelete } from '../../src/sync/annotation-check.js';

const context: AnnotationContext = { namespace: 'team-a', allowedMounts: ['secret'], tenantPathTemplate: 'secret/{namespace}/' };

/** Values near and far from valid: the words and durations in any case, padded, cut, and anything at all. */
const annotationValue = fc.oneof(
  fc.constantFrom('true', 'false', 'TRUE', ' False\n', 'yes please', 'yes', '1', '', 'enabled', 'disabled', 'Disabled ', '5m', '30s', '1.5h', '5 minutes', '-1s', '0ms', 'ture'),
  fc.tuple(fc.constantFrom('', ' ', '\t', '\u00a0', '\u200b'), fc.constantFrom('true', 'false', 'enabled', 'disabled', '5m'), fc.constantFrom('', ' ', '\n', '\ufeff')).map(([a, b, c]) => a + b + c),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);
const annotationKey = fc.oneof(
  fc.constantFrom(...KNOWN_ANNOTATIONS),
  fc.string({ maxLength: 10 }).map((s) => `vault-sync.io/${s}`),
  fc.constantFrom('app.kubernetes.io/name', 'vault-sync.io', 'Vault-Sync.io/suspend'),
);

describe('annotationFindings', () => {
  test('for every key and value, the operator reports a problem exactly when annotationProblem does (the path aside)', () => {
    fc.assert(
      fc.property(annotationKey, annotationValue, (key, value) => {
        const findings = annotationFindings({ [key]: value }, context, 'Deployment');
        const expected = key === Annotations.path ? undefined : annotationProblem(key, value, context);
        expect(findings.map((f) => f.problem)).toEqual(expected === undefined ? [] : [expected]);
      }),
      { numRuns: 2000 },
    );
  });

  test('a bad path is not reported here: it is refused on its own (Refused, InvalidPath), never twice', () => {
    expect(annotationFindings({ [Annotations.path]: 'sys/../x', [Annotations.suspend]: 'false' }, context, 'Deployment')).toEqual([]);
  });

  test('every bad value of a source is reported, in key order, each naming its annotation and what the operator does', () => {
    const findings = annotationFindings(
      {
        [Annotations.reconcile]: '5 minutes',
        [Annotations.preserveOnDelete]: 'yes please',
        'vault-sync.io/typo': 'x',
        [Annotations.path]: 'secret/team-a/app',
        [Annotations.rotationCheck]: 'off',
        [Annotations.suspend]: 'yes',
        [Annotations.adopt]: '1',
        'app.kubernetes.io/name': 'not ours',
      },
      context,
      'Deployment',
    );
    expect(findings.map(describeFinding)).toEqual([
      'vault-sync.io/adopt: "1" must be "true" or "false" (read as "false": paths without ownership marks are not taken over)',
      'vault-sync.io/preserve-on-delete: "yes please" must be "true" or "false" (read as "true": the Vault data is kept when the Deployment is deleted)',
      'vault-sync.io/reconcile: "5 minutes" must be a duration like 30s, 5m or 1h (ignored: no periodic drift check)',
      'vault-sync.io/rotation-check: "off" must be "enabled" or "disabled" (read as "enabled")',
      'vault-sync.io/suspend: "yes" must be "true" or "false" (read as "false": the source keeps syncing)',
      expect.stringMatching(/^vault-sync\.io\/typo: "x" unknown annotation \(known: vault-sync\.io\/path, .*\) \(ignored\)$/),
    ]);
  });

  test('a long value is quoted cut (never inside a surrogate pair), and a finding holds no "; " where a bounded message is cut', () => {
    const value = '😀'.repeat(100);
    const [finding] = annotationFindings({ [Annotations.suspend]: value }, context, 'Secret');
    const text = describeFinding(finding);
    expect(text).toContain(`"${'😀'.repeat(40)}…"`);
    expect(text.length).toBeLessThan(250);
    expect(text).not.toContain('; ');
    expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  test('a value with a "; " or a newline is quoted as JSON with ";" escaped, so a bounded message is cut between findings only', () => {
    const [finding] = annotationFindings({ 'vault-sync.io/x': 'a; b\nc' }, context, 'Deployment');
    const text = describeFinding(finding);
    expect(text).toContain('"a\\u003b b\\nc"');
    expect(JSON.parse(text.slice(text.indexOf('"'), text.indexOf('" ') + 1))).toBe('a; b\nc');
  });

  test('thousands of unknown keys make a message the Event bound cuts at a whole finding', () => {
    const annotations = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`vault-sync.io/typo-${String(i).padStart(4, '0')}`, 'v']));
    const findings = annotationFindings(annotations, context, 'Deployment');
    expect(findings).toHaveLength(3000);
    const message = boundMessage(findings.map(describeFinding).join('; '));
    expect(message).toMatch(/; …and \d+ more$/);
    expect(message.startsWith('vault-sync.io/typo-0000: "v" unknown annotation')).toBe(true);
  });
});

describe('preservesOnDelete', () => {
  test('only an absent annotation or a valid "false" deletes; a valid value reads as isTrue does; a bad value keeps the data', () => {
    fc.assert(
      fc.property(annotationValue, (value) => {
        const bad = annotationProblem(Annotations.preserveOnDelete, value, context) !== undefined;
        expect(preservesOnDelete({ [Annotations.preserveOnDelete]: value })).toBe(bad ? true : isTrue(value));
      }),
      { numRuns: 2000 },
    );
    expect(preservesOnDelete({})).toBe(false);
    expect(preservesOnDelete({ [Annotations.preserveOnDelete]: ' FALSE ' })).toBe(false);
    expect(preservesOnDelete({ [Annotations.preserveOnDelete]: 'yes please' })).toBe(true);
    expect(preservesOnDelete({ [Annotations.preserveOnDelete]: 'x'.repeat(5000) })).toBe(true); // too long to judge: kept
  });

  test('every switch is read on a bad value as SWITCH_READ_ON_BAD_VALUE (and the admission policy) says, and the Event says the same', () => {
    // How the operator reads each switch: preserve-on-delete through preservesOnDelete, the others through isTrue.
    const operatorReads = (key: string, value: string) => (key === Annotations.preserveOnDelete ? preservesOnDelete({ [key]: value }) : isTrue(value));
    expect(Object.keys(SWITCH_READ_ON_BAD_VALUE).sort()).toEqual([...BOOLEAN_ANNOTATIONS].sort());
    fc.assert(
      fc.property(fc.constantFrom(...BOOLEAN_ANNOTATIONS), annotationValue, (key, value) => {
        const [finding] = annotationFindings({ [key]: value }, context, 'Deployment');
        if (finding === undefined) return;
        expect(operatorReads(key, value)).toBe(SWITCH_READ_ON_BAD_VALUE[key] === 'true');
        expect(finding.meanwhile.startsWith(`read as "${SWITCH_READ_ON_BAD_VALUE[key]}"`)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  test('the Preserved Event says why: "true", or the bad value read as "true"', () => {
    expect(preservationReason({ [Annotations.preserveOnDelete]: 'True' })).toBe('vault-sync.io/preserve-on-delete: "true"');
    expect(preservationReason({ [Annotations.preserveOnDelete]: 'yes please' })).toBe('vault-sync.io/preserve-on-delete: "yes please" is not "true" or "false" and is read as "true"');
  });
});
