import { parsePlanArgs, PlanUsageError } from '../../src/plan/command.js';
import { describeWrite } from '../../src/plan/planner.js';
import { decideWrite } from '../../src/sync/write-policy.js';
import fc from 'fast-check';
import { buildReport, cleanText, exitCodeOf, plannedCondition, renderJson, renderText, sourcePlan, type PathPlan } from '../../src/plan/report.js';
import { forceRequested, hasDrifted, inputFingerprint } from '../../src/sync/change-detection.js';

const web = { kind: 'Deployment' as const, namespace: 'team', name: 'web' };
const path = (p: string, action: PathPlan['action'], reason = 'why'): PathPlan => ({ path: p, action, reason });

describe('the verdict of a source follows from its paths', () => {
  test.each([
    { paths: [path('secret/a', 'unchanged'), path('secret/b', 'keep')], verdict: 'none', why: 'unchanged and kept paths are nothing to do' },
    { paths: [path('secret/a', 'unchanged'), path('secret/b', 'create')], verdict: 'change', why: 'one write is a change' },
    { paths: [path('secret/a', 'delete')], verdict: 'change', why: 'a delete is a change' },
    { paths: [path('secret/a', 'create'), path('secret/b', 'refuse')], verdict: 'refuse', why: 'a refused path wins over changes: it needs a person' },
  ])('$why', ({ paths, verdict }) => {
    expect(sourcePlan(web, 'r', paths).verdict).toBe(verdict);
  });

  test('a source refused as a whole is refused without paths', () => {
    expect(sourcePlan(web, 'InvalidPath: bad', [], true)).toEqual({ ...web, verdict: 'refuse', reason: 'InvalidPath: bad', paths: [] });
  });
});

describe('exit codes: 0 nothing to do, 2 changes pending, 1 refusals', () => {
  const none = sourcePlan(web, 'in sync', [path('secret/a', 'unchanged')]);
  const change = sourcePlan({ ...web, name: 'api' }, 'changed', [path('secret/b', 'update')]);
  const refused = sourcePlan({ ...web, name: 'bad' }, 'OutsideTenantPrefix: x', [], true);
  test.each([
    { sources: [], code: 0, why: 'no sources at all' },
    { sources: [none], code: 0, why: 'everything in sync' },
    { sources: [none, change], code: 2, why: 'one change pending' },
    { sources: [change, refused], code: 1, why: 'a refusal wins over pending changes' },
  ])('$why → $code', ({ sources, code }) => {
    expect(exitCodeOf(buildReport('c', sources))).toBe(code);
  });
});

describe('the report', () => {
  const report = buildReport('prod', [
    sourcePlan({ kind: 'Secret', namespace: 'b', name: 'x' }, 'not synced yet', [path('secret/b/x', 'create', 'new path')]),
    sourcePlan(web, 'inputs changed', [path('secret/team/web/db', 'update', 'content changed'), path('secret/team/web/old', 'delete', 'no longer produced'), path('secret/other', 'refuse', 'refusing to overwrite: it is managed by "eso"')]),
    sourcePlan({ kind: 'Deployment', namespace: 'a', name: 'bad' }, 'InvalidPath: vault-sync.io/path: ..', [], true),
  ]);

  test('sources are sorted by namespace, kind, name and counted by action', () => {
    expect(report.sources.map((s) => `${s.namespace}/${s.name}`)).toEqual(['a/bad', 'b/x', 'team/web']);
    expect(report.summary).toEqual({ sources: 3, create: 1, update: 1, adopt: 0, delete: 1, unchanged: 0, keep: 0, refuse: 1, refusedSources: 1 });
  });

  test('the text shows one line per source and per path, with a mark per action, and the summary', () => {
    const text = renderText(report);
    expect(text.split('\n')).toEqual([
      'Deployment a/bad: REFUSED - InvalidPath: vault-sync.io/path: ..',
      'Secret b/x: changes - not synced yet',
      '  + secret/b/x  create     new path',
      'Deployment team/web: REFUSED - inputs changed',
      '  ! secret/other         refuse     refusing to overwrite: it is managed by "eso"',
      '  ~ secret/team/web/db   update     content changed',
      '  - secret/team/web/old  delete     no longer produced',
      'Plan for cluster "prod": 3 source(s); paths: 1 to create, 1 to update, 1 to delete, 1 refused; 1 source(s) refused as a whole.',
      'Refusals need attention (see "!" lines and REFUSED sources).',
      '',
    ]);
  });

  test('JSON is the report itself, versioned, parseable', () => {
    expect(JSON.parse(renderJson(report))).toEqual(report);
    expect(report.apiVersion).toBe('vault-sync.io/plan/v1');
  });

  test('an empty plan says so', () => {
    expect(renderText(buildReport('c', []))).toBe('No annotated sources found.\nPlan for cluster "c": 0 source(s); paths: no paths.\nNothing to do.\n');
  });
});

describe('the output is deterministic: the same plan prints the same bytes whatever order it was gathered in', () => {
  const drift = [
    path('secret/team/web/db', 'update', 'changed in Vault out of band: restored'),
    path('secret/team/web/api', 'unchanged', 'content unchanged; no drift in Vault'),
    path('secret/team/web/Zed', 'unchanged', 'content unchanged; no drift in Vault'),
    path('secret/team/web/cache', 'refuse', 'Vault refused this content before'),
  ];

  test('paths are listed in byte order of the path, not in the order they were recorded or answered', () => {
    expect(sourcePlan(web, 'drift checked', drift).paths.map((p) => p.path)).toEqual(['secret/team/web/Zed', 'secret/team/web/api', 'secret/team/web/cache', 'secret/team/web/db']);
  });

  test('property: any order of the same paths and sources gives the same text and JSON', () => {
    const sources = [
      { id: web, paths: drift },
      { id: { kind: 'Secret' as const, namespace: 'team', name: 'web' }, paths: [path('secret/team/s/b', 'create'), path('secret/team/s/a', 'delete')] },
      { id: { kind: 'Deployment' as const, namespace: 'Team', name: 'x' }, paths: [path('secret/Team/x', 'keep')] },
      { id: { kind: 'Deployment' as const, namespace: 'team', name: 'Web' }, paths: [] },
    ];
    const render = (order: typeof sources) => {
      const report = buildReport('c', order.map((s) => sourcePlan(s.id, 'r', s.paths)));
      return renderText(report) + renderJson(report);
    };
    const reference = render(sources);
    const permutation = <T>(items: T[]) => fc.shuffledSubarray(items, { minLength: items.length });
    const shuffledSource = (s: (typeof sources)[number]) => permutation(s.paths).map((paths) => ({ ...s, paths }));
    const shuffledPlan = permutation(sources).chain((order) => fc.tuple(...order.map(shuffledSource)));
    fc.assert(fc.property(shuffledPlan, (order) => expect(render(order)).toBe(reference)));
  });

  test('sources are in byte order (upper case first), not the locale\'s', () => {
    const report = buildReport('c', [sourcePlan({ ...web, namespace: 'b' }, 'r', []), sourcePlan({ ...web, namespace: 'B' }, 'r', []), sourcePlan({ ...web, namespace: 'a' }, 'r', [])]);
    expect(report.sources.map((s) => s.namespace)).toEqual(['B', 'a', 'b']);
  });

  test('the Planned condition lists actions in the summary\'s order and paths sorted within each', () => {
    const plan = sourcePlan(web, 'inputs changed', [path('secret/b', 'unchanged'), path('secret/d', 'create'), path('secret/a', 'unchanged'), path('secret/c', 'refuse', 'owned by x'), path('secret/c2', 'create')]);
    expect(plannedCondition(plan).message).toBe('inputs changed; would create secret/c2, secret/d; would refuse secret/c (owned by x); unchanged secret/a, secret/b');
  });
});

describe('what anyone may write (annotations, Vault custom_metadata) is shown bounded and without control characters', () => {
  test('terminal escapes and newlines are neutralized', () => {
    expect(cleanText('owned by \u001b[31mred\u001b[0m\nnext')).toBe('owned by ?[31mred?[0m?next');
  });
  test('long reasons are cut with an ellipsis', () => {
    const long = cleanText('x'.repeat(5000));
    expect(long.length).toBe(1024);
    expect(long.endsWith('…')).toBe(true);
  });
  test('sourcePlan cleans paths and reasons', () => {
    const plan = sourcePlan(web, 'a\rb', [path('secret/a', 'refuse', 'managed by "\u0007bell"')]);
    expect(plan.reason).toBe('a?b');
    expect(plan.paths[0].reason).toBe('managed by "?bell"');
  });
});

describe('the write decision at one path nobody recorded: decideWrite with what Vault says (the verdict\'s lookup)', () => {
  const source = { kind: 'Deployment' as const, namespace: 'team', name: 'web' };
  const base = { source, clusterName: 'c', adoptAllowed: false };
  const ours = { 'managed-by': 'vault-sync-operator', cluster: 'c', 'source-kind': 'Deployment', 'source-namespace': 'team', 'source-name': 'web' };
  const meta = (currentVersion: number, customMetadata: Record<string, string>) => ({ currentVersion, customMetadata });
  test.each([
    { why: 'a path nobody recorded and nothing in Vault is created with cas 0', input: base, metadata: undefined, expected: { action: 'create', cas: 0 } },
    { why: 'ours (the record was lost, or a version conflict forgot its version) is updated on the current version', input: base, metadata: meta(5, ours), expected: { action: 'update', cas: 5 } },
    { why: 'a path taken over by another manager is refused', input: base, metadata: meta(4, { 'managed-by': 'external-secrets' }), expected: { action: 'refuse' } },
    { why: 'an unmarked path is refused without adoption', input: base, metadata: meta(2, {}), expected: { action: 'refuse' } },
    { why: 'an unmarked path is adopted when allowed', input: { ...base, adoptAllowed: true }, metadata: meta(2, { owner: 'script' }), expected: { action: 'adopt', cas: 2, previousMetadata: { owner: 'script' } } },
    { why: 'a path marked by another manager is never adopted', input: { ...base, adoptAllowed: true }, metadata: meta(2, { 'managed-by': 'other' }), expected: { action: 'refuse' } },
    { why: 'an intended write that landed is recovered, not written again', input: { ...base, intent: { version: 4, hash: 'h' } }, metadata: meta(4, ours), expected: { action: 'recover', version: 4, markMissing: false } },
  ] as const)('$why', ({ input, metadata, expected }) => {
    expect(decideWrite({ ...input, vault: metadata ? { state: 'present', metadata } : { state: 'absent' } })).toMatchObject(expected);
  });

  test('as plan lines: the reason says why the path is written and on what grounds', () => {
    expect(describeWrite({ action: 'create', cas: 0, reason: 'a new path' }, 'h', undefined, 'not synced yet')).toEqual({ action: 'create', reason: 'not synced yet; a new path' });
    expect(describeWrite({ action: 'refuse', reason: 'it is managed by "eso"' }, 'h', undefined, 'x')).toEqual({ action: 'refuse', reason: 'refusing to overwrite: it is managed by "eso"' });
    expect(describeWrite({ action: 'adopt', cas: 2, previousMetadata: {}, reason: 'not marked' }, 'h', undefined, 'not synced yet').action).toBe('adopt');
    expect(describeWrite({ action: 'recover', version: 4, markMissing: false, reason: 'landed' }, 'h', 'h', 'x').action).toBe('unchanged');
    expect(describeWrite({ action: 'recover', version: 4, markMissing: true, reason: 'landed' }, 'h', 'h', 'x').action).toBe('update');
    expect(describeWrite({ action: 'recover', version: 4, markMissing: false, reason: 'landed' }, 'h2', 'h', 'x').action).toBe('update');
  });
});

describe('change detection shared by the reconciler and plan', () => {
  const targets = [{ path: { mount: 'secret', key: 'a' }, selections: [{ secretName: 's', prefix: '', optional: false }] }];
  test('the input fingerprint moves with a Secret\'s data hash and carries the force-sync token', () => {
    const one = inputFingerprint(targets, ['s'], () => 'h1', undefined);
    expect(inputFingerprint(targets, ['s'], () => 'h1', undefined)).toBe(one);
    expect(inputFingerprint(targets, ['s'], () => 'h2', undefined)).not.toBe(one);
    expect(inputFingerprint(targets, ['s'], () => undefined, undefined)).not.toBe(one);
    expect(inputFingerprint(targets, ['s'], () => 'h1', 'tok')).toBe(`${one}:tok`);
  });
  test.each([
    { token: undefined, previous: 'fp:old', forced: false, why: 'no token' },
    { token: 'new', previous: undefined, forced: false, why: 'a first sync needs no forcing' },
    { token: 'new', previous: 'fp:old', forced: true, why: 'a new token forces once' },
    { token: 'old', previous: 'fp:old', forced: false, why: 'an honoured token does not force again' },
  ])('force-sync: $why', ({ token, previous, forced }) => {
    expect(forceRequested(token, previous)).toBe(forced);
  });
  test.each([
    { metadata: undefined, drifted: true, why: 'the path is gone' },
    { metadata: { currentVersion: 4, customMetadata: { 'content-hash': 'h' } }, drifted: true, why: 'the version moved' },
    { metadata: { currentVersion: 3, customMetadata: { 'content-hash': 'h' }, currentVersionDeleted: true }, drifted: true, why: 'the latest version was deleted' },
    { metadata: { currentVersion: 3, customMetadata: { 'content-hash': 'other' } }, drifted: true, why: 'the recorded hash moved' },
    { metadata: { currentVersion: 3, customMetadata: { 'content-hash': 'h' } }, drifted: false, why: 'same version and hash' },
  ])('drift: $why', ({ metadata, drifted }) => {
    expect(hasDrifted({ path: { mount: 'secret', key: 'a' }, hash: 'h', version: 3 }, metadata, true)).toBe(drifted);
  });
});

describe('plan arguments', () => {
  test('--output / -o take text or json, in either spelling; everything else goes to the operator settings', () => {
    expect(parsePlanArgs(['--output', 'json', '--vault-addr=http://x'])).toEqual({ options: { output: 'json' }, settings: ['--vault-addr=http://x'], help: false });
    expect(parsePlanArgs(['-o=json']).options.output).toBe('json');
    expect(parsePlanArgs([]).options.output).toBe('text');
    expect(parsePlanArgs(['--help']).help).toBe(true);
  });
  test('a bad or missing value is named', () => {
    expect(() => parsePlanArgs(['--output=yaml'])).toThrow(new PlanUsageError('--output must be text or json, got "yaml"'));
    expect(() => parsePlanArgs(['--output'])).toThrow('--output needs a value: text or json');
  });
});
