// What drift checks cost, through the real operator against OpenBao (issue 16, item 1): Deployments of 40
// Secrets each, one folder per Deployment, all with `vault-sync.io/reconcile`. The operator runs with the rate
// limit lifted, so the requests counted at the loopback proxy over two periods are the demand, not what a 10/s
// limiter lets through. Counted three times on the same installation: with one shared scan per root (OpenBao's
// SCAN: all the Deployments are below one namespace folder), then with the proxy refusing scans as a server without
// them does (405: one detailed listing per folder, OpenBao >= 2.2), then with the proxy answering every detailed
// request as HashiCorp Vault does (no such endpoint: a metadata read per path). The figures are per period,
// whatever its length (one check per source per period), and as a fraction of a 10/s budget over a 5-minute period.
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Config } from '../src/config.js';
import { startOperator } from '../src/operator.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';
import type { LocalEnvironment } from '../testenv/environment.js';
import type { FaultProxy, RecordedRequest } from '../test/e2e/helpers/fault-proxy.js';

export interface DriftCostContext {
  env: LocalEnvironment;
  proxy: FaultProxy;
  configFor(extra: string[]): Promise<Config>;
  say(message: string): void;
}

/** Secrets per Deployment (a source may sync at most 64): one folder of 40 paths each. */
const PATHS_PER_FOLDER = 40;
/** The budget and period the target is stated for. */
const BUDGET_PER_SECOND = 10;
const TARGET_PERIOD_SECONDS = 300;
/** Periods counted per mode. */
const PERIODS = 2;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function driftCost(ctx: DriftCostContext, folders: number, periodSeconds: number) {
  const { env, proxy, say } = ctx;
  const kc = loadKubeConfig(env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  process.env.KUBECONFIG = env.kubeconfigPath;
  const ns = `bench-drift-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: ns } } });
  const paths = folders * PATHS_PER_FOLDER;
  // A scan of the namespace's folder is `/v1/secret/detailed-metadata/<ns>?scan=true`: no `/` after the name.
  const kvRequests = (from: number): RecordedRequest[] => proxy.requests.slice(from).filter((r) => /^\/v1\/secret\/(data|metadata|detailed-metadata)\//.test(r.path) && (r.path.includes(`/${ns}/`) || r.path.includes(`/${ns}?`)));
  const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`drift-cost: timed out waiting for ${what}`);
      await sleep(1000);
    }
  };

  // The rate limit lifted: the seeding goes fast, and the drift checks' demand is counted, not the limiter's cap.
  const operator = startOperator(await ctx.configFor([`--watch-namespaces=${ns}`, '--vault-rate-limit=2000', '--vault-rate-burst=200', '--workers=16']), pino({ level: 'silent' }));
  await operator.ready;
  try {
    const names = Array.from({ length: PATHS_PER_FOLDER }, (_, i) => `s${String(i).padStart(2, '0')}`);
    for (const name of names) await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: { value: name } } });
    say(`drift cost: ${paths} paths in ${folders} folders, reconcile ${periodSeconds}s: syncing`);
    const seedFrom = proxy.requests.length;
    for (let f = 0; f < folders; f++) {
      const name = `app-${String(f).padStart(3, '0')}`;
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: { name, namespace: ns, annotations: { 'vault-sync.io/path': `secret/${ns}/${name}`, 'vault-sync.io/reconcile': `${periodSeconds}s` } },
          spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'example/app:1', envFrom: names.map((s) => ({ secretRef: { name: s } })) }] } } },
        },
      });
    }
    // Synced: every path's marks written (the marks are a new path's last request).
    const marks = () => kvRequests(seedFrom).filter((r) => r.method !== 'GET' && r.path.startsWith('/v1/secret/metadata/')).length;
    await until(`${paths} paths synced`, () => marks() >= paths, 20 * 60_000);
    await sleep(periodSeconds * 1000); // every source past its first check slot

    const count = async (mode: string) => {
      const from = proxy.requests.length;
      const started = Date.now();
      await sleep(PERIODS * periodSeconds * 1000);
      const seen = kvRequests(from);
      const seconds = (Date.now() - started) / 1000;
      const perPeriod = (seen.length / seconds) * periodSeconds;
      const scans = seen.filter((r) => r.path.startsWith('/v1/secret/detailed-metadata/') && r.path.endsWith('?scan=true')).length;
      const lists = seen.filter((r) => r.path.startsWith('/v1/secret/detailed-metadata/')).length - scans;
      const reads = seen.filter((r) => r.method === 'GET' && r.path.startsWith('/v1/secret/metadata/')).length;
      const others = seen.length - scans - lists - reads;
      say(`drift cost (${mode}): ${seen.length} requests in ${round(seconds, 1)} s: ${scans} scans, ${lists} detailed LISTs, ${reads} metadata reads, ${others} others`);
      return {
        mode,
        requestsPerPeriod: Math.round(perPeriod),
        scansPerPeriod: Math.round((scans / seconds) * periodSeconds),
        detailedListsPerPeriod: Math.round((lists / seconds) * periodSeconds),
        metadataReadsPerPeriod: Math.round((reads / seconds) * periodSeconds),
        otherRequests: others,
        // One check per source per period, whatever its length: the same count over a 5-minute period.
        fractionOf10PerSecondAt5m: round(perPeriod / (BUDGET_PER_SECOND * TARGET_PERIOD_SECONDS)),
      };
    };
    const scan = await count('one scan per root (OpenBao SCAN)');
    // As a server without SCAN answers it (405): the mount learns it from the first answer and lists each folder.
    proxy.setFaults({ answer: { status: 405, errors: ['1 error occurred:\n\t* unsupported operation\n\n'], ratio: 1 }, match: (_method, path) => path.startsWith('/v1/secret/detailed-metadata/') && path.endsWith('?scan=true') });
    await sleep(periodSeconds * 1000);
    const listing = await count('detailed listing per folder (OpenBao >= 2.2, no SCAN)');
    // As HashiCorp Vault answers: no such endpoint. The mount learns it from the first answer and reads per path.
    proxy.setFaults({ answer: { status: 404, errors: ['1 error occurred:\n\t* unsupported path\n\n'], ratio: 1 }, match: (_method, path) => path.startsWith(`/v1/secret/detailed-metadata/`) });
    await sleep(periodSeconds * 1000);
    const perPath = await count('metadata read per path (HashiCorp Vault)');
    proxy.setFaults({});
    return { paths, folders, periodSeconds, budgetPerSecond: BUDGET_PER_SECOND, targetPeriodSeconds: TARGET_PERIOD_SECONDS, before: perPath, after: listing, scan };
  } finally {
    await operator.stop();
  }
}

export function driftCostTable(runs: Array<Awaited<ReturnType<typeof driftCost>>>, table: (rows: Array<Record<string, unknown>>) => string): string[] {
  const rows = runs.flatMap((r) => [r.before, r.after, r.scan].map((m) => ({ paths: r.paths, folders: r.folders, mode: m.mode, requestsPerPeriod: m.requestsPerPeriod, scans: m.scansPerPeriod, lists: m.detailedListsPerPeriod, reads: m.metadataReadsPerPeriod, 'of 10/s at 5m': `${round(m.fractionOf10PerSecondAt5m * 100, 2)}%` })));
  return ['Drift checks: requests per period (demand, rate limit lifted) and their share of a 10/s budget at reconcile: 5m', table(rows), ''];
}
