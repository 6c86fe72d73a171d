// `npm run local`: the embedded default. A real kube-apiserver + etcd + OpenBao on loopback, the example
// workload applied with kubectl, the plan of it (what the operator will do), then the operator (logged in
// with Vault's Kubernetes auth, as in a cluster) and what landed in Vault printed. Ctrl-C stops everything. `--once` exits after the example synced.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { makePlan } from '../src/plan/command.js';
import { renderText } from '../src/plan/report.js';
import { startSupervisor, type Supervisor } from '../src/supervisor.js';
import { ensureBinaries, repoRoot } from './binaries.js';
import { serviceAccountToken, startEnvironment } from './environment.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line = '') => process.stdout.write(line + '\n');

const EXPECTED_PATHS = ['demo/web/db-credentials', 'demo/web/api-token', 'demo/shared-config'];

async function main(): Promise<number> {
  const once = process.argv.includes('--once');
  const binaries = ensureBinaries();
  const stateDir = join(repoRoot, '.local', 'local-run');
  mkdirSync(stateDir, { recursive: true });
  say('Starting the local environment (etcd, kube-apiserver, OpenBao on loopback)...');
  const env = await startEnvironment({ stateDir, log: (m) => say(`  ${m}`) });
  let supervisor: Supervisor | undefined;
  const shutdown = async () => {
    await supervisor?.stop().catch(() => undefined);
    await env.stop();
  };
  try {
    const tokenPath = join(stateDir, 'operator-sa-token');
    const { namespace, name } = env.vaultKubernetesAuth.serviceAccount;
    writeFileSync(tokenPath, await serviceAccountToken(env.kubeconfigPath, namespace, name), { mode: 0o600 });
    process.env.KUBECONFIG = env.kubeconfigPath;
    const config = loadConfig(
      [
        `--vault-addr=${env.vaultAddr}`,
        '--vault-auth-method=kubernetes',
        `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`,
        `--vault-kubernetes-token-path=${tokenPath}`,
        '--cluster-name=local',
        `--metrics-port=${process.env.METRICS_PORT ?? '0'}`, // any free port unless asked
        '--metrics-bind-address=127.0.0.1',
      ],
      process.env,
    );
    const example = join(repoRoot, 'examples', 'demo.yaml');
    say(`Applying ${relative(process.cwd(), example)} with kubectl (the operator is not running yet)...`);
    const applied = await execFileAsync(binaries.kubectl, ['--kubeconfig', env.kubeconfigPath, 'apply', '-f', example]);
    say(applied.stdout.trimEnd().replace(/^/gm, '  '));

    // What `vault-sync-operator plan` would print: the same reads and decisions as the operator, no write.
    say();
    say('The plan (vault-sync-operator plan: what the operator will do, and why; it writes nothing):');
    const kubeConfig = loadKubeConfig(env.kubeconfigPath);
    const report = await makePlan(config, createLogger('warn'), kubeConfig, (warning) => say(`  warning: ${warning}`));
    say(renderText(report).trimEnd().replace(/^/gm, '  '));
    say();

    say('Starting the operator (Kubernetes auth with the vault-sync-system/vault-sync-operator service account)...');
    supervisor = await startSupervisor(config, createLogger(process.env.LOG_LEVEL ?? 'info'));
    await supervisor.started;

    say('Waiting for the example to reach Vault...');
    const landed = await waitForVault(env.vaultAddr, env.vaultRootToken, EXPECTED_PATHS, 30_000);
    say();
    say('In Vault now (the example\'s made-up values):');
    for (const [path, body] of landed) {
      say(`  secret/${path}  version ${body.metadata.version}`);
      for (const [key, value] of Object.entries(body.data)) say(`      ${key} = ${value}`);
    }
    const kubectl = 'kubectl'; // env.sh puts the cached kubectl (and bao, helm) first on PATH
    say();
    say('Look for yourself (in another terminal):');
    say(`  source ${relative(process.cwd(), join(stateDir, 'env.sh'))}   # KUBECONFIG, VAULT_ADDR, VAULT_TOKEN, and kubectl/bao on PATH`);
    say(`  ${kubectl} get deployments,secrets -n demo`);
    say(`  ${kubectl} get events -n demo`);
    say('  curl -s -H "X-Vault-Token: $VAULT_TOKEN" $VAULT_ADDR/v1/secret/data/demo/web/db-credentials');
    say(`  ${kubectl} get vaultsyncs -A`);
    say('  npm run plan   # what the operator would do now, and why (exit code 0: nothing to do)');
    if (supervisor.server) {
      say(`  open ${supervisor.server.url}/   # the dashboard; metrics at ${supervisor.server.url}/metrics, health at ${supervisor.server.url}/health`);
    }
    say(`  ${kubectl} -n demo patch secret db-credentials -p '{"stringData":{"password":"changed"}}'   # Vault follows`);
    say(`  ${kubectl} -n demo delete deployment web   # the operator deletes secret/demo/web/* first`);
    if (once) return 0;
    say();
    say('The operator is running. Ctrl-C stops everything.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    say('Stopping...');
    return 0;
  } catch (error) {
    process.stderr.write(`npm run local failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.stderr.write(`Logs of the environment are in ${stateDir}\n`);
    return 1;
  } finally {
    await shutdown();
  }
}

type KvRead = { data: Record<string, string>; metadata: { version: number } };

async function waitForVault(addr: string, token: string, paths: string[], timeoutMs: number): Promise<Map<string, KvRead>> {
  const deadline = Date.now() + timeoutMs;
  const found = new Map<string, KvRead>();
  while (Date.now() < deadline) {
    for (const path of paths) {
      if (found.has(path)) continue;
      const res = await fetch(`${addr}/v1/secret/data/${path}`, { headers: { 'X-Vault-Token': token } });
      if (res.status === 200) found.set(path, ((await res.json()) as { data: KvRead }).data);
    }
    if (found.size === paths.length) return found;
    await sleep(250);
  }
  throw new Error(`the example did not reach Vault within ${timeoutMs / 1000}s; missing: ${paths.filter((p) => !found.has(p)).join(', ')}`);
}

main().then((code) => process.exit(code));
