import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../../src/kube/kube-config.js';

function kubeconfigFile(dir: string, name: string, server: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return path;
}

describe('loadKubeConfig: the one way the operator, plan, the test environment and the benchmark get a kubeconfig', () => {
  let dir: string;
  const savedKubeconfig = process.env.KUBECONFIG;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vso-kubeconfig-'));
  });
  afterEach(() => {
    if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = savedKubeconfig;
    rmSync(dir, { recursive: true, force: true });
  });

  test('without a file it follows KUBECONFIG as it is at call time', () => {
    process.env.KUBECONFIG = kubeconfigFile(dir, 'first', 'https://127.0.0.1:6001');
    expect(loadKubeConfig().getCurrentCluster()?.server).toBe('https://127.0.0.1:6001');
    process.env.KUBECONFIG = kubeconfigFile(dir, 'second', 'https://127.0.0.1:6002');
    expect(loadKubeConfig().getCurrentCluster()?.server).toBe('https://127.0.0.1:6002');
  });

  test('with a file it reads that file only, whatever KUBECONFIG says', () => {
    process.env.KUBECONFIG = kubeconfigFile(dir, 'default', 'https://127.0.0.1:6001');
    const given = kubeconfigFile(dir, 'given', 'https://127.0.0.1:6003');
    expect(loadKubeConfig(given).getCurrentCluster()?.server).toBe('https://127.0.0.1:6003');
  });

  test('a file that does not exist is an error, not an empty config', () => {
    expect(() => loadKubeConfig(join(dir, 'missing'))).toThrow(/ENOENT/);
  });
});
