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
import { readFileSync } from 'node:fs';
import { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node';
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
  type LeaseObservation,
  type LogMarker,
  type PathFinding,
  type PathState,
  type ReplicaRequest,
} from './chaos-checks.js';
import { ChaosLedger } from './chaos-ledger.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp } from './env.js';
import { startFaultProxy, type FaultProxy, type Faults } from './fault-proxy.js';
import { deploymentUsing, mergePatch } from './objects.js';
import { operatorArgs } from './operator.js';
import { startOperatorProcess, type OperatorProcess } from './ops.js';
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

const LOG_MARKERS: Array<[RegExp, LogMarker['event']]> = [
  [/became the leader|acquired the lease/, 'acquired'],
  [/lost the lease/, 'lost'],
  [/released the lease/, 'released'],
];

const SECRETS_PER_NAMESPACE = 4;
const DEPLOYMENTS_PER_NAMESPACE = { initial: 3, max: 4 };
const MAX_EVIDENCE_LINES = 40;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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

interface Incarnation {
  slot: number;
  identity: string;
  address: string;
  proxy: FaultProxy;
  op?: OperatorProcess;
  exitedAt?: number;
}

interface LiveDeployment {
  namespace: string;
  name: string;
  generation: number;
  secrets: string[];
}

const pathsOf = (d: LiveDeployment) => d.secrets.map((s) => `${d.namespace}/${d.name}-g${d.generation}/${s}`);
const annotationOf = (d: LiveDeployment) => ({ 'vault-sync.io/path': `secret/${d.namespace}/${d.name}-g${d.generation}` });
const statusOf = (e: unknown) => (e as { code?: number }).code;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { say } = options;
  const env = loadTestEnv();
  const { core, apps, kc } = kubeClients();
  const leasesApi = kc.makeApiClient(CoordinationV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const random = seeded(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const runId = randomBytes(3).toString('hex');
  const ledger = new ChaosLedger(`cnry${runId}v`, () => randomBytes(4).toString('hex'));
  const t0 = Date.now();
  const rel = (at: number) => `${((at - t0) / 1000).toFixed(2)}s`;
  say(`chaos run ${runId}: seed ${options.seed}, ${options.replicas} replicas, ${options.durationMs / 1000} s of workload`);

  // --- the cluster side: namespaces, Secrets, Deployments ---
  const namespaces: string[] = [];
  for (let i = 0; i < options.namespaces; i++) namespaces.push(await freshNamespace(`chaos-${runId}-${i}`));
  const leaseNamespace = await freshNamespace(`chaos-${runId}-lease`);
  const leaseName = 'vault-sync-operator';
  const deployments = new Map<string, LiveDeployment>();
  const deleted: Array<{ namespace: string; name: string }> = [];
  let deploymentCounter = 0;

  const setValue = async (namespace: string, secret: string) => {
    const value = ledger.nextValue(`${namespace}/${secret}`);
    try {
      await core.patchNamespacedSecret({ namespace, name: secret, body: { stringData: { value } } }, mergePatch);
    } catch (error) {
      ledger.forgetLatest(`${namespace}/${secret}`, value);
      throw error;
    }
  };
  const createDeployment = async (namespace: string) => {
    const names = Array.from({ length: SECRETS_PER_NAMESPACE }, (_, i) => `s${i}`);
    const first = pick(names);
    const secrets = random() < 0.5 ? [first] : [...new Set([first, pick(names)])].sort();
    const d: LiveDeployment = { namespace, name: `d${deploymentCounter++}`, generation: 0, secrets };
    await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, d.name, annotationOf(d), secrets) });
    deployments.set(`${namespace}/${d.name}`, d);
    for (const [i, path] of pathsOf(d).entries()) ledger.startTarget(path, namespace, d.name, `${namespace}/${secrets[i]}`);
  };
  const moveDeployment = async (d: LiveDeployment) => {
    const before = pathsOf(d);
    const moved = { ...d, generation: d.generation + 1 };
    await apps.patchNamespacedDeployment({ namespace: d.namespace, name: d.name, body: { metadata: { annotations: annotationOf(moved) } } }, mergePatch);
    deployments.set(`${d.namespace}/${d.name}`, moved);
    for (const path of before) ledger.endTarget(path, 'moved');
    for (const [i, path] of pathsOf(moved).entries()) ledger.startTarget(path, d.namespace, d.name, `${d.namespace}/${d.secrets[i]}`);
  };
  const deleteDeployment = async (d: LiveDeployment) => {
    await apps.deleteNamespacedDeployment({ namespace: d.namespace, name: d.name });
    deployments.delete(`${d.namespace}/${d.name}`);
    deleted.push({ namespace: d.namespace, name: d.name });
    for (const path of pathsOf(d)) ledger.endTarget(path, 'deleted');
  };

  for (const namespace of namespaces) {
    for (let i = 0; i < SECRETS_PER_NAMESPACE; i++) {
      const name = `s${i}`;
      const value = ledger.nextValue(`${namespace}/${name}`);
      await core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace }, stringData: { value } } });
    }
    for (let i = 0; i < DEPLOYMENTS_PER_NAMESPACE.initial; i++) await createDeployment(namespace);
  }

  // --- the replicas, each behind its own proxy ---
  const baseArgs = (await operatorArgs(namespaces)).filter((a) => !a.startsWith('--vault-addr='));
  const addressPrefix = `127.${10 + (randomBytes(1)[0] % 240)}`;
  const incarnations: Incarnation[] = [];
  let faults: Faults = {};
  let stopping = false;
  const inspect = (method: string, path: string, body: Buffer): string | undefined => {
    if (method !== 'POST' && method !== 'PUT') return undefined;
    if (!/^\/v1\/secret\/data\//.test(path)) return undefined;
    try {
      const value = (JSON.parse(body.toString('utf8')) as { data?: { value?: unknown } }).data?.value;
      const ref = typeof value === 'string' ? ledger.refOf(value) : undefined;
      return ref ? `${ref.secret}#${ref.index}` : undefined;
    } catch {
      return undefined;
    }
  };
  // The proxies draw their faults from their own generator: the workload's stays independent of timing.
  const faultRandom = seeded(options.seed ^ 0x5bd1e995);
  const startIncarnation = async (inc: Incarnation): Promise<OperatorProcess> =>
    startOperatorProcess(
      inc.identity,
      [
        ...baseArgs,
        `--vault-addr=${inc.proxy.url}`,
        '--leader-elect=true',
        `--leader-election-namespace=${leaseNamespace}`,
        `--leader-election-id=${leaseName}`,
        `--leader-election-lease-duration=${options.lease.durationMs / 1000}s`,
        `--leader-election-renew-deadline=${options.lease.renewDeadlineMs / 1000}s`,
        `--leader-election-retry-period=${options.lease.retryPeriodMs / 1000}s`,
        '--log-level=info',
      ],
      { KUBECONFIG: env.kubeconfigPath },
    );
  // From here on, every request of every replica is in the audit log after this mark (logins included).
  const auditFrom = auditMark();
  // A replica that exits (killed, or fatal on its own) is replaced by a new one, as a Deployment's
  // ReplicaSet would: a new pod, a new name (identity), here also a new proxy and source address.
  const slots = Array.from({ length: options.replicas }, async (_, slot) => {
    for (let n = 1; !stopping && n < 250; n++) {
      const address = `${addressPrefix}.${slot + 1}.${n}`;
      const proxy = await startFaultProxy({ upstream: env.vaultAddr, localAddress: address, inspect, random: faultRandom });
      proxy.setFaults(faults);
      const inc: Incarnation = { slot, identity: `chaos-${String.fromCharCode(97 + slot)}-${n}`, address, proxy };
      incarnations.push(inc);
      try {
        inc.op = await startIncarnation(inc);
        if (stopping) inc.op.kill('SIGKILL');
        await inc.op.exited;
      } catch (error) {
        say(`replica ${inc.identity} did not start: ${(error as Error).message.slice(0, 300)}`);
        await sleep(1000);
      }
      inc.exitedAt = Date.now();
    }
  });

  // --- the Lease history, polled ---
  const observations: LeaseObservation[] = [];
  let polling = true;
  const toMs = (t: unknown) => (t === undefined || t === null ? undefined : new Date(t as string).getTime());
  const poller = (async () => {
    let last = '';
    while (polling) {
      try {
        const lease = await leasesApi.readNamespacedLease({ namespace: leaseNamespace, name: leaseName });
        const o: LeaseObservation = { at: Date.now(), holder: lease.spec?.holderIdentity ?? '', acquireTime: toMs(lease.spec?.acquireTime), renewTime: toMs(lease.spec?.renewTime), durationMs: (lease.spec?.leaseDurationSeconds ?? 15) * 1000 };
        const fingerprint = `${o.holder}|${o.acquireTime}|${o.renewTime}|${o.durationMs}`;
        if (fingerprint !== last) observations.push(o);
        last = fingerprint;
      } catch (error) {
        if (statusOf(error) !== 404) say(`lease poll failed: ${(error as Error).message.slice(0, 200)}`);
      }
      await sleep(100);
    }
  })();
  const holderNow = () => observations[observations.length - 1]?.holder ?? '';
  const liveLeader = async (timeoutMs: number): Promise<Incarnation | undefined> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const inc = incarnations.find((i) => i.identity === holderNow() && i.op && i.exitedAt === undefined);
      if (inc) return inc;
      await sleep(100);
    }
    return undefined;
  };

  // Every replica and proxy ends, also when the run fails half-way (idempotent).
  let stopped: Promise<void> | undefined;
  const shutdown = () =>
    (stopped ??= (async () => {
      stopping = true;
      for (const i of incarnations) i.op?.kill('SIGKILL');
      await Promise.all(slots);
      polling = false;
      await poller;
      for (const i of incarnations) await i.proxy.close();
    })());

  try {
    const workloadStart = Date.now();
    const workloadEnd = workloadStart + options.durationMs;

    // --- the workload: one API call at a time, so the ledger's order is Kubernetes' order ---
    let actions = 0;
    const workload = (async () => {
      while (Date.now() < workloadEnd) {
        const roll = random();
        const namespace = pick(namespaces);
        const inNamespace = [...deployments.values()].filter((d) => d.namespace === namespace).sort((a, b) => (a.name < b.name ? -1 : 1));
        if (roll < 0.1 && inNamespace.length > 0) await moveDeployment(pick(inNamespace));
        else if (roll < 0.17 && inNamespace.length > 1) await deleteDeployment(pick(inNamespace));
        else if (roll < 0.3 && inNamespace.length < DEPLOYMENTS_PER_NAMESPACE.max) await createDeployment(namespace);
        else await setValue(namespace, `s${Math.floor(random() * SECRETS_PER_NAMESPACE)}`);
        actions++;
        await sleep(150 + random() * 200);
      }
    })();

    // --- faults that change over the run ---
    const faultSchedule = (async () => {
      for (let phase = 0; Date.now() < workloadEnd; phase++) {
        const p = PHASES[phase % PHASES.length];
        faults = p.faults;
        for (const inc of incarnations) inc.proxy.setFaults(faults);
        await sleep(Math.min(options.phaseMs, Math.max(0, workloadEnd - Date.now())));
      }
      faults = {};
      for (const inc of incarnations) inc.proxy.setFaults(faults);
    })();

    // --- the leaders' bad days: SIGKILLs spread over the run, one SIGSTOP in the middle ---
    let kills = 0;
    let pauses = 0;
    let pauseMs = 0;
    const chaos = (async () => {
      // Evenly spread; the pause is the middle one.
      const count = options.kills + (options.pause ? 1 : 0);
      const events = Array.from({ length: count }, (_, i) => ({ at: (i + 1) / (count + 1), what: (options.pause && i === Math.floor(count / 2) ? 'pause' : 'kill') as 'kill' | 'pause' }));
      for (const e of events) {
        const when = workloadStart + e.at * options.durationMs;
        if (when > Date.now()) await sleep(when - Date.now());
        const leader = await liveLeader(options.lease.durationMs * 3 + 20_000);
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
        // Past its lease: until another replica holds the Lease and has written something.
        const deadline = stoppedAt + options.lease.durationMs * 3 + 30_000;
        let successor: Incarnation | undefined;
        while (Date.now() < deadline) {
          successor = incarnations.find((i) => i.identity === holderNow() && i !== leader && i.op);
          if (successor && successor.proxy.requests.some((r) => r.wallAt > stoppedAt && r.method === 'POST' && r.path.startsWith('/v1/secret/data/'))) break;
          await sleep(100);
        }
        leader.op!.kill('SIGCONT');
        pauseMs = Date.now() - stoppedAt;
        say(`${rel(Date.now())}: SIGCONT ${leader.identity} after ${(pauseMs / 1000).toFixed(1)} s (Lease now held by ${holderNow() || 'nobody'})`);
      }
    })();

    await Promise.all([workload, faultSchedule, chaos]);
    say(`${rel(Date.now())}: workload over (${actions} actions, ${ledger.valueCount} values); settling`);

    // --- settle: wait (bounded) until Vault and Kubernetes say what the ledger says ---
    const listKeys = async (folder: string): Promise<string[]> => {
      const res = await vaultHttp(`secret/metadata/${folder}?list=true`);
      if (res.status === 404) return [];
      if (res.status !== 200) throw new Error(`LIST secret/metadata/${folder}: ${res.status}`);
      const keys: string[] = [];
      for (const key of (res.json.data?.keys ?? []) as string[]) {
        if (key.endsWith('/')) keys.push(...(await listKeys(`${folder}${key}`)));
        else keys.push(`${folder}${key}`);
      }
      return keys;
    };
    const readState = async (path: string): Promise<PathState> => {
      const [data, metadata] = await Promise.all([vaultHttp(`secret/data/${path}`), vaultHttp(`secret/metadata/${path}`)]);
      return {
        value: data.status === 200 ? data.json?.data?.data?.value : undefined,
        versions: metadata.status === 200 ? Number(metadata.json?.data?.current_version ?? 0) : 0,
        marked: metadata.status === 200 && !!metadata.json?.data?.custom_metadata?.['managed-by'],
      };
    };
    const snapshot = async () => {
      const listed = (await Promise.all(namespaces.map((ns) => listKeys(`${ns}/`)))).flat();
      const states = new Map<string, PathState>();
      for (const t of ledger.liveTargets()) states.set(t.path, await readState(t.path));
      const remaining = (await Promise.all(namespaces.map(async (namespace) => (await apps.listNamespacedDeployment({ namespace })).items.map((d) => `${namespace}/${d.metadata?.name}`)))).flat();
      const stillThere = deleted.filter((d) => remaining.includes(`${d.namespace}/${d.name}`));
      return { listed, states, stillThere };
    };
    const isSettled = (s: Awaited<ReturnType<typeof snapshot>>) => {
      const live = new Set(ledger.liveTargets().map((t) => t.path));
      return (
        s.stillThere.length === 0 &&
        s.listed.every((k) => live.has(k)) &&
        ledger.liveTargets().every((t) => {
          const st = s.states.get(t.path);
          return st?.marked && st.value === ledger.latest(t.secret);
        })
      );
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
    const countRequests = () => incarnations.reduce((n, i) => n + i.proxy.requests.length, 0);
    const beforeQuiet = countRequests();
    await sleep(options.quietWindowMs);
    const requestsAtRest = countRequests() - beforeQuiet;

    // --- gather the rest, then stop everything ---
    const metricsTexts = await Promise.all(
      incarnations.filter((i) => i.op && i.exitedAt === undefined).map(async (i) => ({ where: `metrics of ${i.identity}`, text: await i.op!.metricsText().catch(() => '') })),
    );
    await shutdown();

    const requests: ReplicaRequest[] = incarnations.flatMap((i) =>
      i.proxy.requests.map((r) => ({ identity: i.identity, at: r.wallAt, method: r.method, path: r.path, outcome: r.outcome, status: r.status, note: r.note })),
    );
    requests.sort((a, b) => a.at - b.at);
    const refOfNote = (note: string | undefined) => {
      if (!note) return undefined;
      const hash = note.lastIndexOf('#');
      return { secret: note.slice(0, hash), index: Number(note.slice(hash + 1)) };
    };
    const landed: LandedWrite[] = requests
      .filter((r) => (r.method === 'POST' || r.method === 'PUT') && r.path.startsWith('/v1/secret/data/') && r.status !== undefined && r.status >= 200 && r.status < 300)
      .map((r) => ({ path: r.path.replace(/^\/v1\/secret\/data\//, '').replace(/\?.*$/, ''), identity: r.identity, at: r.at, ref: refOfNote(r.note) }));

    // Who held the Lease when.
    const markers = new Map<string, LogMarker[]>();
    const logs: string[] = [];
    const logTexts: Array<{ where: string; text: string }> = [];
    for (const inc of incarnations) {
      if (!inc.op) continue;
      logs.push(`${inc.identity}: ${inc.op.logPath}`);
      const text = readFileSync(inc.op.logPath, 'utf8');
      logTexts.push({ where: `log of ${inc.identity}`, text });
      const own: LogMarker[] = [];
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) continue;
        let entry: { time?: number; msg?: string };
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        const marker = LOG_MARKERS.find(([pattern]) => pattern.test(entry.msg ?? ''));
        if (marker && typeof entry.time === 'number') own.push({ at: entry.time, event: marker[1] });
      }
      if (inc.exitedAt !== undefined) own.push({ at: inc.exitedAt, event: 'exited' });
      markers.set(inc.identity, own);
    }
    const { held, judgedByLeaseOnly } = heldWindows(leaseWindows(observations), markers);
    const byNonHolders = requestsByNonHolders(requests, held);
    const writesByNonHolders = byNonHolders.filter(isKvWrite);

    // The merged audit log of every replica, through one bucket.
    const addresses = new Map(incarnations.map((i) => [i.address, i.identity]));
    const audited = requestsSince(auditFrom).filter((r) => r.remoteAddress !== undefined && addresses.has(r.remoteAddress));
    const replay = replayTokenBucket(audited.map((r) => r.at), { ...BUDGET, toleranceMs: REPLAY_TOLERANCE_MS });

    const paths = checkPaths(ledger, state.states, landed);
    const left = leftovers(state.listed, ledger);

    // Values anywhere they must never be: logs, Events, VaultSync statuses, metrics.
    const eventTexts = await Promise.all(namespaces.map(async (namespace) => ({ where: `Events in ${namespace}`, text: JSON.stringify((await core.listNamespacedEvent({ namespace })).items) })));
    const statusTexts = await Promise.all(
      namespaces.map(async (namespace) => {
        const list = (await custom.listNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace, plural: 'vaultsyncs' })) as { items?: unknown[] };
        return { where: `VaultSyncs in ${namespace}`, text: JSON.stringify(list.items ?? []) };
      }),
    );
    const leaks = canaryLeaks([...logTexts, ...eventTexts, ...statusTexts, ...metricsTexts], ledger.canaryPattern());

    const byOutcome: Record<string, number> = {};
    for (const r of requests) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    const targets = ledger.targets();
    const transitions = observations.filter((o, i) => o.holder && o.holder !== observations[i - 1]?.holder).length;
    const figures: ChaosFigures = {
      seed: options.seed,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      replicas: options.replicas,
      incarnations: incarnations.length,
      valuesSet: ledger.valueCount,
      paths: { live: targets.filter((t) => !t.endedBy).length, moved: targets.filter((t) => t.endedBy === 'moved').length, deleted: targets.filter((t) => t.endedBy === 'deleted').length },
      kills,
      pauses,
      pauseSeconds: Math.round(pauseMs / 100) / 10,
      leaseTransitions: transitions,
      requests: requests.length,
      requestsByOutcome: Object.fromEntries(Object.entries(byOutcome).sort()),
      writesByNonHolders: writesByNonHolders.length,
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
      settleSeconds: Math.round(settleMs / 100) / 10,
    };

    // --- the evidence, bounded ---
    const evidence: string[] = [];
    const add = (line: string) => evidence.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
    const section = <T>(title: string, items: readonly T[], format: (item: T) => string) => {
      if (!items.length) return;
      add(`${title}: ${items.length}`);
      for (const item of items.slice(0, 6)) add(`  ${format(item)}`);
      if (items.length > 6) add(`  … and ${items.length - 6} more`);
    };
    const holderAt = (at: number) => [...observations].reverse().find((o) => o.at <= at)?.holder || 'nobody';
    const writeText = (w: LandedWrite) => {
      const inWindow = (held.get(w.identity) ?? []).some((win) => win.from <= w.at && w.at < win.to);
      return `${w.ref ? `value #${w.ref.index + 1}` : 'an unknown value'} by ${w.identity} at ${rel(w.at)}${inWindow ? '' : ' (NOT holding the Lease)'}`;
    };
    const findingText = (f: PathFinding) =>
      `${f.path}: holds ${f.holds < 0 ? 'no value of its Secret' : `value #${f.holds + 1}`} of ${f.values} of ${f.secret}; ${f.versions} versions (allowed ${f.allowed}); last writes: ${f.writes.map(writeText).join('; ') || 'none seen'}`;
    if (!settled) add(`the system did not settle within ${options.settleTimeoutMs / 1000} s after the workload stopped`);
    section('Deployments deleted but still there (the finalizer was not released)', state.stillThere, (d) => `${d.namespace}/${d.name}`);
    if (byNonHolders.length) {
      // Per replica first (how much, when, what it knew), then the Lease's history, then examples.
      const windowsText = (identity: string) => (held.get(identity) ?? []).map((w) => `[${rel(w.from)}, ${Number.isFinite(w.to) ? rel(w.to) : 'end'})`).join(' ') || 'never';
      for (const identity of [...new Set(byNonHolders.map((r) => r.identity))].sort()) {
        const mine = byNonHolders.filter((r) => r.identity === identity);
        const writes = mine.filter(isKvWrite);
        const landedWrites = writes.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300);
        const said = (markers.get(identity) ?? []).map((m) => `${m.event} at ${rel(m.at)}`).join(', ');
        add(`${identity} sent ${mine.length} requests without holding the Lease, from ${rel(mine[0].at)} to ${rel(mine[mine.length - 1].at)}: ${writes.length} KV writes, ${landedWrites.length} applied by Vault; it held the Lease in ${windowsText(identity)}; its own account: ${said || 'nothing'}`);
      }
      const history = observations.filter((o, i) => o.holder !== observations[i - 1]?.holder);
      add(`the Lease: ${history.slice(0, 12).map((o) => `${o.holder || 'nobody'} from ${rel(o.acquireTime ?? o.at)}`).join(', ')}${history.length > 12 ? ', …' : ''}`);
    }
    section('requests by a replica not holding the Lease (writes first)', [...writesByNonHolders, ...byNonHolders.filter((r) => !isKvWrite(r))], (r) =>
      `${r.method} ${r.path} by ${r.identity} at ${rel(r.at)} (${r.outcome}${r.status ? ` ${r.status}` : ''}; the Lease was last seen held by ${holderAt(r.at)})`,
    );
    section('live paths not holding the latest value of their Secret', paths.stale, findingText);
    section('stale values that landed after a newer one', paths.regressions, (r) => `${r.path}: ${writeText(r.write)} after ${writeText(r.after)}`);
    section('paths with more KV versions than values they should have received', paths.excess, findingText);
    section('left in Vault after their Deployment was deleted', left.deleted, (p) => `${p}: ${landed.filter((w) => w.path === p).slice(-3).map(writeText).join('; ') || 'no write seen'}`);
    section('left in Vault after their Deployment moved to another path', left.moved, (p) => `${p}: ${landed.filter((w) => w.path === p).slice(-3).map(writeText).join('; ') || 'no write seen'}`);
    section('keys in Vault the ledger never asked for', left.unknown, (p) => p);
    section('live paths without the ownership marks', paths.unmarked, (p) => p);
    if (replay.rejected) add(`the merged audit log exceeds one ${BUDGET.rate}/s burst-${BUDGET.burst} bucket (tolerance ${REPLAY_TOLERANCE_MS} ms): ${replay.rejected} of ${replay.requests} requests over; busiest second ${replay.busiestSecond}; first over at ${replay.firstRejected.map(rel).join(', ')}`);
    if (requestsAtRest) add(`${requestsAtRest} requests in the ${options.quietWindowMs / 1000} s quiet window after settling`);
    section('values found where they must never be', leaks.found, (l) => `${l.where}: ${l.count} (…${l.sample}…)`);
    if (judgedByLeaseOnly.length) add(`no acquisition found in the logs of ${judgedByLeaseOnly.join(', ')}: judged by the Lease alone`);
    if (evidence.length > MAX_EVIDENCE_LINES) evidence.splice(MAX_EVIDENCE_LINES, evidence.length - MAX_EVIDENCE_LINES, `… ${evidence.length - MAX_EVIDENCE_LINES} more lines`);
    return { figures, evidence, logs };
  } finally {
    await shutdown();
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
