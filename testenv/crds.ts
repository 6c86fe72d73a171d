import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binaryPaths, repoRoot } from './binaries.js';

const execFileAsync = promisify(execFile);

/** Installs the operator's CRDs (crds/*.yaml, as helm would) and waits until the apiserver serves them. */
export async function installCrds(kubeconfigPath: string): Promise<void> {
  const kubectl = binaryPaths().kubectl;
  const dir = join(repoRoot, 'crds');
  try {
    await execFileAsync(kubectl, ['--kubeconfig', kubeconfigPath, 'apply', '--server-side', '--field-manager=vault-sync-testenv', '-f', dir]);
    await execFileAsync(kubectl, ['--kubeconfig', kubeconfigPath, 'wait', '--for=condition=Established', '--timeout=60s', '-f', dir]);
    // Established comes before the storage for the new type is ready; a first list returns 429 until then.
    for (let attempt = 0; ; attempt++) {
      try {
        await execFileAsync(kubectl, ['--kubeconfig', kubeconfigPath, 'get', 'vaultsyncs.vault-sync.io,vaultsyncpolicies.vault-sync.io', '-A']);
        break;
      } catch (error) {
        if (attempt >= 40) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } catch (error) {
    const e = error as { stderr?: string; message?: string };
    throw new Error(`installing the CRDs from ${dir} failed: ${(e.stderr || e.message || String(error)).trim()}`);
  }
}
