import type { V1PodSpec } from '@kubernetes/client-node';
import { referencedSecrets } from '../../src/kube/references.js';

describe('referencedSecrets: which Secrets a pod template uses', () => {
  const cases: Array<{ reason: string; spec: V1PodSpec | undefined; expected: Array<{ name: string; optional: boolean }> }> = [
    { reason: 'no spec means no Secrets', spec: undefined, expected: [] },
    {
      reason: 'env secretKeyRef of a container',
      spec: { containers: [{ name: 'app', env: [{ name: 'PASS', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }] }] },
      expected: [{ name: 'db', optional: false }],
    },
    {
      reason: 'envFrom secretRef; configMapRef is not a Secret',
      spec: { containers: [{ name: 'app', envFrom: [{ secretRef: { name: 'api' } }, { configMapRef: { name: 'cfg' } }] }] },
      expected: [{ name: 'api', optional: false }],
    },
    {
      reason: 'initContainers and ephemeralContainers count too',
      spec: {
        containers: [{ name: 'app' }],
        initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: 'init-secret' } }] }],
        ephemeralContainers: [{ name: 'debug', env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'debug-token', key: 't' } } }] }],
      },
      expected: [{ name: 'debug-token', optional: false }, { name: 'init-secret', optional: false }],
    },
    {
      reason: 'secret volumes and projected volume sources',
      spec: {
        containers: [{ name: 'app' }],
        volumes: [
          { name: 'tls', secret: { secretName: 'tls-cert' } },
          { name: 'bundle', projected: { sources: [{ secret: { name: 'ca' } }, { configMap: { name: 'x' } }] } },
          { name: 'scratch', emptyDir: {} },
        ],
      },
      expected: [{ name: 'ca', optional: false }, { name: 'tls-cert', optional: false }],
    },
    {
      reason: 'a Secret used twice is listed once, sorted by name',
      spec: {
        containers: [
          { name: 'a', envFrom: [{ secretRef: { name: 'zeta' } }, { secretRef: { name: 'alpha' } }] },
          { name: 'b', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'zeta', key: 'x' } } }] },
        ],
      },
      expected: [{ name: 'alpha', optional: false }, { name: 'zeta', optional: false }],
    },
    {
      reason: 'optional only when every use is optional',
      spec: {
        containers: [{ name: 'a', envFrom: [{ secretRef: { name: 'maybe', optional: true } }, { secretRef: { name: 'mixed', optional: true } }] }],
        volumes: [{ name: 'v', secret: { secretName: 'mixed' } }],
      },
      expected: [{ name: 'maybe', optional: true }, { name: 'mixed', optional: false }],
    },
    {
      reason: 'imagePullSecrets are registry credentials, not application data',
      spec: { containers: [{ name: 'a' }], imagePullSecrets: [{ name: 'regcred' }] },
      expected: [],
    },
  ];
  test.each(cases)('$reason', ({ spec, expected }) => {
    expect(referencedSecrets(spec)).toEqual(expected);
  });
});
