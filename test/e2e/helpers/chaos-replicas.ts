// The chaos run's replicas: real operator processes with leader election, each behind its OWN fault-injecting
// proxy in front of the real OpenBao (every request is attributable to one replica and to the moment it
// reached the proxy; each proxy connects to Vault from its own loopback address, so OpenBao's audit log tells
// them apart too). A replica that exits is replaced by a new one with a new name, as a ReplicaSet would do.
// Also polls the Lease, so that the verdicts know who held it when, and reads what each replica logged about
// its leadership.
import { readFileSync } from 'node:fs';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { LeaseObservation, LogMarker, ReplicaRequest } from './chaos-checks.js';
import { startFaultProxy, type FaultProxy, type Faults } from './fault-proxy.js';
import { startOperatorProcess, type OperatorProcess } from './ops.js';

export interface ReplicaSettings {
  replicas: number;
  lease: { namespace: string; name: string; durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  /** The operator's flags except --vault-addr (each replica gets its proxy's). */
  operatorArgs: string[];
  vaultAddr: string;
  kubeconfigPath: string;
  /** Where the proxies connect from: `<prefix>.<slot>.<incarnation>`, e.g. "127.42". */
  addressPrefix: string;
  /** The proxies' fault decisions. */
  random: () => number;
  /** Notes on request bodies (which test value a write carried). */
  inspect: (method: string, path: string, body: Buffer) => string | undefined;
  say: (message: string) => void;
}

export interface Incarnation {
  slot: number;
  identity: string;
  address: string;
  proxy: FaultProxy;
  op?: OperatorProcess;
  exitedAt?: number;
}

/** What each replica logs when its leadership changes (src/kube/leader-election.ts). */
const LOG_MARKERS: Array<[RegExp, LogMarker['event']]> = [
  [/became the leader|acquired the lease/, 'acquired'],
  [/lost the lease/, 'lost'],
  [/released the lease/, 'released'],
];
const LEASE_POLL_MS = 100;
/** Incarnations per slot: the last octet of the proxy's source address. */
const MAX_INCARNATIONS = 250;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Every set of replicas not shut down yet: a test that timed out still ends their processes (afterAll). */
const running = new Set<ChaosReplicas>();

export async function shutdownAllReplicas(): Promise<void> {
  await Promise.all([...running].map((r) => r.shutdown()));
}

const toMs = (t: unknown) => (t === undefined || t === null ? undefined : new Date(t as string).getTime());

export class ChaosReplicas {
  readonly incarnations: Incarnation[] = [];
  /** Every version of the Lease record the poller saw, in order. */
  readonly observations: LeaseObservation[] = [];
  private faults: Faults = {};
  private stopping = false;
  private polling = true;
  private slots: Array<Promise<void>> = [];
  private poller?: Promise<void>;
  private stopped?: Promise<void>;

  constructor(private readonly settings: ReplicaSettings, private readonly kubeConfig: KubeConfig) {}

  start(): void {
    running.add(this);
    this.slots = Array.from({ length: this.settings.replicas }, (_, slot) => this.runSlot(slot));
    this.poller = this.pollLease();
  }

  /** The faults every proxy applies from now on (also the proxies of replicas started later). */
  setFaults(faults: Faults): void {
    this.faults = faults;
    for (const inc of this.incarnations) inc.proxy.setFaults(faults);
  }

  holderNow(): string {
    return this.observations[this.observations.length - 1]?.holder ?? '';
  }

  /** The running replica that holds the Lease, waiting (bounded) for one. */
  async leader(timeoutMs: number): Promise<Incarnation | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const inc = this.incarnations.find((i) => i.identity === this.holderNow() && i.op && i.exitedAt === undefined);
      if (inc) return inc;
      await sleep(LEASE_POLL_MS);
    }
    return undefined;
  }

  requestCount(): number {
    return this.incarnations.reduce((n, i) => n + i.proxy.requests.length, 0);
  }

  async metricsTexts(): Promise<Array<{ where: string; text: string }>> {
    const running = this.incarnations.filter((i) => i.op && i.exitedAt === undefined);
    return Promise.all(running.map(async (i) => ({ where: `metrics of ${i.identity}`, text: await i.op!.metricsText().catch(() => '') })));
  }

  /** Kills every replica, stops polling, closes the proxies. Idempotent; safe half-way through a run. */
  shutdown(): Promise<void> {
    return (this.stopped ??= (async () => {
      this.stopping = true;
      for (const i of this.incarnations) i.op?.kill('SIGKILL');
      await Promise.all(this.slots);
      this.polling = false;
      await this.poller;
      for (const i of this.incarnations) await i.proxy.close();
      running.delete(this);
    })());
  }

  /** Every request every replica sent, as its proxy saw it, in time order. */
  requests(): ReplicaRequest[] {
    return this.incarnations
      .flatMap((i) => i.proxy.requests.map((r) => ({ identity: i.identity, at: r.wallAt, method: r.method, path: r.path, outcome: r.outcome, status: r.status, note: r.note })))
      .sort((a, b) => a.at - b.at);
  }

  /** What each replica said about its leadership, and when it exited. Read after shutdown (complete logs). */
  logs(): { markers: Map<string, LogMarker[]>; texts: Array<{ where: string; text: string }>; paths: string[] } {
    const markers = new Map<string, LogMarker[]>();
    const texts: Array<{ where: string; text: string }> = [];
    const paths: string[] = [];
    for (const inc of this.incarnations) {
      if (!inc.op) continue;
      paths.push(`${inc.identity}: ${inc.op.logPath}`);
      const text = readFileSync(inc.op.logPath, 'utf8');
      texts.push({ where: `log of ${inc.identity}`, text });
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
    return { markers, texts, paths };
  }

  private async runSlot(slot: number): Promise<void> {
    const { settings } = this;
    for (let n = 1; !this.stopping && n < MAX_INCARNATIONS; n++) {
      const address = `${settings.addressPrefix}.${slot + 1}.${n}`;
      const proxy = await startFaultProxy({ upstream: settings.vaultAddr, localAddress: address, inspect: settings.inspect, random: settings.random });
      proxy.setFaults(this.faults);
      const inc: Incarnation = { slot, identity: `chaos-${String.fromCharCode(97 + slot)}-${n}`, address, proxy };
      this.incarnations.push(inc);
      try {
        inc.op = await startOperatorProcess(
          inc.identity,
          [
            ...settings.operatorArgs,
            `--vault-addr=${proxy.url}`,
            '--leader-elect=true',
            `--leader-election-namespace=${settings.lease.namespace}`,
            `--leader-election-id=${settings.lease.name}`,
            `--leader-election-lease-duration=${settings.lease.durationMs / 1000}s`,
            `--leader-election-renew-deadline=${settings.lease.renewDeadlineMs / 1000}s`,
            `--leader-election-retry-period=${settings.lease.retryPeriodMs / 1000}s`,
            '--log-level=info',
          ],
          { KUBECONFIG: settings.kubeconfigPath },
        );
        if (this.stopping) inc.op.kill('SIGKILL');
        await inc.op.exited;
      } catch (error) {
        settings.say(`replica ${inc.identity} did not start: ${(error as Error).message.slice(0, 300)}`);
        await sleep(1000);
      }
      inc.exitedAt = Date.now();
    }
  }

  private async pollLease(): Promise<void> {
    const api = this.kubeConfig.makeApiClient(CoordinationV1Api);
    const { namespace, name } = this.settings.lease;
    let last = '';
    while (this.polling) {
      try {
        const lease = await api.readNamespacedLease({ namespace, name });
        const o: LeaseObservation = {
          at: Date.now(),
          holder: lease.spec?.holderIdentity ?? '',
          acquireTime: toMs(lease.spec?.acquireTime),
          renewTime: toMs(lease.spec?.renewTime),
          durationMs: (lease.spec?.leaseDurationSeconds ?? 15) * 1000,
        };
        // Only new versions: `at` is then when this version was first seen.
        const fingerprint = `${o.holder}|${o.acquireTime}|${o.renewTime}|${o.durationMs}`;
        if (fingerprint !== last) this.observations.push(o);
        last = fingerprint;
      } catch (error) {
        if ((error as { code?: number }).code !== 404) this.settings.say(`lease poll failed: ${(error as Error).message.slice(0, 200)}`);
      }
      await sleep(LEASE_POLL_MS);
    }
  }
}
