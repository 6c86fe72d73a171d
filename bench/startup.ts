// Start-up and steady memory against the cluster size: N Secrets of 4 KiB (created once, 32 at a time, and
// reused), then, each in a fresh process: one unpaged @kubernetes/client-node list (the reference), and the
// operator from start to caches synced, then idle with its watches open (steady RSS). Memory variants run the
// operator with the Node flags / allocator settings that the image uses (see PERFORMANCE.md).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../src/kube/kube-http.js';
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, serviceAccountToken, type LocalEnvironment } from '../testenv/environment.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

const NAMESPACE = 'bench-startup';
const SECRET_BYTES = 4096;
const child = join(fileURLToPath(new URL('.', import.meta.url)), 'startup-child.js');

/** How the operator's process is started: the image's settings are `image`. */
export const VARIANTS: Record<string, { nodeArgs: string[]; env: Record<string, string> }> = {
  plain: { nodeArgs: [], env: {} },
  image: { nodeArgs: [], env: { NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=2', MALLOC_ARENA_MAX: '2' } },
};

async function createSecrets(core: CoreV1Api, from: number, to: number, say: (m: string) => void) {
  let next = from;
  const t0 = performance.now();
  const worker = async () => {
    for (let i = next++; i < to; i = next++) {
      const name = `s${String(i).padStart(6, '0')}`;
      const body = { metadata: { name, namespace: NAMESPACE }, data: { value: randomBytes(SECRET_BYTES).toString('base64') } };
      for (let attempt = 0; ; attempt++) {
        try {
          await core.createNamespacedSecret({ namespace: NAMESPACE, body });
          break;
        } catch (error) {
          if ((error as { code?: number }).code === 409) break;
          if (attempt >= 5) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  say(`created Secrets ${from}..${to - 1} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

function runChild(args: string[], variant: { nodeArgs: string[]; env: Record<string, string> }, kubeconfigPath: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...variant.nodeArgs, child, ...args], { env: { ...process.env, ...variant.env, KUBECONFIG: kubeconfigPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`startup child failed (${code}): ${err.slice(-2000)}`))));
  });
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function startupBench(env: LocalEnvironment, work: string, sizes: number[], say: (m: string) => void, idleSeconds = 10, repeat = 3) {
  const loaded = loadKubeConfig(env.kubeconfigPath);
  const kc = PooledKubeConfig.from(loaded); // kept-alive connections: a create per TLS handshake is 10x slower
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch((e) => void ((e as { code?: number }).code === 409 || Promise.reject(e)));
  const tokenPath = join(work, `startup-sa-token-${randomBytes(3).toString('hex')}`);
  writeFileSync(tokenPath, await serviceAccountToken(env.kubeconfigPath, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, 3600), { mode: 0o600 });
  const operatorArgs = [`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=kubernetes', `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`, `--vault-kubernetes-token-path=${tokenPath}`, '--cluster-name=bench', '--'];
  const rows = [];
  const first = await core.listNamespacedSecret({ namespace: NAMESPACE, limit: 1 }); // from an earlier run
  let created = first.items.length + (first.metadata?.remainingItemCount ?? 0);
  for (const n of [...sizes].sort((a, b) => a - b)) {
    if (n > created) await createSecrets(core, created, n, say);
    created = Math.max(created, n);
    say(`start-up with ${n} Secrets of ${SECRET_BYTES} B: one unpaged client-node list, then the operator (${Object.keys(VARIANTS).join(', ')}), ${repeat} times`);
    // A shared machine is noisy: each figure is the median of `repeat` runs, the runs interleaved.
    const runs: Array<Record<string, Record<string, number>>> = [];
    for (let r = 0; r < repeat; r++) {
      const run: Record<string, Record<string, number>> = { clientNode: await runChild(['client-node'], VARIANTS.plain, env.kubeconfigPath) };
      for (const [name, variant] of Object.entries(VARIANTS)) run[name] = await runChild(['operator', ...operatorArgs, String(idleSeconds)], variant, env.kubeconfigPath);
      runs.push(run);
    }
    const median = (pick: (run: Record<string, Record<string, number>>) => number) => {
      const sorted = runs.map(pick).sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)];
    };
    const reference = median((run) => run.clientNode.seconds);
    const row: Record<string, unknown> = { secrets: n, clientNodeListSeconds: round(reference), clientNodeListRssMiB: median((run) => run.clientNode.rssMiB) };
    for (const name of Object.keys(VARIANTS)) {
      const synced = median((run) => run[name].seconds);
      Object.assign(row, {
        [`${name}:syncedSeconds`]: round(synced),
        [`${name}:vsClientNode`]: round(synced / reference),
        [`${name}:steadyRssMiB`]: median((run) => run[name].steadyRssMiB),
        [`${name}:peakRssMiB`]: median((run) => run[name].peakRssMiB),
        [`${name}:heapUsedMiB`]: median((run) => run[name].heapUsedMiB),
      });
    }
    rows.push(row);
  }
  kc.close();
  return { secretBytes: SECRET_BYTES, idleSeconds, repeat, variants: VARIANTS, runs: rows };
}
