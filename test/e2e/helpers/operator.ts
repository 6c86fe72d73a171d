// Runs the real operator in-process against the test environment, watching only the given namespaces
// (so test files running in parallel do not step on each other), logged in with Vault's Kubernetes auth.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/observability/logger.js';
import { startOperator, type RunningOperator } from '../../../src/operator.js';
import { serviceAccountToken } from '../../../testenv/environment.js';
import { loadTestEnv } from './env.js';

export type TestOperator = RunningOperator;

export async function writeOperatorToken(): Promise<string> {
  const env = loadTestEnv();
  const { namespace, name } = env.vaultKubernetesAuth.serviceAccount;
  const token = await serviceAccountToken(env.kubeconfigPath, namespace, name);
  const path = join(mkdtempSync(join(tmpdir(), 'vso-sa-')), 'token');
  writeFileSync(path, token, { mode: 0o600 });
  return path;
}

/** The flags every test operator runs with: the test Vault, Kubernetes auth with a fresh SA token, its namespaces. */
export async function operatorArgs(namespaces: string[]): Promise<string[]> {
  const env = loadTestEnv();
  return [
    `--vault-addr=${env.vaultAddr}`,
    '--vault-auth-method=kubernetes',
    `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`,
    `--vault-kubernetes-token-path=${await writeOperatorToken()}`,
    `--watch-namespaces=${namespaces.join(',')}`,
    '--cluster-name=e2e',
  ];
}

/** Starts the operator and waits until it is ready (caches synced, logged in to Vault). */
export async function runOperator(namespaces: string[], extraArgs: string[] = [], logSink?: (line: string) => void): Promise<TestOperator> {
  const env = loadTestEnv();
  const config = loadConfig([...(await operatorArgs(namespaces)), ...extraArgs], { KUBECONFIG: env.kubeconfigPath });
  process.env.KUBECONFIG = env.kubeconfigPath;
  const log = logSink
    ? createLogger('trace', undefined, { write: (line: string) => logSink(line) })
    : createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn');
  const operator = startOperator(config, log);
  try {
    await operator.ready;
  } catch (error) {
    await operator.stop();
    throw error;
  }
  return operator;
}
