// The write path's cost floor (docs/adr/0003), through the real operator: Vault requests per new path and per
// update (counted at the loopback proxy in front of OpenBao), and duplicate KV versions after a Vault reset in
// the middle of an 80-path sync (read from OpenBao's metadata: every version beyond the first is a duplicate).
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Config } from '../src/config.js';
import { startOperator } from '../src/operator.js';
import type { LocalEnvironment } from '../testenv/environment.js';
import type { FaultProxy, RecordedRequest } from '../test/e2e/helpers/fault-proxy.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

export interface WriteFloorContext {
  env: LocalEnvironment;
  proxy: FaultProxy;
  /** An operator configuration pointed at the proxy, with these extra flags. */
  configFor(extra: string[]): Promise<Config>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number) => Math.round(n * 1000) / 1000;

export async function writeFloor(ctx: WriteFloorContext) {
  const { env, proxy } = ctx;
  const kc = loadKubeConfig(env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  process.env.KUBECONFIG = env.kubeconfigPath;

  const metadataOf = async (path: string) => {
    const res = await fetch(`${env.vaultAddr}/v1/secret/metadata/${path}`, { headers: { 'X-Vault-Token': env.vaultRootToken } });
    return res.status === 200 ? ((await res.json()) as any).data : undefined;
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (let tries = 0; tries < 1200; tries++) {
      if (await check()) return;
      await sleep(250);
    }
    throw new Error(`write-floor: timed out waiting for ${what}`);
  };
  /** Every path marked by us at `version` (the marks are the last request of a new path). */
  const converged = (paths: string[], version: (metadata: any) => boolean) => async () => {
    const all = await Promise.all(paths.map(metadataOf));
    return all.every((m) => m?.custom_metadata?.['managed-by'] === 'vault-sync-operator' && version(m));
  };
  const kvRequests = (from: number, ns: string) => proxy.requests.slice(from).filter((r: RecordedRequest) => r.path.startsWith(`/v1/secret/data/${ns}/`) || r.path.startsWith(`/v1/secret/metadata/${ns}`) || r.path.startsWith(`/v1/secret/detailed-metadata/${ns}`));
  const quiet = async (ns: string) => {
    // Settled: no request for this namespace for 2 s.
    for (let seen = -1; ; ) {
      const now = kvRequests(0, ns).length;
      if (now === seen) return;
      seen = now;
      await sleep(2000);
    }
  };
  const namespace = async () => {
    const ns = `bench-floor-${randomBytes(3).toString('hex')}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    return ns;
  };
  const deployment = (ns: string, name: string, secrets: string[]) => ({
    metadata: { name, namespace: ns, annotations: { 'vault-sync.io/path': `secret/${ns}/${name}` } },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'example/app:1', envFrom: secrets.map((s) => ({ secretRef: { name: s } })) }] } },
    },
  });

  // (1) requests per new path and per update: one Deployment with 40 Secrets, and 10 annotated Secrets
  const ns = await namespace();
  const operator = startOperator(await ctx.configFor([`--watch-namespaces=${ns}`]), pino({ level: 'silent' }));
  await operator.ready;
  const names = Array.from({ length: 40 }, (_, i) => `s${i}`);
  for (const name of names) await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: { value: `${name}-1` } } });
  let mark = proxy.requests.length;
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment(ns, 'app', names) });
  await until('40 new paths', converged(names.map((n) => `${ns}/app/${n}`), (m) => m.current_version === 1));
  await quiet(ns);
  const newInFolder = kvRequests(mark, ns).length;

  mark = proxy.requests.length;
  for (let i = 0; i < 10; i++) await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: `own${i}`, annotations: { 'vault-sync.io/path': `secret/${ns}/own${i}` } }, stringData: { value: 'x' } } });
  await until('10 lone new paths', converged(Array.from({ length: 10 }, (_, i) => `${ns}/own${i}`), (m) => m.current_version === 1));
  await quiet(ns);
  const newAlone = kvRequests(mark, ns).length;

  mark = proxy.requests.length;
  for (const name of names) await core.patchNamespacedSecret({ namespace: ns, name, body: { stringData: { value: `${name}-2` } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  await until('40 updates', converged(names.map((n) => `${ns}/app/${n}`), (m) => m.current_version === 2));
  await quiet(ns);
  const updates = kvRequests(mark, ns).length;
  mark = proxy.requests.length;
  operator.resync();
  await quiet(ns);
  const atRest = kvRequests(mark, ns).length;
  await operator.stop();

  // (2) duplicate versions after a Vault reset in the middle of an 80-path sync
  const ns2 = await namespace();
  const flaky = startOperator(await ctx.configFor([`--watch-namespaces=${ns2}`, '--vault-max-retries=1', '--vault-retry-max-delay=1s']), pino({ level: 'silent' }));
  await flaky.ready;
  // Two Deployments of 40 Secrets (one source may sync at most 64).
  const forty = Array.from({ length: 40 }, (_, i) => `m${i}`);
  for (const name of forty) await core.createNamespacedSecret({ namespace: ns2, body: { metadata: { name }, stringData: { value: name } } });
  const many = ['big', 'wide'].flatMap((d) => forty.map((n) => `${d}/${n}`));
  mark = proxy.requests.length;
  for (const d of ['big', 'wide']) await apps.createNamespacedDeployment({ namespace: ns2, body: deployment(ns2, d, forty) });
  await until('30 data writes', async () => kvRequests(mark, ns2).filter((r) => r.method !== 'GET' && r.path.startsWith(`/v1/secret/data/`)).length >= 30);
  await proxy.stop();
  await sleep(3000); // the sync fails on every path still in flight, and is re-queued with backoff
  await proxy.start();
  await until('80 paths after the reset', converged(many.map((n) => `${ns2}/${n}`), () => true));
  await quiet(ns2);
  const versions = await Promise.all(many.map(async (n) => Object.keys((await metadataOf(`${ns2}/${n}`))?.versions ?? {}).length));
  await flaky.stop();

  return {
    requestsPerNewPathInFolder: round(newInFolder / names.length),
    requestsPerNewLonePath: round(newAlone / 10),
    requestsPerUpdate: round(updates / names.length),
    requestsAtRest: atRest,
    duplicateVersionsAfterVaultReset: versions.reduce((sum, v) => sum + Math.max(0, v - 1), 0),
    pathsInResetRun: many.length,
  };
}
