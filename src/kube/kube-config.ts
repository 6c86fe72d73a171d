import { KubeConfig } from '@kubernetes/client-node';

/**
 * The one way the operator and its tools get a kubeconfig. Without a file: client-node's default chain
 * (KUBECONFIG, then ~/.kube/config, then the pod's in-cluster service account), which reads process.env
 * at call time. With a file (tests, benchmarks, the local environment): that file only.
 * testenv/environment.ts keeps its own two lines: the e2e global setup transpiles testenv/ alone, without src/.
 */
export function loadKubeConfig(file?: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (file === undefined) kubeConfig.loadFromDefault();
  else kubeConfig.loadFromFile(file);
  return kubeConfig;
}
