// Start-up and steady memory against the cluster size: N Secrets of 4 KiB (created once, in parallel, and
// reused: a larger size only adds Secrets), then, each in a fresh process: @kubernetes/client-node listing them
// in pages of 500 (the reference) and unpaged (where one body can hold them), and the operator from start to
// caches synced, then idle with its watches open (steady RSS), then a full GC (the heap it retains). The `image` variant runs the operator with the Node settings of
// the image, read from the Dockerfile; `plain` with Node's defaults. Heap per Secret: the retained heap over
// that of the same operator watching an empty namespace, divided by N.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, serviceAccountToken, type LocalEnvironment } from '../testenv/environment.js';
import { repoRoot } from '../testenv/binaries.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';
import { imageNodeSettings } from './image-settings.js';
import { fillSecrets } from './secret-filler.js';

const NAMESPACE = 'bench-startup';
const EMPTY_NAMESPACE = 'bench-startup-empty';
const SECRET_BYTES = 4096;
const CREATE_CONCURRENCY = 32;
const child = join(fileURLToPath(new URL('.', import.meta.url)), 'startup-child.js');

interface Variant {
  nodeArgs: string[];
  env: Record<string, string>;
}

/** How the operator's process is started: `image` is the image's settings, `plain` Node's defaults. */
export function variants(): Record<string, Variant> {
  return { plain: { nodeArgs: [], env: {} }, image: { nodeArgs: [], env: imageNodeSettings(repoRoot) } };
}

/** The reference's pages: client-go's default limit (an unpaged list cannot hold 100,000 Secrets of 4 KiB). */
const REFERENCE_PAGE_LIMIT = 500;

/** The reference list holds every Secret as client-node's typed objects: give it room (it is not what is measured). */
const REFERENCE: Variant = { nodeArgs: ['--max-old-space-size=16384'], env: {} };

function runChild(args: string[], variant: Variant, kubeconfigPath: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    // Node and allocator settings come from the variant alone, not from whatever ran the bench.
    const { NODE_OPTIONS: _nodeOptions, MALLOC_ARENA_MAX: _arenas, ...inherited } = process.env;
    const p = spawn(process.execPath, [...variant.nodeArgs, child, ...args], { env: { ...inherited, ...variant.env, KUBECONFIG: kubeconfigPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`startup child failed (${code}): ${err.slice(-2000)}`))));
  });
}

/** The last line of a child's error (its stack's message), bounded. */
const lastLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n').filter((l) => /Error/.test(l))[0]?.trim().slice(0, 200) ?? 'failed';

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function startupBench(env: LocalEnvironment, work: string, sizes: number[], say: (m: string) => void, idleSeconds = 10, repeat = 3) {
  const VARIANTS = variants();
  const kc = loadKubeConfig(env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of [NAMESPACE, EMPTY_NAMESPACE]) {
    await core.createNamespace({ body: { metadata: { name } } }).catch((e) => void ((e as { code?: number }).code === 409 || Promise.reject(e)));
  }
  const tokenPath = join(work, `startup-sa-token-${randomBytes(3).toString('hex')}`);
  writeFileSync(tokenPath, await serviceAccountToken(env.kubeconfigPath, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, 3600), { mode: 0o600 });
  const operatorArgs = (extra: string[] = []) => [`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=kubernetes', `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`, `--vault-kubernetes-token-path=${tokenPath}`, '--cluster-name=bench', ...extra, '--'];
  // The operator's fixed heap: the same process watching a namespace without Secrets.
  say('the operator watching an empty namespace (the fixed heap that heap per Secret is counted over)');
  const baseline = await runChild(['operator', ...operatorArgs([`--watch-namespaces=${EMPTY_NAMESPACE}`]), String(idleSeconds)], VARIANTS.image, env.kubeconfigPath);
  const rows = [];
  const first = await core.listNamespacedSecret({ namespace: NAMESPACE, limit: 1 }); // from an earlier run
  let created = first.items.length + (first.metadata?.remainingItemCount ?? 0);
  const smallest = Math.min(...sizes);
  if (created > smallest) throw new Error(`namespace ${NAMESPACE} already holds ${created} Secrets, more than the ${smallest} to measure: use a fresh environment, or delete the namespace first`);
  let createdPerSecond: number | undefined;
  for (const n of [...sizes].sort((a, b) => a - b)) {
    if (n > created) createdPerSecond = await fillSecrets(kc, { namespace: NAMESPACE, from: created, to: n, secretBytes: SECRET_BYTES, concurrency: CREATE_CONCURRENCY }, say);
    created = Math.max(created, n);
    say(`start-up with ${n} Secrets of ${SECRET_BYTES} B: client-node lists (pages of ${REFERENCE_PAGE_LIMIT}, unpaged), then the operator (${Object.keys(VARIANTS).join(', ')}), ${repeat} times`);
    // A shared machine is noisy: each figure is the median of `repeat` runs, the runs interleaved.
    const runs: Array<Record<string, Record<string, number>>> = [];
    let unpagedFailure: string | undefined; // once it failed at this size, it fails again: not repeated
    for (let r = 0; r < repeat; r++) {
      const run: Record<string, Record<string, number>> = { clientNode: await runChild(['client-node', String(REFERENCE_PAGE_LIMIT)], REFERENCE, env.kubeconfigPath) };
      if (!unpagedFailure) {
        try {
          run.clientNodeUnpaged = await runChild(['client-node', '0'], REFERENCE, env.kubeconfigPath);
        } catch (error) {
          unpagedFailure = lastLine(error);
          say(`the unpaged client-node list of ${n} Secrets failed: ${unpagedFailure}`);
        }
      }
      for (const [name, variant] of Object.entries(VARIANTS)) run[name] = await runChild(['operator', ...operatorArgs(), String(idleSeconds)], variant, env.kubeconfigPath);
      runs.push(run);
    }
    const median = (pick: (run: Record<string, Record<string, number>>) => number) => {
      const sorted = runs.map(pick).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)];
    };
    const reference = median((run) => run.clientNode.seconds);
    const row: Record<string, unknown> = {
      secrets: n,
      clientNodeListSeconds: round(reference),
      clientNodeListRssMiB: median((run) => run.clientNode.rssMiB),
      clientNodeUnpagedSeconds: unpagedFailure && runs.every((run) => !run.clientNodeUnpaged) ? 'fails' : round(median((run) => run.clientNodeUnpaged?.seconds ?? NaN)),
    };
    if (unpagedFailure) row.clientNodeUnpagedError = unpagedFailure;
    for (const name of Object.keys(VARIANTS)) {
      const synced = median((run) => run[name].seconds);
      Object.assign(row, {
        [`${name}:syncedSeconds`]: round(synced),
        [`${name}:vsClientNode`]: round(synced / reference),
        [`${name}:vsUnpaged`]: typeof row.clientNodeUnpagedSeconds === 'number' ? round(synced / row.clientNodeUnpagedSeconds) : 'n/a',
        [`${name}:steadyRssMiB`]: median((run) => run[name].steadyRssMiB),
        [`${name}:peakRssMiB`]: median((run) => run[name].peakRssMiB),
        [`${name}:heapPerSecretBytes`]: Math.round(median((run) => run[name].retainedHeapBytes - baseline.retainedHeapBytes) / n),
      });
    }
    rows.push(row);
  }
  return {
    secretBytes: SECRET_BYTES,
    idleSeconds,
    repeat,
    variants: VARIANTS,
    createdPerSecond: createdPerSecond === undefined ? undefined : Math.round(createdPerSecond),
    emptyNamespace: { steadyRssMiB: baseline.steadyRssMiB, retainedHeapMiB: round(baseline.retainedHeapBytes / 2 ** 20, 1) },
    runs: rows,
  };
}
