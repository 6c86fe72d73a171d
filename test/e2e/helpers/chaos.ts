// A chaos run against the real environment, as an operations team would run the operator: 2-3 real operator
// processes with leader election (short leases), each talking to the real OpenBao through its OWN
// fault-injecting proxy (every request is attributable to one replica and to the moment it reached the proxy;
// each proxy connects to Vault from its own loopback address, so OpenBao's audit log tells them apart too),
// faults that change over the run (latency, 429 with Retry-After, 503, resets before and after forwarding), a
// workload that keeps changing Secrets of annotated Deployments in several namespaces, moves paths and
// deletes Deployments, and a schedule that SIGKILLs the leader (a new replica replaces it, as a Deployment
// would) and once SIGSTOPs it past its lease, then SIGCONTs it. Everything asked of Kubernetes goes into a
// ledger (chaos-ledger.ts); at the end, once the workload stopped and the system settled, chaos-checks.ts
// judges what Vault holds and who sent what. Used by test/e2e/chaos.test.ts and by `npm run bench`.
import { randomBytes } from 'node:crypto';
import { CustomObjectsApi } from '@kubernetes/client-node';
import {
  canaryLeaks,
  checkPaths,
  heldWindows,
  isKvWrite,
  leaseWindows,
  leftovers,
  replayTokenBucket,
  requestsByNonHolders,
  type LandedWrite,
  type PathState,
} from './chaos-checks.js';
import { chaosEvidence } from './chaos-evidence.js';
import { ChaosLedger } from './chaos-ledger.js';
import { ChaosReplicas } from './chaos-replicas.js';
import { ChaosWorkload } from './chaos-workload.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp } from './env.js';
import type { Faults } from './fault-proxy.js';
import { operatorArgs } from './operator.js';
import { auditMark, requestsSince } from './vault-audit.js';

export interface ChaosOptions {
  /** How long the workload and the faults run. */
  durationMs: number;
  replicas: number;
  namespaces: number;
  /** Seeds the workload and the schedule (printed, so a run can be repeated). */
  seed: number;
  lease: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  /** SIGKILLs of the leader, spread over the run. */
  kills: number;
  /** Once SIGSTOP the leader until another replica took the Lease and wrote, then SIGCONT it. */
  pause: boolean;
  /** How long each fault phase lasts. */
  phaseMs: number;
  /** The bound on waiting for the system to settle after the workload stops. */
  settleTimeoutMs: number;
  /** The window after settling in which no request may be made ("at rest"). */
  quietWindowMs: number;
  say: (message: string) => void;
}

/** The installation's budget (the operator's defaults), which the merged audit log must respect. */
export const BUDGET = { rate: 10, burst: 20 } as const;
/**
 * Clock tolerance of the audit-log replay: a request may count up to this much later than OpenBao logged it.
 * Injected latency (at most 150 ms here) ends between two requests and brings them closer at Vault than
 * they left the replica, and a loaded 2-core machine delays the audit writes by tens of ms.
 */
export const REPLAY_TOLERANCE_MS = 250;

export interface ChaosFigures {
  seed: number;
  seconds: number;
  replicas: number;
  incarnations: number;
  valuesSet: number;
  paths: { live: number; moved: number; deleted: number };
  kills: number;
  pauses: number;
  pauseSeconds: number;
  leaseTransitions: number;
  requests: number;
  requestsByOutcome: Record<string, number>;
  writesByNonHolders: number;
  requestsByNonHolders: number;
  stalePaths: number;
  staleWritesLanded: number;
  excessVersions: number;
  requestsOverBucket: number;
  busiestSecondAtVault: number;
  auditRequests: number;
  leftovers: { deleted: number; moved: number; unknown: number };
  unmarkedPaths: number;
  requestsAtRest: number;
  canaryLeaks: number;
  settled: boolean;
  settleSeconds: number;
}

export interface ChaosReport {
  figures: ChaosFigures;
  /** One line per finding, bounded; empty when every check held. */
  evidence: string[];
  /** Where each replica's log is, for a human. */
  logs: string[];
}

const PHASES: Array<{ name: string; faults: Faults }> = [
  { name: 'none', faults: {} },
  { name: 'latency', faults: { latencyMs: 150 } },
  // `count`: the first requests of a phase certainly meet the fault, the ratio keeps it coming.
  { name: '429', faults: { tooManyRequests: { count: 2, ratio: 0.2, retryAfterSeconds: 1 } } },
  { name: 'resets', faults: { reset: { count: 1, ratio: 0.05 }, resetAfterForward: { count: 2, ratio: 0.1 } } },
  { name: '503', faults: { unavailable: { count: 2, ratio: 0.15, retryAfterSeconds: 1 } } },
  { name: 'mixed', faults: { latencyMs: 80, tooManyRequests: { ratio: 0.1, retryAfterSeconds: 1 }, resetAfterForward: { ratio: 0.05 }, serverError: { ratio: 0.05 } } },
];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tenths = (ms: number) => Math.round(ms / 100) / 10;

/** mulberry32: a small seeded generator, so a run's workload and schedule can be replayed from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Which test value a data write carries, by its place in the ledger (`<secret>#<index>`), read by the proxies. */
function valueNote(ledger: ChaosLedger) {
  return (method: string, path: string, body: Buffer): string | undefined => {
    if ((method !== 'POST' && method !== 'PUT') || !path.startsWith('/v1/secret/data/')) return undefined;
    try {
      const value = (JSON.parse(body.toString('utf8')) as { data?: { value?: unknown } }).data?.value;
      const ref = typeof value === 'string' ? ledger.refOf(value) : undefined;
      return ref ? `${ref.secret}#${ref.index}` : undefined;
    } catch {
      return undefined;
    }
  };
}

function refOfNote(note: string | undefined) {
  if (!note) return undefined;
  const hash = note.lastIndexOf('#');
  return { secret: note.slice(0, hash), index: Number(note.slice(hash + 1)) };
}

/** What Vault holds under the run's namespaces, read with the root token (not through any replica's proxy). */
async function listKeys(folder: string): Promise<string[]> {
  const res = await vaultHttp(`secret/metadata/${folder}?list=true`);
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`LIST secret/metadata/${folder}: ${res.status}`);
  const keys: string[] = [];
  for (const key of (res.json.data?.keys ?? []) as string[]) {
    if (key.endsWith('/')) keys.push(...(await listKeys(`${folder}${key}`)));
    else keys.push(`${folder}${key}`);
  }
  return keys;
}

async function readPathState(path: string): Promise<PathState> {
  const [data, metadata] = await Promise.all([vaultHttp(`secret/data/${path}`), vaultHttp(`secret/metadata/${path}`)]);
  return {
    value: data.status === 200 ? data.json?.data?.data?.value : undefined,
    versions: metadata.status === 200 ? Number(metadata.json?.data?.current_version ?? 0) : 0,
    marked: metadata.status === 200 && !!metadata.json?.data?.custom_metadata?.['managed-by'],
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { say } = options;
  const env = loadTestEnv();
  const { core, apps, kc } = kubeClients();
  const random = seeded(options.seed);
  const runId = randomBytes(3).toString('hex');
  const ledger = new ChaosLedger(`cnry${runId}v`, () => randomBytes(4).toString('hex'));
  const t0 = Date.now();
  const rel = (at: number) => `${((at - t0) / 1000).toFixed(2)}s`;
  say(`chaos run ${runId}: seed ${options.seed}, ${options.replicas} replicas, ${options.durationMs / 1000} s of workload`);

  const namespaces: string[] = [];
  for (let i = 0; i < options.namespaces; i++) namespaces.push(await freshNamespace(`chaos-${runId}-${i}`));
  const leaseNamespace = await freshNamespace(`chaos-${runId}-lease`);
  const workload = new ChaosWorkload({ core, apps }, ledger, namespaces, random);
  await workload.setUp();

  const replicas = new ChaosReplicas(
    {
      replicas: options.replicas,
      lease: { namespace: leaseNamespace, name: 'vault-sync-operator', ...options.lease },
      operatorArgs: (await operatorArgs(namespaces)).filter((a) => !a.startsWith('--vault-addr=')),
      vaultAddr: env.vaultAddr,
      kubeconfigPath: env.kubeconfigPath,
      addressPrefix: `127.${10 + (randomBytes(1)[0] % 240)}`,
      // The proxies draw their faults from their own generator: the workload's stays independent of timing.
      random: seeded(options.seed ^ 0x5bd1e995),
      inspect: valueNote(ledger),
      say,
    },
    kc,
  );
  // From here on, every request of every replica is in the audit log after this mark (logins included).
  const auditFrom = auditMark();
  replicas.start();
  try {
    const workloadStart = Date.now();
    const workloadEnd = workloadStart + options.durationMs;

    // --- the workload: one API call at a time, so the ledger's order is Kubernetes' order ---
    const changes = (async () => {
      while (Date.now() < workloadEnd) {
        await workload.step();
        await sleep(150 + random() * 200);
      }
    })();

    // --- faults that change over the run ---
    const faultSchedule = (async () => {
      for (let phase = 0; Date.now() < workloadEnd; phase++) {
        replicas.setFaults(PHASES[phase % PHASES.length].faults);
        await sleep(Math.min(options.phaseMs, Math.max(0, workloadEnd - Date.now())));
      }
      replicas.setFaults({});
    })();

    // --- the leaders' bad days: SIGKILLs spread over the run, one SIGSTOP in the middle ---
    let kills = 0;
    let pauses = 0;
    let pauseMs = 0;
    const chaos = (async () => {
      const count = options.kills + (options.pause ? 1 : 0);
      const events = Array.from({ length: count }, (_, i) => ({ at: (i + 1) / (count + 1), what: (options.pause && i === Math.floor(count / 2) ? 'pause' : 'kill') as 'kill' | 'pause' }));
      for (const e of events) {
        const when = workloadStart + e.at * options.durationMs;
        if (when > Date.now()) await sleep(when - Date.now());
        const leader = await replicas.leader(options.lease.durationMs * 3 + 20_000);
        if (!leader) {
          say(`no leader to ${e.what} at ${rel(Date.now())}`);
          continue;
        }
        if (e.what === 'kill') {
          say(`${rel(Date.now())}: SIGKILL the leader ${leader.identity}`);
          leader.op!.kill('SIGKILL');
          kills++;
          continue;
        }
        const stoppedAt = Date.now();
        say(`${rel(stoppedAt)}: SIGSTOP the leader ${leader.identity}`);
        leader.op!.kill('SIGSTOP');
        pauses++;
        // Past its lease: until another replica holds the Lease and has sent a data write (bounded).
        const deadline = stoppedAt + options.lease.durationMs * 3 + 30_000;
        while (Date.now() < deadline) {
          const successor = replicas.incarnations.find((i) => i.identity === replicas.holderNow() && i !== leader && i.op);
          if (successor?.proxy.requests.some((r) => r.wallAt > stoppedAt && r.method === 'POST' && r.path.startsWith('/v1/secret/data/'))) break;
          await sleep(100);
        }
        leader.op!.kill('SIGCONT');
        pauseMs = Date.now() - stoppedAt;
        say(`${rel(Date.now())}: SIGCONT ${leader.identity} after ${(pauseMs / 1000).toFixed(1)} s (Lease now held by ${replicas.holderNow() || 'nobody'})`);
      }
    })();

    await Promise.all([changes, faultSchedule, chaos]);
    say(`${rel(Date.now())}: workload over (${workload.actions} actions, ${ledger.valueCount} values); settling`);

    // --- settle: wait (bounded) until Vault and Kubernetes say what the ledger says ---
    const snapshot = async () => {
      const listed = (await Promise.all(namespaces.map((ns) => listKeys(`${ns}/`)))).flat();
      const states = new Map<string, PathState>();
      for (const t of ledger.liveTargets()) states.set(t.path, await readPathState(t.path));
      const remaining = new Set((await Promise.all(namespaces.map(async (namespace) => (await apps.listNamespacedDeployment({ namespace })).items.map((d) => `${namespace}/${d.metadata?.name}`)))).flat());
      return { listed, states, stillThere: workload.deleted.filter((d) => remaining.has(d)) };
    };
    const isSettled = (s: Awaited<ReturnType<typeof snapshot>>) => {
      const live = new Set(ledger.liveTargets().map((t) => t.path));
      return s.stillThere.length === 0 && s.listed.every((k) => live.has(k)) && ledger.liveTargets().every((t) => s.states.get(t.path)?.marked && s.states.get(t.path)?.value === ledger.latest(t.secret));
    };
    const settleStart = Date.now();
    let state = await snapshot();
    while (!isSettled(state) && Date.now() - settleStart < options.settleTimeoutMs) {
      await sleep(1000);
      state = await snapshot();
    }
    const settled = isSettled(state);
    const settleMs = Date.now() - settleStart;
    say(`${rel(Date.now())}: ${settled ? 'settled' : 'NOT settled'} after ${(settleMs / 1000).toFixed(1)} s`);

    // --- at rest: nothing may be sent in a quiet window once everything is done ---
    const beforeQuiet = replicas.requestCount();
    await sleep(options.quietWindowMs);
    const requestsAtRest = replicas.requestCount() - beforeQuiet;

    // --- gather the rest, stop everything, judge ---
    const metricsTexts = await replicas.metricsTexts();
    await replicas.shutdown();
    const requests = replicas.requests();
    const landed: LandedWrite[] = requests
      .filter((r) => (r.method === 'POST' || r.method === 'PUT') && r.path.startsWith('/v1/secret/data/') && r.status !== undefined && r.status >= 200 && r.status < 300)
      .map((r) => ({ path: r.path.replace(/^\/v1\/secret\/data\//, '').replace(/\?.*$/, ''), identity: r.identity, at: r.at, ref: refOfNote(r.note) }));

    const logs = replicas.logs();
    const { held, judgedByLeaseOnly } = heldWindows(leaseWindows(replicas.observations), logs.markers);
    const byNonHolders = requestsByNonHolders(requests, held);

    // The merged audit log of every replica (told apart by source address), through one bucket.
    const addresses = new Set(replicas.incarnations.map((i) => i.address));
    const audited = requestsSince(auditFrom).filter((r) => r.remoteAddress !== undefined && addresses.has(r.remoteAddress));
    const bucket = { ...BUDGET, toleranceMs: REPLAY_TOLERANCE_MS };
    const replay = replayTokenBucket(audited.map((r) => r.at), bucket);

    const paths = checkPaths(ledger, state.states, landed);
    const left = leftovers(state.listed, ledger);

    // Values anywhere they must never be: logs, Events, VaultSync objects, metrics.
    const custom = kc.makeApiClient(CustomObjectsApi);
    const eventTexts = await Promise.all(namespaces.map(async (namespace) => ({ where: `Events in ${namespace}`, text: JSON.stringify((await core.listNamespacedEvent({ namespace })).items) })));
    const statusTexts = await Promise.all(
      namespaces.map(async (namespace) => {
        const list = (await custom.listNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace, plural: 'vaultsyncs' })) as { items?: unknown[] };
        return { where: `VaultSyncs in ${namespace}`, text: JSON.stringify(list.items ?? []) };
      }),
    );
    const leaks = canaryLeaks([...logs.texts, ...eventTexts, ...statusTexts, ...metricsTexts], ledger.canaryPattern());

    const byOutcome = new Map<string, number>();
    for (const r of requests) byOutcome.set(r.outcome, (byOutcome.get(r.outcome) ?? 0) + 1);
    const targets = ledger.targets();
    const observations = replicas.observations;
    const figures: ChaosFigures = {
      seed: options.seed,
      seconds: tenths(Date.now() - t0),
      replicas: options.replicas,
      incarnations: replicas.incarnations.length,
      valuesSet: ledger.valueCount,
      paths: { live: targets.filter((t) => !t.endedBy).length, moved: targets.filter((t) => t.endedBy === 'moved').length, deleted: targets.filter((t) => t.endedBy === 'deleted').length },
      kills,
      pauses,
      pauseSeconds: tenths(pauseMs),
      leaseTransitions: observations.filter((o, i) => o.holder && o.holder !== observations[i - 1]?.holder).length,
      requests: requests.length,
      requestsByOutcome: Object.fromEntries([...byOutcome].sort(([a], [b]) => (a < b ? -1 : 1))),
      writesByNonHolders: byNonHolders.filter(isKvWrite).length,
      requestsByNonHolders: byNonHolders.length,
      stalePaths: paths.stale.length,
      staleWritesLanded: paths.regressions.length,
      excessVersions: paths.excess.reduce((n, f) => n + f.versions - f.allowed, 0),
      requestsOverBucket: replay.rejected,
      busiestSecondAtVault: replay.busiestSecond,
      auditRequests: audited.length,
      leftovers: { deleted: left.deleted.length, moved: left.moved.length, unknown: left.unknown.length },
      unmarkedPaths: paths.unmarked.length,
      requestsAtRest,
      canaryLeaks: leaks.total,
      settled,
      settleSeconds: tenths(settleMs),
    };
    const evidence = chaosEvidence({
      t0,
      settled,
      settleTimeoutMs: options.settleTimeoutMs,
      stillThere: state.stillThere,
      observations,
      held,
      markers: logs.markers,
      judgedByLeaseOnly,
      byNonHolders,
      paths,
      left,
      landed,
      replay,
      bucket,
      requestsAtRest,
      quietWindowMs: options.quietWindowMs,
      leaks,
    });
    return { figures, evidence, logs: logs.paths };
  } finally {
    await replicas.shutdown();
  }
}

/** The short form (the e2e test) and the long form (CHAOS_MINUTES, the bench). */
export function chaosOptions(minutes: number | undefined, say: (m: string) => void, seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))): ChaosOptions {
  const long = minutes !== undefined && minutes >= 3;
  const durationMs = minutes !== undefined ? minutes * 60_000 : 70_000;
  return {
    durationMs,
    replicas: long ? 3 : 2,
    namespaces: 3,
    seed,
    lease: { durationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 1000 },
    kills: long ? Math.max(2, Math.round(durationMs / 90_000)) : 2,
    pause: true,
    phaseMs: 8000,
    settleTimeoutMs: long ? 120_000 : 60_000,
    quietWindowMs: long ? 10_000 : 5000,
    say,
  };
}
