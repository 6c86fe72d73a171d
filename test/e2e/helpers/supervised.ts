// The whole operator (engine + operations HTTP server) in this process, against the test environment.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/observability/logger.js';
import { startSupervisor, type Supervisor } from '../../../src/supervisor.js';
import { loadTestEnv, waitFor } from './env.js';
import { operatorArgs } from './operator.js';

export async function runSupervised(namespaces: string[], extraArgs: string[] = []): Promise<Supervisor> {
  const env = loadTestEnv();
  const config = loadConfig(
    [
      ...(await operatorArgs(namespaces)),
      '--metrics-port=0',
      '--metrics-bind-address=127.0.0.1',
      ...extraArgs,
    ],
    { KUBECONFIG: env.kubeconfigPath, POD_NAME: 'vault-sync-operator-e2e-0' },
  );
  process.env.KUBECONFIG = env.kubeconfigPath;
  const supervisor = await startSupervisor(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  await supervisor.started;
  await waitFor(async () => supervisor.operator()?.cachesSynced(), { description: 'the operator caches synced' });
  return supervisor;
}

/** A self-signed certificate for 127.0.0.1 (the CA is the certificate itself). */
export function selfSignedCertificate(): { certFile: string; keyFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vso-tls-'));
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=vault-sync-operator',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { certFile, keyFile };
}

export function tokenFile(token: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'vso-token-')), 'token');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}
