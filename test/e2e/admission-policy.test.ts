// The chart's ValidatingAdmissionPolicies on the real apiserver: `kubectl apply` of a bad Deployment prints
// the warning (Warn) or fails with the message (Deny), a good one passes silently, deletes, status updates and
// unrelated updates are never judged; and the drift guard: for a seeded corpus of annotation values, the
// apiserver's verdict (Deny, dry-run creates) equals the operator's own (annotationProblem).
import fc from 'fast-check';
import type { V1Secret } from '@kubernetes/client-node';
import { annotationProblem, BOOLEAN_ANNOTATIONS, MAX_SHORT_VALUE_LENGTH, type AnnotationContext } from '../../src/kube/annotation-rules.js';
import { Annotations, FINALIZER } from '../../src/kube/annotations.js';
import { CUSTOM_METADATA_LIMITS } from '../../src/kube/custom-metadata.js';
import { parsePrefix } from '../../src/vault/tenancy.js';
import { freshNamespace, kubeClients, loadTestEnv, waitFor } from './helpers/env.js';
import { chartDir, find, kubectlApply, parseYamlDocs, renderChart, run, runOk, tools } from './helpers/ops.js';

const MOUNTS = ['secret', 'kv'];
const TEMPLATE = 'secret/data/{namespace}/';

/** Installs the chart's policy objects, bound to one namespace only (other tests share the apiserver). */
function installPolicies(release: string, namespace: string, actions: { annotations: string; tenancy: string }): void {
  const manifests = runOk(tools.helm(), [
    'template', release, chartDir, '--namespace', 'vault-sync-system', '--show-only', 'templates/admission-policy.yaml',
    '--set', 'vault.address=https://vault.vault.svc:8200',
    '--set', `vault.kvMounts={${MOUNTS.join(',')}}`,
    '--set', `tenancy.pathTemplate=${TEMPLATE}`,
    '--set', `admissionPolicy.validationActions={${actions.annotations}}`,
    '--set', `admissionPolicy.tenancyValidationActions={${actions.tenancy}}`,
    '--set', 'admissionPolicy.failurePolicy=Fail',
    '--set-json', `admissionPolicy.namespaceSelector={"matchLabels":{"kubernetes.io/metadata.name":"${namespace}"}}`,
  ]);
  kubectlApply(manifests);
}

const secret = (namespace: string, annotations: Record<string, string>, name = 'probe'): V1Secret => ({
  apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, annotations }, stringData: { k: 'v' },
});

function deploymentYaml(namespace: string, name: string, annotations: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name, namespace, annotations },
    spec: {
      replicas: 1, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } },
    },
  });
}

/** `kubectl apply` (client-side, as users do), with its exit status and what it printed. */
function kubectlApplyAsUser(manifest: string) {
  return run(tools.kubectl(), ['--kubeconfig', loadTestEnv().kubeconfigPath, 'apply', '-f', '-'], { input: manifest });
}

let core: ReturnType<typeof kubeClients>['core'] | undefined;

/** The apiserver's verdict on a Secret carrying these annotations: undefined = admitted, else the message. */
async function verdict(namespace: string, annotations: Record<string, string>): Promise<string | undefined> {
  core ??= kubeClients().core;
  try {
    await core.createNamespacedSecret({ namespace, body: secret(namespace, annotations), dryRun: 'All' });
    return undefined;
  } catch (error: any) {
    // 422 (Invalid) from a validation with reason Invalid; 403 (Forbidden) otherwise.
    if (error.code !== 422 && error.code !== 403) throw error;
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return body?.message ?? String(error);
  }
}

/** Waits until both bindings are in force: the apiserver picks new policies up asynchronously. */
async function policiesInForce(namespace: string): Promise<void> {
  await waitFor(async () => (await verdict(namespace, { [Annotations.path]: 'secret/../x' })) !== undefined, { description: `the annotations policy in force in ${namespace}` });
  await waitFor(async () => (await verdict(namespace, { [Annotations.path]: 'secret/elsewhere/x' })) !== undefined, { description: `the tenancy policy in force in ${namespace}` });
}

describe('the chart', () => {
  const VAULT = ['--set', 'vault.address=https://vault.vault.svc:8200'];
  const policies = (args: string[]) => renderChart('vso', 'vault-sync-system', [...VAULT, ...args]).filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'));

  test('by default: two policies (annotations, tenancy) bound cluster-wide with Warn; CREATE/UPDATE of the objects only; failurePolicy Ignore', () => {
    const objects = policies([]);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ValidatingAdmissionPolicy/vso-vault-sync-operator-annotations', 'ValidatingAdmissionPolicy/vso-vault-sync-operator-tenancy',
      'ValidatingAdmissionPolicyBinding/vso-vault-sync-operator-annotations', 'ValidatingAdmissionPolicyBinding/vso-vault-sync-operator-tenancy',
    ]);
    for (const binding of objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding')) {
      expect(binding.spec.validationActions).toEqual(['Warn']);
      expect(binding.spec.matchResources).toBeUndefined();
    }
    const policy = find(objects, 'ValidatingAdmissionPolicy', 'vso-vault-sync-operator-annotations');
    expect(policy.spec.failurePolicy).toBe('Ignore');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments'], operations: ['CREATE', 'UPDATE'] },
      { apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], operations: ['CREATE', 'UPDATE'] },
    ]);
    expect(policy.spec.variables.slice(0, 2)).toEqual([
      { name: 'kvMounts', expression: '["secret"]' },
      { name: 'tenantPrefix', expression: "'secret/{namespace}/'.replace('{namespace}', request.namespace)" },
    ]);
  });

  test('tenancy.pathTemplate=none: no tenancy policy; admissionPolicy.enabled=false: no policy at all', () => {
    expect(policies(['--set', 'tenancy.pathTemplate=none']).map((o) => o.metadata.name)).toEqual(['vso-vault-sync-operator-annotations', 'vso-vault-sync-operator-annotations']);
    expect(policies(['--set', 'admissionPolicy.enabled=false'])).toEqual([]);
  });

  test.each([
    ['secret/../{namespace}', 'the segment ".." is not a Vault path segment'],
    ['secret/metadata/{namespace}', '"metadata" right after the mount is a KV API endpoint'],
    ['{namespace}/apps', 'cannot be in the mount'],
    ['secret/a b/{namespace}', 'the segment "a b" is not a Vault path segment'],
  ])('a tenancy.pathTemplate the operator cannot parse fails the render: %s', (template, says) => {
    const r = run(tools.helm(), ['template', 'vso', chartDir, ...VAULT, '--set-json', `tenancy.pathTemplate=${JSON.stringify(template)}`]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(says);
  });

  test.each([
    'secret/{namespace}/', 'secret/data/{namespace}', ' secret/{namespace}/apps/ ', 'kv/teams/{namespace}', 'secret/{namespace}-apps/x',
    'secret/data/data/{namespace}', 'secret/{namespace}/data', 'secret/destroy/{namespace}', 'secret//{namespace}', '/secret/{namespace}', 'secret/{namespace}//',
  ])('the chart derives the tenant prefix of %j as the operator does (or fails where the operator could not parse it)', (template) => {
    const operator = parsePrefix(template, 'team-a');
    const r = run(tools.helm(), ['template', 'vso', chartDir, ...VAULT, '--set-json', `tenancy.pathTemplate=${JSON.stringify(template)}`, '--show-only', 'templates/admission-policy.yaml']);
    if (!operator.ok) {
      expect(r.status).not.toBe(0);
      return;
    }
    expect(r.stderr).toBe('');
    const expression = find(parseYamlDocs(r.stdout), 'ValidatingAdmissionPolicy').spec.variables.find((v: any) => v.name === 'tenantPrefix').expression;
    const chartPrefix = /^'([^']*)'\.replace\('\{namespace\}', request\.namespace\)$/.exec(expression)![1].replaceAll('{namespace}', 'team-a');
    expect(chartPrefix).toBe([operator.prefix.mount, ...operator.prefix.key].join('/') + '/');
  });

  test('Warn and Deny together are refused by the schema (the apiserver would refuse the binding)', () => {
    const r = run(tools.helm(), ['template', 'vso', chartDir, ...VAULT, '--set', 'admissionPolicy.validationActions={Warn,Deny}']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('admissionPolicy.validationActions');
  });
});

describe('kubectl apply with Warn (the default action)', () => {
  let namespace: string;
  beforeAll(async () => {
    namespace = await freshNamespace('vap-warn');
    installPolicies(`vap-${namespace.slice(-6)}`, namespace, { annotations: 'Warn', tenancy: 'Warn' });
    // In force: a bad value draws a warning on a dry run.
    await waitFor(() => run(tools.kubectl(), ['--kubeconfig', loadTestEnv().kubeconfigPath, 'apply', '--dry-run=server', '-f', '-'], {
      input: deploymentYaml(namespace, 'warm-up', { [Annotations.path]: 'secret/../x' }),
    }).stderr.includes('Warning'), { description: 'the Warn binding in force' });
  });

  test('a bad Deployment is created, and kubectl prints a warning naming each bad annotation and its problem', () => {
    const r = kubectlApplyAsUser(deploymentYaml(namespace, 'bad', {
      [Annotations.path]: `secret/other-team/app`,
      [Annotations.preserveOnDelete]: 'yes',
      [Annotations.reconcile]: '5 minutes',
    }));
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('deployment.apps/bad created');
    expect(r.stderr).toMatch(/Warning: .*vault-sync\.io\/preserve-on-delete: must be "true" or "false"/);
    expect(r.stderr).toMatch(/Warning: .*vault-sync\.io\/reconcile: must be a duration like 30s, 5m or 1h/);
    expect(r.stderr).toContain(`vault-sync.io/path: the Vault path "secret/other-team/app" is outside the default prefix of namespace "${namespace}" (secret/${namespace}/)`);
  });

  test('a good Deployment passes silently', () => {
    const r = kubectlApplyAsUser(deploymentYaml(namespace, 'good', {
      [Annotations.path]: `secret/data/${namespace}/app`, [Annotations.suspend]: 'false', [Annotations.reconcile]: '5m', [Annotations.rotationCheck]: 'disabled',
    }));
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('deployment.apps/good created');
    expect(r.stderr).toBe('');
  });
});

describe('kubectl apply with Deny', () => {
  let namespace: string;
  beforeAll(async () => {
    namespace = await freshNamespace('vap-deny');
    // Created before the policy: a bad value set earlier must never block the operator or a rollout.
    const old = secret(namespace, { [Annotations.path]: 'secret/../old', [Annotations.suspend]: 'maybe' }, 'pre-existing');
    old.metadata!.finalizers = [FINALIZER];
    kubectlApply(JSON.stringify(old));
    kubectlApply(deploymentYaml(namespace, 'pre-existing', { [Annotations.path]: 'secret/../old' }));
    installPolicies(`vap-${namespace.slice(-6)}`, namespace, { annotations: 'Deny', tenancy: 'Deny' });
    await policiesInForce(namespace);
  });

  test('a bad Deployment is refused with a message naming the annotation and the problem; nothing is created', async () => {
    const r = kubectlApplyAsUser(deploymentYaml(namespace, 'bad', { [Annotations.path]: 'secret/../../sys/policy' }));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('denied request: vault-sync.io/path: the Vault path contains a "." or ".." segment (path traversal)');
    await expect(kubeClients().apps.readNamespacedDeployment({ name: 'bad', namespace })).rejects.toMatchObject({ code: 404 });
  });

  test('values and key counts near the annotation size limit of the apiserver are judged by the rules, within the CEL cost budget (failurePolicy Fail here)', async () => {
    const huge = `secret/${namespace}/${'a/'.repeat(100 * 1024)}x`;
    expect(await verdict(namespace, { [Annotations.path]: huge })).toContain('vault-sync.io/path: the Vault path is longer than 512 characters');
    expect(await verdict(namespace, { [Annotations.path]: ' '.repeat(200 * 1024) + `secret/${namespace}/app` })).toBeUndefined();
    const typos = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`vault-sync.io/typo-${i}`, 'x']));
    const many = await verdict(namespace, { [Annotations.path]: `secret/${namespace}/app`, ...typos });
    expect(many).toContain('unknown vault-sync.io annotation vault-sync.io/typo-');
    expect(many).toContain('(and 3999 more)');
    expect(many!.length).toBeLessThan(1000);
    expect(await verdict(namespace, { [Annotations.path]: `secret/${namespace}/app`, [Annotations.reconcile]: ' '.repeat(MAX_SHORT_VALUE_LENGTH - 2) + '5m' })).toBeUndefined();
    expect(await verdict(namespace, { [Annotations.path]: `secret/${namespace}/app`, [Annotations.reconcile]: ' '.repeat(200 * 1024) + '5m' })).toContain(`vault-sync.io/reconcile: is longer than ${MAX_SHORT_VALUE_LENGTH} characters`);
    // custom-metadata at its costliest: every key the user may have, each near its bounds, in the length allowed.
    const cm = (value: string) => verdict(namespace, { [Annotations.path]: `secret/${namespace}/app`, [Annotations.customMetadata]: value });
    const widest = JSON.stringify(Object.fromEntries(Array.from({ length: CUSTOM_METADATA_LIMITS.userKeys }, (_, i) => [`${i}-${'k'.repeat(124)}`, '"'.repeat(100) + 'é'.repeat(150) + 'x'.repeat(90)])));
    expect(widest.length).toBeGreaterThan(CUSTOM_METADATA_LIMITS.annotationLength - 4096);
    expect(widest.length).toBeLessThanOrEqual(CUSTOM_METADATA_LIMITS.annotationLength);
    expect(annotationProblem(Annotations.customMetadata, widest, { namespace, allowedMounts: ['secret'], tenantPathTemplate: undefined })).toBeUndefined();
    expect(await cm(widest)).toBeUndefined();
    expect(await cm(`{"a":"${'\\"'.repeat(CUSTOM_METADATA_LIMITS.annotationLength / 2 - 5)}"}`)).toContain(`${Annotations.customMetadata}: has a value longer than 512 bytes`);
    expect(await cm(`{"a":"${' '.repeat(200 * 1024)}"}`)).toContain(`${Annotations.customMetadata}: is longer than ${CUSTOM_METADATA_LIMITS.annotationLength} characters`);
  });

  test('a good Deployment passes silently', () => {
    const r = kubectlApplyAsUser(deploymentYaml(namespace, 'good', { [Annotations.path]: `secret/${namespace}/app`, [Annotations.preserveOnDelete]: 'TRUE' }));
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toContain('deployment.apps/good created');
  });

  test('objects without vault-sync.io annotations are not judged', () => {
    const r = kubectlApplyAsUser(deploymentYaml(namespace, 'plain', { 'example.com/suspend': 'maybe', 'example.com/path': '../..' }));
    expect(r).toMatchObject({ status: 0, stderr: '' });
  });

  test('updates that leave the vault-sync.io annotations alone, status updates and deletes of an object with a bad value pass', async () => {
    const { apps, core } = kubeClients();
    // A rollout-like change and the operator's finalizer update: annotations untouched.
    const deployment = await apps.readNamespacedDeployment({ name: 'pre-existing', namespace });
    deployment.spec!.template.metadata!.labels = { ...deployment.spec!.template.metadata!.labels, rollout: '2' };
    deployment.metadata!.finalizers = [FINALIZER];
    const updated = await apps.replaceNamespacedDeployment({ name: 'pre-existing', namespace, body: deployment });
    expect(updated.metadata?.finalizers).toEqual([FINALIZER]);
    // The status subresource is not matched at all.
    updated.status = { ...updated.status, observedGeneration: updated.metadata!.generation };
    await apps.replaceNamespacedDeploymentStatus({ name: 'pre-existing', namespace, body: updated });
    // Delete: the finalizer holds it (deletionTimestamp set), then the operator releases it.
    await core.deleteNamespacedSecret({ name: 'pre-existing', namespace });
    const terminating = await core.readNamespacedSecret({ name: 'pre-existing', namespace });
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    terminating.metadata!.finalizers = [];
    await core.replaceNamespacedSecret({ name: 'pre-existing', namespace, body: terminating });
    await expect(core.readNamespacedSecret({ name: 'pre-existing', namespace })).rejects.toMatchObject({ code: 404 });
    await apps.deleteNamespacedDeployment({ name: 'pre-existing', namespace });
  });

  test('an update that changes a vault-sync.io annotation to a bad value is refused', async () => {
    const r = run(tools.kubectl(), ['--kubeconfig', loadTestEnv().kubeconfigPath, '-n', namespace, 'annotate', '--overwrite', 'deployment/good', `${Annotations.reconcile}=every 5m`]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('vault-sync.io/reconcile: must be a duration');
  });
});

describe('drift guard: the apiserver and the operator agree on every value of a seeded corpus', () => {
  const SEED = 20261129;
  const ws = fc.constantFrom('', '', '', '', '', '', ' ', '\t', '\n', '\r\n', '\u00a0', '\u2028', '\ufeff', '\u200b', '\u3000');
  const padded = (inner: fc.Arbitrary<string>) => fc.tuple(ws, inner, ws).map(([a, v, b]) => a + v + b);
  const cased = (word: string) => fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((up) => [...word].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));

  function pathValues(namespace: string): fc.Arbitrary<string> {
    const segment = fc.oneof(
      { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/) },
      { weight: 1, arbitrary: fc.constantFrom('.', '..', '...', '', 'a\\b', '%2e%2e', 'a b', 'é', '\uff0f', 'a\u200bb', 'a\u202eb', 'x?y', 'x#y', 'x*', '\u0000', 'ａ', 'x'.repeat(254), 'x'.repeat(253)) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
    );
    // Weighted towards the valid form, so that both verdicts are well represented.
    const mount = fc.constantFrom('secret', 'secret', 'secret', 'secret', 'secret', 'kv', 'sys', 'auth', 'Secret', 'secret ', '');
    const apiSegment = fc.constantFrom([], [], [], ['data'], ['data'], ['metadata'], ['destroy'], ['config'], ['data', 'data']);
    const tenant = fc.constantFrom([namespace], [namespace], [namespace], [namespace], ['other-team'], ['data'], [`${namespace}-x`], []);
    const structured = fc
      .tuple(mount, apiSegment, tenant, fc.array(segment, { maxLength: 4 }), fc.constantFrom('', '', '', '/', '//'), fc.constantFrom('', '', '', '', '/'))
      .map(([m, api, t, rest, trailing, leading]) => leading + [m, ...api, ...t, ...rest].join('/') + trailing);
    const many = fc.integer({ min: 30, max: 34 }).map((n) => ['secret', namespace, ...Array.from({ length: n - 2 }, (_, i) => `s${i}`)].join('/'));
    return padded(fc.oneof({ weight: 12, arbitrary: structured }, { weight: 1, arbitrary: many }));
  }
  const words = (list: string[]) => padded(fc.oneof(fc.constantFrom(...list).chain(cased), fc.constantFrom('yes', 'no', '1', '0', 'on', 'ture', 'falſe', 'dİsabled', 'enabled!', '', 'true false')));
  const durations = padded(
    fc.tuple(fc.constantFrom('5', '15', '0', '1.5', '.5', '5.', '-1', '1e3', '٣', '05', '', '1,5'), fc.constantFrom('ms', 's', 'm', 'h', 'd', 'S', 'M', '', ' m', 'min', 'mss'))
      .map(([n, u]) => n + u),
  );

  // custom-metadata: objects near each bound, with keys that are marks, duplicated, escaped, or not printable.
  const cmKey = fc.oneof(
    { weight: 8, arbitrary: fc.stringMatching(/^[A-Za-z0-9._/-]{1,12}$/) },
    { weight: 1, arbitrary: fc.constantFrom('managed-by', 'Managed-By', 'cluster', 'source-x', 'SOURCE-uid', 'previous-team', 'content-hash', 'base64-keys', 'clusters', 'my-source', 'k'.repeat(128), 'k'.repeat(129), 'a b', '', 'é', '\\u0061', 'a"b', 'a\\b') },
  );
  const cmValue = fc.oneof(
    { weight: 6, arbitrary: fc.string({ maxLength: 16 }).map((v) => v.replace(/["\\]/g, '')) },
    { weight: 1, arbitrary: fc.constantFrom('\\"quoted\\"', 'a\\/b', '\\\\', '\\u0041', '\\n', 'tab\there', 'zw\u200bsp', 'é'.repeat(256), 'é'.repeat(257), '\\"'.repeat(512), '\\"'.repeat(513), 'x'.repeat(512), 'x'.repeat(513), '日本語') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }).map((v) => v.replace(/["\\]/g, '')) },
  );
  const cmObject = fc
    .tuple(fc.array(fc.tuple(cmKey, cmValue), { maxLength: 6 }), fc.boolean(), fc.constantFrom('', ' ', '\n', '\t', '\u00a0'))
    .map(([pairs, duplicate, space]) => {
      const members = pairs.map(([k, v]) => `"${k}":${space}"${v}"`);
      if (duplicate && members.length > 0) members.push(members[0]);
      return `{${space}${members.join(`,${space}`)}${space}}`;
    });
  const cmKeys = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v'])));
  const cmValues = fc.oneof(
    { weight: 10, arbitrary: cmObject },
    { weight: 1, arbitrary: fc.constantFrom('[]', '{"a":1}', '{"a":{"b":"c"}}', '{"a":"b",}', 'team=payments', '', '{}', ' {} ', cmKeys(56), cmKeys(57), `{"a":"${'x'.repeat(32_760)}"}`, `{"a":"${'x'.repeat(32_761)}"}`) },
  );

  let namespace: string;
  let context: AnnotationContext;
  beforeAll(async () => {
    namespace = await freshNamespace('vap-drift');
    context = { namespace, allowedMounts: MOUNTS, tenantPathTemplate: TEMPLATE };
    installPolicies(`vap-${namespace.slice(-6)}`, namespace, { annotations: 'Deny', tenancy: 'Deny' });
    await policiesInForce(namespace);
  });

  test('several hundred values of path, switches, rotation-check and reconcile: admitted exactly when the operator accepts them', async () => {
    const validPath = `secret/${namespace}/app`;
    const cases: Array<{ key: string; value: string }> = [];
    const take = (key: string, arbitrary: fc.Arbitrary<string>, n: number) => {
      for (const value of fc.sample(arbitrary, { seed: SEED, numRuns: n })) if (wellFormed(value)) cases.push({ key, value });
    };
    // Hand-picked edges first (each one defect on a valid path), then the seeded corpus.
    const long = (n: number) => `secret/${namespace}/${'x'.repeat(n - `secret/${namespace}/`.length)}`;
    for (const value of [
      `secret/${namespace}/a\\b`, `secret/${namespace}/..`, `secret/${namespace}/./x`, `secret/${namespace}/é`, `secret/${namespace}/a%2fb`,
      `secret/data/${namespace}/x`, `secret/metadata/${namespace}/x`, 'secret/data', 'secret/', 'secret', `/secret/${namespace}/x`,
      `secret/${namespace}/x/`, `secret/${namespace}/x//`, ` secret/${namespace}/x\n`, `\u00a0secret/${namespace}/x`, `secret/${namespace}/x\u200b`,
      'secret/other-team/x', `secret/${namespace}-x/y`, `secret/data/data/${namespace}`, `secret/${namespace}`, `kv/${namespace}/x`,
      `secret/${namespace}/${'y'.repeat(253)}`, `secret/${namespace}/${'y'.repeat(254)}`, long(512), long(513),
      ['secret', namespace, ...Array.from({ length: 30 }, (_, i) => `s${i}`)].join('/'), ['secret', namespace, ...Array.from({ length: 31 }, (_, i) => `s${i}`)].join('/'),
    ]) cases.push({ key: Annotations.path, value });
    take(Annotations.path, pathValues(namespace), 220);
    for (const key of BOOLEAN_ANNOTATIONS) take(key, words(['true', 'false']), 40);
    take(Annotations.rotationCheck, words(['enabled', 'disabled']), 40);
    take(Annotations.updatePolicy, words(['Replace', 'IfNotExists']), 40);
    take(Annotations.customMetadata, cmValues, 160);
    take(Annotations.reconcile, durations, 60);
    take('vault-sync.io/unknown', fc.constant('x'), 1);

    const results = await inBatches(cases, 16, async ({ key, value }) => {
      const annotations = key === Annotations.path ? { [key]: value } : { [Annotations.path]: validPath, [key]: value };
      return { key, value, operator: annotationProblem(key, value, context), apiserver: await verdict(namespace, annotations) };
    });
    const disagreements = results
      .filter((r) => (r.operator === undefined) !== (r.apiserver === undefined))
      .map((r) => ({ key: r.key, value: JSON.stringify(r.value), operator: r.operator ?? 'accepts', apiserver: r.apiserver ?? 'admits' }));
    expect(disagreements).toEqual([]);
    // The corpus exercises both verdicts for every annotation (not all accepted, not all refused).
    for (const key of [Annotations.path, ...BOOLEAN_ANNOTATIONS, Annotations.rotationCheck, Annotations.updatePolicy, Annotations.customMetadata, Annotations.reconcile]) {
      const mine = results.filter((r) => r.key === key);
      const accepted = mine.filter((r) => r.operator === undefined).length;
      expect({ key, accepted: accepted >= 8, refused: mine.length - accepted >= 8 }).toEqual({ key, accepted: true, refused: true });
    }
    expect(results.length).toBeGreaterThan(350);
    // Each refusal names the annotation it is about.
    for (const r of results.filter((x) => x.apiserver !== undefined)) expect(r.apiserver).toContain(r.key === 'vault-sync.io/unknown' ? 'unknown vault-sync.io annotation' : `${r.key}: `);
  });
});

/** No lone UTF-16 surrogate: such a string has no UTF-8 form to send. */
const wellFormed = (text: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);

/** Runs fn over items with at most `width` requests in flight; results in input order. */
async function inBatches<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  }));
  return results;
}
