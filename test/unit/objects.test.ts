import { slimDeployment, slimSecret } from '../../src/kube/objects.js';

describe('slim cache objects: the Secret cache never holds values', () => {
  test('a Secret keeps metadata and a keyed hash of its data, not the data', () => {
    const slim = slimSecret(
      { metadata: { name: 's', namespace: 'n', uid: 'u', resourceVersion: '7', annotations: { a: 'b' } }, data: { password: Buffer.from('hunter2').toString('base64') }, stringData: { x: 'plain' } },
      () => 'hash-of-data',
    );
    expect(slim).toEqual({ kind: 'Secret', namespace: 'n', name: 's', uid: 'u', resourceVersion: '7', annotations: { a: 'b' }, finalizers: [], deletionTimestamp: undefined, dataHash: 'hash-of-data' });
    expect(JSON.stringify(slim)).not.toContain(Buffer.from('hunter2').toString('base64'));
  });

  test('an unannotated Deployment is kept without its pod template; an annotated one with it', () => {
    const spec = { selector: {}, template: { spec: { containers: [{ name: 'c' }] } } };
    expect(slimDeployment({ metadata: { name: 'd', namespace: 'n' }, spec }).podSpec).toBeUndefined();
    expect(slimDeployment({ metadata: { name: 'd', namespace: 'n', annotations: { 'vault-sync.io/path': 'secret/n/d' } }, spec }).podSpec).toEqual(spec.template.spec);
  });
});
