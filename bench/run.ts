// `npm run bench`: the Vault write pipeline against the real local environment (etcd + kube-apiserver +
// OpenBao on loopback, started here with testenv/). Every request the operator makes is counted at a
// loopback proxy in front of OpenBao. Prints a table and the JSON; `--out=FILE` also writes the JSON.
//
//   --n=100,500,2000   backlog sizes for the convergence runs (default)
//   --quick            --n=100,500 and fewer large secrets
//   --skip=limiter,converge,operator,memory,fair,floor,drift,startup,budget,chaos
//   --only=startup,...           run only these steps (the same names as --skip)
//   --drift=2000,10000           paths for the drift-cost runs, 40 a folder (bench/drift-cost.ts)
//   --startup=10000,30000,100000 Secret counts for the start-up runs (bench/startup.ts)
//   --startup-repeat=3           runs per figure (the median is printed)
//   --env=running                use the environment of `npm run env:up` (kept, with its Secrets, for the next
//                                run) instead of starting and removing one
//   --chaos-minutes=10           length of the chaos run (bench/chaos.ts; or CHAOS_MINUTES)
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Bottleneck from 'bottleneck';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { Metrics } from '../src/observability/metrics.js';
import { vaultMetricsOf } from '../src/observability/vault-metrics.js';
import { startOperator } from '../src/operator.js';
import { ensureBinaries, repoRoot } from '../testenv/binaries.js';
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, readEnvInfo, serviceAccountToken, startEnvironment, type LocalEnvironment } from '../testenv/environment.js';
import { VaultRateLimiter } from '../src/vault/limiter.js';
import { MANAGED_BY } from '../src/sync/ownership.js';
import { startupBench } from './startup.js';
import { wholeMounts } from '../src/vault/scope.js';
import { createVaultStack } from '../src/vault/stack.js';
import { writeFloor } from './write-floor.js';
import { fairShare, fairShareTables } from './fair-share.js';
import { chaosBench, chaosTable } from './chaos.js';
import { driftCost, driftCostTable } from './drift-cost.js';
import { sharedBudgetBench, sharedBudgetTable } from './shared-budget.js';
import { auditLogMark, auditRequests, maxInAnyWindow, startFaultProxy, type FaultProxy, type RecordedRequest } from '../test/e2e/helpers/fault-proxy.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

/** The benchmark writes for no source: its requests carry the whole secret/ mount as their scope. */
const benchContext = { scope: wholeMounts(['secret'], 'the benchmark') };

const RATE = 10;
const BURST = 20;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const say = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;
const MiB = 1024 * 1024;

const args = new Map(process.argv.slice(2).map((a) => [a.replace(/^--/, '').split('=')[0], a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true']));
const quick = args.get('quick') === 'true';
const sizes = (args.get('n') ?? (quick ? '100,500' : '100,500,2000')).split(',').map(Number);
const STEPS = ['limiter', 'converge', 'operator', 'floor', 'fair', 'drift', 'memory', 'startup', 'budget', 'chaos'] as const;
const listArg = (name: string) => (args.get(name) ?? '').split(',').filter(Boolean);
for (const name of [...listArg('skip'), ...listArg('only')]) {
  if (!(STEPS as readonly string[]).includes(name)) throw new Error(`unknown bench step "${name}" (steps: ${STEPS.join(', ')})`);
}
const only = listArg('only');
const skip = new Set(only.length > 0 ? STEPS.filter((step) => !only.includes(step)) : listArg('skip'));

let env: LocalEnvironment;
let proxy: FaultProxy;
const silent = pino({ level: 'silent' });

async function operatorTokenFile(dir: string): Promise<string> {
  const path = join(dir, `sa-token-${randomBytes(3).toString('hex')}`);
  writeFileSync(path, await serviceAccountToken(env.kubeconfigPath, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, 3600), { mode: 0o600 });
  return path;
}

async function configFor(dir: string, extra: string[] = []): Promise<Config> {
  return loadConfig(
    [
      `--vault-addr=${proxy.url}`,
      '--vault-auth-method=kubernetes',
      `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`,
      `--vault-kubernetes-token-path=${await operatorTokenFile(dir)}`,
      '--cluster-name=bench',
      ...extra,
    ],
    { KUBECONFIG: env.kubeconfigPath },
  );
}

/** Requests the proxy saw from index `from` on. */
const since = (from: number): RecordedRequest[] => proxy.requests.slice(from);

// --- (0) the limiter alone, and Bottleneck's own heartbeat refill for comparison ---
async function limiterOnly() {
  const n = 120;
  const run = async (schedule: (task: () => Promise<void>) => Promise<void>) => {
    const starts: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: n }, () => schedule(async () => void starts.push(performance.now()))));
    const sorted = starts.sort((a, b) => a - b);
    const afterBurst = sorted.slice(BURST);
    const sustained = (afterBurst.length - 1) / ((afterBurst[afterBurst.length - 1] - afterBurst[0]) / 1000);
    return {
      requests: n,
      seconds: round((sorted[n - 1] - t0) / 1000),
      idealSeconds: (n - BURST) / RATE,
      sustainedPerSecond: round(sustained),
      maxIn1sAfterBurst: maxInAnyWindow(sorted, 1000, sorted[BURST - 1] + 0.001),
    };
  };
  const ours = new VaultRateLimiter({ rate: RATE, burst: BURST });
  const heartbeat = new Bottleneck({ reservoir: BURST, reservoirIncreaseAmount: 1, reservoirIncreaseInterval: 1000 / RATE, reservoirIncreaseMaximum: BURST, heartbeatInterval: 5 });
  const [exact, bottleneckHeartbeat] = await Promise.all([run((task) => ours.schedule('bench', task)), run((task) => heartbeat.schedule(task))]);
  await ours.stop();
  await heartbeat.stop();
  return { exact, bottleneckHeartbeat5ms: bottleneckHeartbeat };
}

// --- (a, b) converge N writes through the pipeline; requests per 1-s window at the proxy ---
async function converge(dir: string, n: number) {
  const metrics = new Metrics({ processMetrics: false });
  const burstPaths = new Set<string>(); // requests let go on credit saved while idle
  const stack = createVaultStack(await configFor(dir), silent, vaultMetricsOf(metrics), { onLimiterStart: (e) => void (!e.paced && e.label && burstPaths.add(e.label.replace(/^secret\//, 'secret/data/'))) });
  await stack.login();
  await sleep(1000 * (BURST / RATE) + 200); // the login and mount lookup took two tokens: refill to a full bucket
  const prefix = `bench/converge-${n}-${randomBytes(3).toString('hex')}`;
  const first = proxy.requests.length;
  const auditFrom = auditLogMark(env.vaultAuditLogPath);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => stack.vault.writeData({ mount: 'secret', key: `${prefix}/s${i}` }, new Map(Object.entries({ value: `v${i}` })), {}, benchContext)));
  const seconds = (performance.now() - t0) / 1000;
  await stack.stop();
  const seen = since(first);
  const times = seen.map((r) => r.at).sort((a, b) => a - b);
  const atVault = auditRequests(env.vaultAuditLogPath, auditFrom, (path) => path.startsWith(`secret/data/${prefix}/`));
  // "After the initial burst": windows that start after the last request of the burst, as each side saw it.
  const lastBurstAtProxy = Math.max(...seen.filter((r) => burstPaths.has(r.path.replace(/^\/v1\//, ''))).map((r) => r.at));
  const lastBurstAtVault = Math.max(...atVault.filter((r) => burstPaths.has(r.path)).map((r) => r.at));
  const ideal = Math.max(0, n - BURST) / RATE;
  return {
    n,
    seconds: round(seconds, 2),
    idealSeconds: ideal,
    efficiency: round(ideal / seconds),
    requests: times.length,
    maxIn1s: maxInAnyWindow(times, 1000),
    burstRequests: atVault.filter((r) => burstPaths.has(r.path)).length,
    maxIn1sAfterBurstProxy: maxInAnyWindow(times, 1000, lastBurstAtProxy + 0.001),
    maxIn1sAfterBurstVault: maxInAnyWindow(atVault.map((r) => r.at), 1000, lastBurstAtVault + 0.001),
    limit: RATE,
    batches: Number(/^vault_batch_size_histogram_count (\d+)$/m.exec(await metrics.registry.metrics())?.[1] ?? 0),
  };
}

// --- (c) Vault calls per changed secret, through the real operator ---
function classify(requests: RecordedRequest[], prefix: string) {
  const counts = { writeData: 0, writeMetadata: 0, readData: 0, readMetadata: 0, delete: 0, other: 0 };
  for (const r of requests) {
    const data = r.path.startsWith(`/v1/secret/data/${prefix}`);
    const metadata = r.path.startsWith(`/v1/secret/metadata/${prefix}`);
    if (data && r.method === 'POST') counts.writeData++;
    else if (data && r.method === 'GET') counts.readData++;
    else if (metadata && r.method === 'POST') counts.writeMetadata++;
    else if (metadata && r.method === 'GET') counts.readMetadata++;
    else if ((data || metadata) && r.method === 'DELETE') counts.delete++;
    else counts.other++;
  }
  return counts;
}

async function callsPerSecret(dir: string, extraArgs: string[] = []) {
  const secrets = 20;
  const kc = loadKubeConfig(env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `bench-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  process.env.KUBECONFIG = env.kubeconfigPath;
  const config = await configFor(dir, [`--watch-namespaces=${namespace}`, ...extraArgs]);
  const vaultValue = async (name: string) => {
    const res = await fetch(`${env.vaultAddr}/v1/secret/data/${namespace}/${name}`, { headers: { 'X-Vault-Token': env.vaultRootToken } });
    return res.status === 200 ? ((await res.json()) as any).data.data.value : undefined;
  };
  const waitAll = async (value: (i: number) => string) => {
    for (let tries = 0; tries < 600; tries++) {
      let ok = 0;
      for (let i = 0; i < secrets; i++) if ((await vaultValue(`s${i}`)) === value(i)) ok++;
      if (ok === secrets) return sleep(1500); // the metadata write follows the data write
      await sleep(250);
    }
    throw new Error('the operator did not converge');
  };
  const phase = async (name: string, act: () => Promise<void>, settle: () => Promise<void>) => {
    const first = proxy.requests.length;
    const t0 = performance.now();
    await act();
    await settle();
    const counts = classify(since(first), namespace);
    const kv = counts.writeData + counts.writeMetadata + counts.readData + counts.readMetadata + counts.delete;
    return { phase: name, seconds: round((performance.now() - t0) / 1000, 2), ...counts, kvCallsPerSecret: round(kv / secrets, 2), writesPerSecret: round((counts.writeData + counts.writeMetadata) / secrets, 2), readsPerSecret: round((counts.readData + counts.readMetadata) / secrets, 2) };
  };

  let operator = startOperator(config, silent);
  await operator.ready;
  const results = [];
  results.push(await phase('first sync (new paths)', async () => {
    for (let i = 0; i < secrets; i++) {
      await core.createNamespacedSecret({ namespace, body: { metadata: { name: `s${i}`, namespace, annotations: { 'vault-sync.io/path': `secret/${namespace}/s${i}` } }, stringData: { value: `v1-${i}` } } });
    }
  }, () => waitAll((i) => `v1-${i}`)));
  results.push(await phase('change of every secret', async () => {
    for (let i = 0; i < secrets; i++) {
      const s = await core.readNamespacedSecret({ namespace, name: `s${i}` });
      s.stringData = { value: `v2-${i}` };
      await core.replaceNamespacedSecret({ namespace, name: `s${i}`, body: s });
    }
  }, () => waitAll((i) => `v2-${i}`)));
  results.push(await phase('label-only edit (no change)', async () => {
    for (let i = 0; i < secrets; i++) {
      const s = await core.readNamespacedSecret({ namespace, name: `s${i}` });
      s.metadata = { ...s.metadata, labels: { touched: 'yes' } };
      await core.replaceNamespacedSecret({ namespace, name: `s${i}`, body: s });
    }
  }, () => sleep(3000)));
  await operator.stop();
  results.push(await phase('operator restart (nothing changed)', async () => {
    operator = startOperator(config, silent);
    await operator.ready;
  }, () => sleep(4000)));
  await operator.stop();
  return { secrets, phases: results };
}

// --- (d) memory while syncing 1 MiB secrets ---
/** Samples this process's memory until stopped; growth is against the moment it started (after a GC). */
async function memorySampler() {
  (globalThis as { gc?: () => void }).gc?.();
  await sleep(100);
  const base = process.memoryUsage();
  const peak = { rss: base.rss, heapUsed: base.heapUsed, external: base.external + base.arrayBuffers };
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.external = Math.max(peak.external, m.external + m.arrayBuffers);
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return {
        baselineRssMiB: round(base.rss / MiB, 1),
        peakRssMiB: round(peak.rss / MiB, 1),
        rssGrowthMiB: round((peak.rss - base.rss) / MiB, 1),
        heapGrowthMiB: round((peak.heapUsed - base.heapUsed) / MiB, 1),
        buffersGrowthMiB: round((peak.external - (base.external + base.arrayBuffers)) / MiB, 1),
      };
    },
  };
}

/** The pipeline alone (straight to OpenBao, no proxy in this process), streamed or buffered bodies. */
async function memory(dir: string, streamed: boolean, count: number) {
  const threshold = streamed ? '1Mi' : '64Mi';
  const config = await configFor(dir, [`--large-secret-threshold=${threshold}`, '--max-secret-size=64Mi', `--vault-addr=${env.vaultAddr}`]);
  const stack = createVaultStack(config, silent, vaultMetricsOf(new Metrics({ processMetrics: false })));
  await stack.login();
  // The payloads are the caller's (the reconciler reads them from the API when a write is due): made first.
  // Flat strings of 1 MiB (hex), so that nothing but the pipeline allocates while it runs.
  const payloads = Array.from({ length: count }, () => ({ value: randomBytes(MiB / 2).toString('hex') }));
  const sampler = await memorySampler();
  const prefix = `bench/memory-${streamed ? 'streamed' : 'buffered'}-${randomBytes(3).toString('hex')}`;
  const t0 = performance.now();
  await Promise.all(payloads.map((data, i) => stack.vault.writeData({ mount: 'secret', key: `${prefix}/s${i}` }, new Map(Object.entries(data)), {}, benchContext)));
  const seconds = (performance.now() - t0) / 1000;
  const usage = sampler.stop();
  await stack.stop();
  return { run: `pipeline, ${streamed ? 'streamed bodies (memory-aware path)' : 'buffered bodies (JSON string + Buffer)'}`, secrets: count, payloadMiB: round((count * (MiB + 5)) / MiB, 1), seconds: round(seconds, 2), ...usage };
}

/**
 * The whole operator syncing Secrets of 768 KiB (a Kubernetes Secret holds at most 1 MiB): from the initial
 * list (which carries every value once) to the last write, straight to OpenBao.
 */
async function memoryOperator(dir: string, count: number) {
  const kc = loadKubeConfig(env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `bench-mem-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  for (let i = 0; i < count; i++) {
    const value = randomBytes(384 * 1024).toString('hex');
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: `big${i}`, namespace, annotations: { 'vault-sync.io/path': `secret/${namespace}/big${i}` } }, stringData: { value } } });
  }
  process.env.KUBECONFIG = env.kubeconfigPath;
  const config = await configFor(dir, [`--watch-namespaces=${namespace}`, '--large-secret-threshold=512Ki', `--vault-addr=${env.vaultAddr}`]);
  const sampler = await memorySampler();
  const t0 = performance.now();
  const operator = startOperator(config, silent);
  await operator.ready;
  // Synced = the data landed and then the ownership marks (the last of the 2 requests of a new path). The
  // content hash is not in custom_metadata unless --content-hash-in-metadata=true: not waited for.
  for (let tries = 0; ; tries++) {
    let done = 0;
    for (let i = 0; i < count; i++) {
      const res = await fetch(`${env.vaultAddr}/v1/secret/metadata/${namespace}/big${i}`, { headers: { 'X-Vault-Token': env.vaultRootToken } });
      const metadata = res.status === 200 ? ((await res.json()) as any).data : undefined;
      if (metadata && metadata.current_version >= 1 && metadata.custom_metadata?.['managed-by'] === MANAGED_BY) done++;
    }
    if (done === count) break;
    if (tries > 400) throw new Error('the operator did not sync the large Secrets');
    await sleep(250);
  }
  const seconds = (performance.now() - t0) / 1000;
  const usage = sampler.stop();
  await operator.stop();
  return { run: 'whole operator, 768 KiB Secrets', secrets: count, payloadMiB: round((count * 768) / 1024, 1), seconds: round(seconds, 2), ...usage };
}

function table(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => String(r[k]))))].join('\n');
}

/** The environment `npm run env:up` keeps running (its Secrets stay for the next run); stop() leaves it up. */
function runningEnvironment(): LocalEnvironment {
  const info = readEnvInfo(join(repoRoot, '.local'));
  if (!info) throw new Error('--env=running: no environment is up (start one with `npm run env:up`)');
  say(`using the running environment (${info.apiServerUrl}, ${info.vaultAddr})`);
  return { ...info, stop: async () => {} };
}

async function main() {
  const started = Date.now();
  ensureBinaries(say);
  const stateDir = mkdtempSync(join(tmpdir(), 'vso-bench-'));
  const work = join(stateDir, 'work');
  mkdirSync(work);
  env = args.get('env') === 'running' ? runningEnvironment() : await startEnvironment({ stateDir, log: say });
  proxy = await startFaultProxy({ upstream: env.vaultAddr });
  const results: Record<string, unknown> = {
    when: new Date().toISOString(),
    machine: { node: process.version, cpus: (await import('node:os')).cpus().length, platform: process.platform },
    settings: { rate: RATE, burst: BURST, batchSize: 5, limiterMarginMs: 10 },
  };
  try {
    if (!skip.has('limiter')) {
      say('limiter alone: 120 requests, ours vs Bottleneck heartbeat refill (~10 s)');
      results.limiterOnly = await limiterOnly();
    }
    if (!skip.has('converge')) {
      const runs = [];
      for (const n of sizes) {
        say(`converge ${n} writes (ideal ${Math.max(0, n - BURST) / RATE} s)`);
        runs.push(await converge(work, n));
      }
      results.converge = runs;
    }
    if (!skip.has('operator')) {
      say('Vault calls per changed secret, through the operator (20 Secrets)');
      results.callsPerSecret = await callsPerSecret(work);
      say('the same with CONTENT_HASH_IN_METADATA=true (the opt-in: a second write per change)');
      results.callsPerSecretWithHashInMetadata = await callsPerSecret(work, ['--content-hash-in-metadata=true']);
    }
    if (!skip.has('floor')) results.writeFloor = await writeFloor({ env, proxy, configFor: (extra) => configFor(work, extra) });
    if (!skip.has('drift')) {
      const runs = [];
      for (const paths of (args.get('drift') ?? (quick ? '2000' : '2000,10000')).split(',').map(Number)) {
        if (!(Number.isInteger(paths) && paths >= 40 && paths % 40 === 0)) throw new Error(`--drift takes path counts that are whole multiples of 40, got ${paths}`);
        // A longer period for the big run: the per-path mode's reads must fit in it on a 2-core machine.
        runs.push(await driftCost({ env, proxy, say, configFor: (extra) => configFor(work, extra) }, paths / 40, paths > 2000 ? 60 : 30));
      }
      results.driftCost = runs;
    }
    if (!skip.has('fair')) results.fairShare = await fairShare({ newStack: async () => createVaultStack(await configFor(work), silent), say, env, configFor: (extra) => configFor(work, extra) });
    if (!skip.has('memory')) {
      const count = quick ? 10 : 30;
      say(`memory: ${count} secrets of 1 MiB through the pipeline, streamed and buffered; then 20 Secrets of 768 KiB through the operator`);
      results.memory = [await memory(work, true, count), await memory(work, false, count), await memoryOperator(work, 20)];
    }
    if (!skip.has('startup')) {
      const counts = (args.get('startup') ?? (quick ? '1000,10000' : '10000,30000,100000')).split(',').map(Number);
      const repeat = Number(args.get('startup-repeat') ?? 3);
      if (!counts.every((n) => Number.isInteger(n) && n > 0 && n <= 1_000_000)) throw new Error(`--startup takes Secret counts in 1..1000000, got ${args.get('startup')}`);
      if (!(Number.isInteger(repeat) && repeat >= 1 && repeat <= 9)) throw new Error(`--startup-repeat must be in 1..9, got ${args.get('startup-repeat')}`);
      // A cluster of its own: the operator and the plain list both see every namespace, and the objects the
      // steps before left (10,000 drift Secrets and their Deployments, 1 MiB Secrets) would be counted as the N.
      const own = args.get('env') === 'running' ? undefined : await startEnvironment({ stateDir: join(stateDir, 'startup'), log: say });
      try {
        results.startup = await startupBench(own ?? env, work, counts, say, 10, repeat);
      } finally {
        await own?.stop();
      }
    }
    if (!skip.has('budget')) results.sharedBudget = await sharedBudgetBench(stateDir, say);
    if (!skip.has('chaos')) {
      const minutes = Number(args.get('chaos-minutes') ?? process.env.CHAOS_MINUTES ?? (quick ? 3 : 10));
      if (!(minutes > 0 && minutes <= 60)) throw new Error(`--chaos-minutes must be in (0, 60], got ${minutes}`);
      results.chaos = await chaosBench(stateDir, minutes, say);
    }
  } finally {
    await proxy.close();
    await env.stop();
    rmSync(join(stateDir, 'etcd-data'), { recursive: true, force: true });
  }
  results.benchSeconds = round((Date.now() - started) / 1000, 1);

  const out: string[] = [];
  const limiter = results.limiterOnly as Awaited<ReturnType<typeof limiterOnly>> | undefined;
  if (limiter) out.push('Limiter alone (120 requests, rate 10, burst 20)', table([{ limiter: 'exact (ours)', ...limiter.exact }, { limiter: 'Bottleneck heartbeat 5 ms', ...limiter.bottleneckHeartbeat5ms }]), '');
  if (results.converge) out.push('Converge N writes against real OpenBao (requests counted at the proxy in this process, and in OpenBao\'s audit log)', table(results.converge as Array<Record<string, unknown>>), '');
  const calls = results.callsPerSecret as Awaited<ReturnType<typeof callsPerSecret>> | undefined;
  if (calls) out.push(`Vault calls per secret through the operator (${calls.secrets} Secrets)`, table(calls.phases), '');
  const hashed = results.callsPerSecretWithHashInMetadata as typeof calls;
  if (hashed) out.push(`The same with CONTENT_HASH_IN_METADATA=true (${hashed.secrets} Secrets)`, table(hashed.phases), '');
  if (results.driftCost) out.push(...driftCostTable(results.driftCost as Array<Awaited<ReturnType<typeof driftCost>>>, table));
  if (results.fairShare) out.push(...fairShareTables(results.fairShare as Awaited<ReturnType<typeof fairShare>>, table));
  if (results.memory) out.push('Memory while syncing large secrets (growth of the bench process over a baseline taken after a GC)', table(results.memory as Array<Record<string, unknown>>), '');
  const startup = results.startup as Awaited<ReturnType<typeof startupBench>> | undefined;
  if (results.sharedBudget) out.push(...sharedBudgetTable(results.sharedBudget as Awaited<ReturnType<typeof sharedBudgetBench>>, table));
  if (results.chaos) out.push(...chaosTable(results.chaos as Awaited<ReturnType<typeof chaosBench>>, table));
  if (startup) out.push(`Start-up to caches synced (median of ${startup.repeat} runs), and steady RSS after ${startup.idleSeconds} s idle (Secrets of ${startup.secretBytes} B)`, table(startup.runs), '');
  process.stdout.write(out.join('\n') + '\n');
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  const file = args.get('out');
  if (file && file !== 'true') writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`[bench] failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
