import { slimDeployment, slimSecret } from '../../src/kube/objects.js';

describe('slim cache objects: the Secret cache never holds values', () => {
  test('a Secret keeps metadata and a keyed hash of its data, not the data', () => {
    const slim = slimSecret(
      { metadata: { name: 's', namespace: 'n', uid: 'u', resourceVersion: '7', annotations: { a: 'b' } }, data: { password: Buffer.from('hunter2').toString('base64') }, stringData: { x: 'plain' } },
      () => 'hash-of-data',
    );
    expect(slim).toEqual({ kind: 'Secret', namespace: 'n', name: 's', uid: '', resourceVersion: '', annotations: {}, finalizers: [], deletionTimestamp: undefined, dataHash: 'hash-of-data' });
    expect(JSON.stringify(slim)).not.toContain(Buffer.from('hunter2').toString('base64'));
  });

  test('a Secret that is a source (path annotation, or our finalizer) keeps its uid and resourceVersion; another does not', () => {
    const meta = { name: 's', namespace: 'n', uid: 'u', resourceVersion: '7' };
    const annotated = slimSecret({ metadata: { ...meta, annotations: { 'vault-sync.io/path': 'secret/n/s' } } }, () => 'h');
    const finalized = slimSecret({ metadata: { ...meta, finalizers: ['vault-sync.io/finalizer'] } }, () => 'h');
    const read = slimSecret({ metadata: { ...meta, finalizers: ['example.com/other'] } }, () => 'h');
    expect([annotated, finalized, read].map((s) => [s.uid, s.resourceVersion])).toEqual([['u', '7'], ['u', '7'], ['', '']]);
  });

  test("only the operator's own annotations are kept: kubectl's last-applied-configuration holds the values", () => {
    const value = Buffer.from('hunter2').toString('base64');
    const lastApplied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n' }, data: { password: value } });
    const annotations = { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied, 'vault-sync.io/path': 'secret/n/s', 'vault-sync.io/typo': 'x', 'example.com/vault-sync.io/path': 'y' };
    const slim = slimSecret({ metadata: { name: 's', namespace: 'n', annotations: JSON.parse(JSON.stringify(annotations)), finalizers: ['vault-sync.io/finalizer'] }, data: { password: value } }, () => 'h');
    expect(Object.entries(slim.annotations).sort()).toEqual([['vault-sync.io/path', 'secret/n/s'], ['vault-sync.io/typo', 'x']]);
    expect(JSON.stringify(slim)).not.toContain(value);
    expect(slim.finalizers).toEqual(['vault-sync.io/finalizer']);
    const deployment = slimDeployment({ metadata: { name: 'd', namespace: 'n', annotations: { 'deployment.kubernetes.io/revision': '3', 'vault-sync.io/path': 'secret/n/d' } }, spec: { selector: {}, template: { spec: { containers: [] } } } });
    expect(deployment.annotations).toEqual({ 'vault-sync.io/path': 'secret/n/d' });
  });

  test('objects without annotations or finalizers of their own share one empty, frozen value; the namespace name is shared', () => {
    const [a, b] = ['a', 'b'].map((name) => slimSecret(JSON.parse(JSON.stringify({ metadata: { name, namespace: 'team', annotations: { 'other.io/x': '1' } } })), () => 'h'));
    expect(a.annotations).toBe(b.annotations);
    expect(a.finalizers).toBe(b.finalizers);
    expect(Object.isFrozen(a.annotations) && Object.isFrozen(a.finalizers)).toBe(true);
    expect(a.namespace).toBe('team');
  });

  test('an unannotated Deployment is kept without its pod template; an annotated one with it', () => {
    const spec = { selector: {}, template: { spec: { containers: [{ name: 'c' }] } } };
    expect(slimDeployment({ metadata: { name: 'd', namespace: 'n' }, spec }).podSpec).toBeUndefined();
    expect(slimDeployment({ metadata: { name: 'd', namespace: 'n', annotations: { 'vault-sync.io/path': 'secret/n/d' } }, spec }).podSpec).toEqual(spec.template.spec);
  });
});
