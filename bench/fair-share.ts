// Fair shares of the rate budget and values first (issue 9 item 3), through the real Vault pipeline against
// OpenBao. Each run gets a fresh stack (a full bucket) and queues work the way a reconcile does: every data
// write of a source at once (cas=0 on a new path), each path's ownership metadata as soon as its data landed,
// with the source key as the request's context.
//
//  - smallChangeWait: 10 sources x 40 new paths queued; once the backlog flows, one new path of another
//    source. Seconds from asking to its value being in Vault (target: within 2 s). The same with no source
//    given (one flow, first come first served) shows what the fair line saves.
//  - valuesFirst: 200 new paths of one source: seconds until every value is in Vault (ideal (200-20)/10 =
//    18 s: data before marks) and until every path is marked too (ideal (400-20)/10 = 38 s).
//
// And the same two figures through the whole operator (reconciler, work queue, fair line, limiter; the apiserver
// and OpenBao behind the bench's proxy), times read on Vault's clock from its audit log:
//  - operator.smallChange: 10 Deployments x 40 new Secrets applied; once every one of them has data writes at
//    Vault, a one-Secret change of an already-synced Deployment: seconds from the Secret's update to its data
//    write at Vault (target: within 2 s), and the requests Vault got in between.
//  - operator.valuesFirst: 200 new paths, as 5 Deployments x 40 new Secrets (one source may sync at most 64
//    Secrets, so 200 paths of one source cannot be asked for through the operator; values before marks holds
//    across sources the same way): seconds from applying them until every value is in Vault (ideal
//    (200 + 5 LISTs - 20)/10 = 18.5 s) and until every path is marked (ideal (405 - 20)/10 = 38.5 s).
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Config } from '../src/config.js';
import { Metrics } from '../src/observability/metrics.js';
import { vaultMetricsOf } from '../src/observability/vault-metrics.js';
import { startOperator } from '../src/operator.js';
import type { KvPath } from '../src/vault/path.js';
import { wholeMounts } from '../src/vault/scope.js';
import { createVaultStack, type VaultStackParts } from '../src/vault/stack.js';
import type { LocalEnvironment } from '../testenv/environment.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

/** The benchmark writes for no source: its requests carry the whole secret/ mount as their scope. */
const benchContext = { scope: wholeMounts(['secret'], 'the benchmark') };

const RATE = 10;
const BURST = 20;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface FairShareContext {
  /** A fresh, not yet logged-in stack on the bench's Vault. */
  newStack(): Promise<VaultStackParts>;
  say(message: string): void;
  /** For the runs through the operator: the environment, and an operator configuration with these extra flags. */
  env: LocalEnvironment;
  configFor(extra: string[]): Promise<Config>;
}

async function loggedIn(ctx: FairShareContext): Promise<VaultStackParts> {
  const stack = await ctx.newStack();
  await stack.login();
  await sleep(1000 * (BURST / RATE) + 200); // the login and mount lookup took two tokens: refill to a full bucket
  return stack;
}

/** A reconcile's new paths: all data at once, each path's marks once its data landed. Resolves when every value is in. */
function syncNewPaths(stack: VaultStackParts, source: string | undefined, paths: KvPath[]) {
  const context = source === undefined ? benchContext : { ...benchContext, source };
  const marks: Array<Promise<unknown>> = [];
  const values = Promise.allSettled(
    paths.map(async (path) => {
      await stack.vault.writeData(path, new Map([['value', path.key]]), { cas: 0 }, context);
      marks.push(stack.vault.writeMetadata(path, { 'managed-by': 'vault-sync-operator' }, context).catch(() => undefined));
    }),
  );
  return { values, marked: values.then(() => Promise.allSettled(marks)) };
}

async function smallChangeWait(ctx: FairShareContext, fair: boolean) {
  const stack = await loggedIn(ctx);
  const prefix = `bench/fair-${randomBytes(3).toString('hex')}`;
  const backlog = Array.from({ length: 10 }, (_, s) =>
    syncNewPaths(stack, fair ? `Deployment/bench/big${s}` : undefined, Array.from({ length: 40 }, (_, i) => ({ mount: 'secret', key: `${prefix}/big${s}/p${i}` }))).values,
  );
  await sleep(3000); // the burst is spent and the backlog flows at the rate
  const t0 = performance.now();
  await stack.vault.writeData({ mount: 'secret', key: `${prefix}/small/p0` }, new Map([['value', 'small']]), { cas: 0 }, fair ? { ...benchContext, source: 'Deployment/bench/small' } : benchContext);
  const seconds = (performance.now() - t0) / 1000;
  const waitingBehind = stack.vault.waiting;
  await stack.stop(); // the rest of the backlog is not what this measures
  await Promise.all(backlog);
  return { line: fair ? 'fair (per source)' : 'one flow (FIFO)', bigSources: 10, pathsPerSource: 40, smallChangeSeconds: round(seconds), stillQueuedAfter: waitingBehind, targetSeconds: 2 };
}

async function valuesFirst(ctx: FairShareContext, n: number) {
  const stack = await loggedIn(ctx);
  const prefix = `bench/values-first-${randomBytes(3).toString('hex')}`;
  const t0 = performance.now();
  const run = syncNewPaths(stack, 'Deployment/bench/one', Array.from({ length: n }, (_, i) => ({ mount: 'secret', key: `${prefix}/p${i}` })));
  await run.values;
  const valuesSeconds = (performance.now() - t0) / 1000;
  await run.marked;
  const markedSeconds = (performance.now() - t0) / 1000;
  await stack.stop();
  return {
    paths: n,
    allValuesSeconds: round(valuesSeconds),
    idealValuesSeconds: (n - BURST) / RATE,
    allMarkedSeconds: round(markedSeconds),
    idealMarkedSeconds: (2 * n - BURST) / RATE,
  };
}

// --- through the operator ---

interface Audited {
  path: string;
  operation: string;
  /** ms since the epoch, Vault's clock (the same machine's clock as Date.now()). */
  at: number;
}

/** The operator's KV requests below secret/<namespace>/ in OpenBao's audit log after byte offset `from`. */
function auditedSince(env: LocalEnvironment, from: number, namespace: string): Audited[] {
  const text = readFileSync(env.vaultAuditLogPath).subarray(from).toString('utf8');
  const requests: Audited[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"type":"request"') || !line.includes(`/${namespace}/`)) continue;
    let entry: { time?: string; type?: string; auth?: { policies?: string[] }; request?: { path?: string; operation?: string } };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a line still being written
    }
    const path = entry.request?.path ?? '';
    if (entry.type !== 'request' || !entry.time || entry.auth?.policies?.includes('root')) continue;
    if (!path.startsWith(`secret/data/${namespace}/`) && !path.startsWith(`secret/metadata/${namespace}/`)) continue;
    const fraction = /\.(\d+)Z$/.exec(entry.time);
    requests.push({ path, operation: entry.request?.operation ?? '', at: Date.parse(entry.time.replace(/\.\d+Z$/, 'Z')) + (fraction ? Number(`0.${fraction[1]}`) * 1000 : 0) });
  }
  return requests;
}

const isDataWrite = (r: Audited) => r.path.startsWith('secret/data/') && (r.operation === 'create' || r.operation === 'update');
const isMarks = (r: Audited) => r.path.startsWith('secret/metadata/') && (r.operation === 'create' || r.operation === 'update');

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`fair-share (operator): timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A fresh namespace with `count` Secrets s0.. (shared by the Deployments: each writes its own copies) and an operator watching it. */
async function operatorOn(ctx: FairShareContext, label: string, count: number) {
  const kc = loadKubeConfig(ctx.env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const namespace = `bench-${label}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const secretNames = Array.from({ length: count }, (_, i) => `s${i}`);
  for (const name of secretNames) await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { value: `${name}-value` } } });
  process.env.KUBECONFIG = ctx.env.kubeconfigPath;
  const config = await ctx.configFor([`--watch-namespaces=${namespace}`]);
  const silent = pino({ level: 'silent' });
  const metrics = new Metrics({ processMetrics: false });
  // Our own stack, so that the backlog can be cut short (stopped first) once the figure is taken.
  const stack = createVaultStack(config, silent, vaultMetricsOf(metrics));
  const operator = startOperator(config, silent, { vaultStack: stack, metrics });
  await operator.ready;
  const deployment = (name: string, secrets: string[]): V1Deployment => ({
    metadata: { name, namespace, annotations: { 'vault-sync.io/path': `secret/${namespace}/${name}` } },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'example/app:1', envFrom: secrets.map((s) => ({ secretRef: { name: s } })) }] } },
    },
  });
  return {
    namespace,
    core,
    secretNames,
    stack,
    apply: (name: string, secrets: string[]) => apps.createNamespacedDeployment({ namespace, body: deployment(name, secrets) }),
    audited: (from: number) => auditedSince(ctx.env, from, namespace),
    mark: () => statSync(ctx.env.vaultAuditLogPath).size,
    stop: async () => {
      await stack.stop();
      await operator.stop();
    },
  };
}

async function operatorSmallChange(ctx: FairShareContext) {
  const run = await operatorOn(ctx, 'fairop', 40);
  await run.core.createNamespacedSecret({ namespace: run.namespace, body: { metadata: { name: 'tiny' }, stringData: { value: 'one' } } });
  const setup = run.mark();
  await run.apply('small', ['tiny']);
  await until('the small Deployment synced', () => run.audited(setup).some(isMarks));
  await sleep(1000 * (BURST / RATE) + 200); // a full bucket again, as after a quiet spell
  const start = run.mark();
  for (let b = 0; b < 10; b++) await run.apply(`big${b}`, run.secretNames);
  // The backlog flows: every big Deployment has data writes at Vault.
  const bigOf = (r: Audited) => /\/(big\d+)\//.exec(r.path)?.[1];
  await until('data writes of every big Deployment', () => new Set(run.audited(start).filter(isDataWrite).map(bigOf).filter(Boolean)).size === 10);
  const changed = run.mark();
  const waiting = run.stack.vault.waiting;
  const t0 = Date.now();
  await run.core.patchNamespacedSecret({ namespace: run.namespace, name: 'tiny', body: { stringData: { value: 'two' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const isSmall = (r: Audited) => isDataWrite(r) && r.path.endsWith('/small/tiny');
  await until('the changed value at Vault', () => run.audited(changed).some(isSmall), 60_000);
  const after = run.audited(changed);
  const at = after.findIndex(isSmall);
  await run.stop(); // the rest of the backlog is not what this measures
  return {
    line: 'fair, through the operator',
    bigSources: 10,
    pathsPerSource: 40,
    smallChangeSeconds: round((after[at].at - t0) / 1000),
    requestsBefore: at,
    queuedAtChange: waiting,
    targetSeconds: 2,
  };
}

async function operatorValuesFirst(ctx: FairShareContext) {
  const deployments = 5;
  const run = await operatorOn(ctx, 'valuesop', 40);
  await sleep(1000 * (BURST / RATE) + 200); // the login and mount lookup took two tokens: refill to a full bucket
  const start = run.mark();
  const t0 = Date.now();
  for (let d = 0; d < deployments; d++) await run.apply(`app${d}`, run.secretNames);
  const paths = deployments * run.secretNames.length;
  await until(`${paths} values and ${paths} marks`, () => {
    const seen = run.audited(start);
    return seen.filter(isDataWrite).length >= paths && seen.filter(isMarks).length >= paths;
  });
  const seen = run.audited(start);
  const lastValue = Math.max(...seen.filter(isDataWrite).map((r) => r.at));
  const lastMark = Math.max(...seen.filter(isMarks).map((r) => r.at));
  const firstMark = seen.findIndex(isMarks);
  const lastData = seen.map(isDataWrite).lastIndexOf(true);
  await run.stop();
  const requests = 2 * paths + deployments; // values, marks, one LIST per folder
  return {
    paths,
    sources: deployments,
    allValuesSeconds: round((lastValue - t0) / 1000),
    idealValuesSeconds: (paths + deployments - BURST) / RATE,
    allMarkedSeconds: round((lastMark - t0) / 1000),
    idealMarkedSeconds: (requests - BURST) / RATE,
    requests: seen.length,
    marksBeforeLastValue: seen.slice(0, lastData).filter(isMarks).length,
    firstMarkAt: firstMark,
  };
}

export async function fairShare(ctx: FairShareContext) {
  ctx.say('fair shares: a one-path change while 10 sources x 40 new paths are queued, fair line vs one FIFO flow (~45 s)');
  const smallChange = [await smallChangeWait(ctx, true), await smallChangeWait(ctx, false)];
  ctx.say('values first: 200 new paths of one source, data (cas=0) then marks (~40 s)');
  const values = await valuesFirst(ctx, 200);
  ctx.say('through the operator: a one-Secret change while 10 Deployments x 40 new Secrets are queued (~30 s)');
  const operatorSmall = await operatorSmallChange(ctx);
  ctx.say('through the operator: 200 new paths (5 Deployments x 40 new Secrets), values then marks (~50 s)');
  return { smallChange, valuesFirst: values, operator: { smallChange: operatorSmall, valuesFirst: await operatorValuesFirst(ctx) } };
}

export function fairShareTables(results: Awaited<ReturnType<typeof fairShare>>, table: (rows: Array<Record<string, unknown>>) => string): string[] {
  return [
    'Fair shares: a one-path change of another source while 10 sources x 40 new paths wait (seconds until its value is in Vault)',
    table(results.smallChange),
    '',
    'Values first: 200 new paths of one source (seconds until every value is in Vault, then until every path is marked)',
    table([results.valuesFirst]),
    '',
    'Through the operator: a one-Secret change of another Deployment while 10 Deployments x 40 new Secrets wait (from the Secret update to its write at Vault, on Vault\'s clock)',
    table([results.operator.smallChange]),
    '',
    'Through the operator: 200 new paths (5 Deployments x 40 new Secrets) from applying them until every value, then every mark, is at Vault',
    table([results.operator.valuesFirst]),
    '',
  ];
}
