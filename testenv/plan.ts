// `npm run plan [-- --output json ...]`: `vault-sync-operator plan` against the local environment, the one of
// `npm run env:up` (.local) or of a running `npm run local` (.local/local-run), unless KUBECONFIG and
// VAULT_ADDR already point somewhere. Locally it uses the environment's root Vault token unless VAULT_TOKEN
// is set; in a cluster, give plan a token that may only read <mount>/metadata/* (see DEPLOYMENT.md).
import { join } from 'node:path';
import { runPlanCommand } from '../src/plan/command.js';
import { repoRoot } from './binaries.js';
import { readEnvInfo } from './environment.js';

async function main(): Promise<number> {
  const env = { ...process.env };
  if (!env.KUBECONFIG || !env.VAULT_ADDR) {
    const info = readEnvInfo(join(repoRoot, '.local')) ?? readEnvInfo(join(repoRoot, '.local', 'local-run'));
    if (!info) {
      process.stderr.write('npm run plan: no local environment found: start one with `npm run env:up` (or `npm run local`), or set KUBECONFIG and VAULT_ADDR\n');
      return 3;
    }
    env.KUBECONFIG = info.kubeconfigPath;
    env.VAULT_ADDR = info.vaultAddr;
    env.VAULT_TOKEN ??= info.vaultRootToken;
  }
  process.env.KUBECONFIG = env.KUBECONFIG; // client-node's loadFromDefault reads process.env
  const code = await runPlanCommand(process.argv.slice(2), env, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  return code;
}

main().then((code) => process.exit(code));
