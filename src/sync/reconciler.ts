import type { Logger } from 'pino';
import { Annotations, FINALIZER, isTrue } from '../kube/annotations.js';
import type { ClusterClient } from '../kube/cluster.js';
import { boundedList } from '../kube/message-bounds.js';
import { parseSourceKey, type SlimDeployment, type SlimSecret } from '../kube/objects.js';
import { describeKubeError } from '../kube/reflector.js';
import type { Metrics } from '../observability/metrics.js';
import { VaultRequestError } from '../vault/errors.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { RequestContext, VaultPort } from '../vault/port.js';
import { describeScope, type RequestScope } from '../vault/scope.js';
import { annotationFindings, describeFinding, INVALID_ANNOTATION, preservationReason, preservesOnDelete } from './annotation-check.js';
import { driftPeriodMs as driftPeriod, forceRequested, MIN_DRIFT_PERIOD_MS, hasDrifted, inputFingerprint as fingerprintInputs } from './change-detection.js';
import { deriveTargets, pathsOfSource, describeProblems, materialize, secretNamesOf, type DesiredEntry, type SyncSource } from './desired.js';
import type { Fingerprinter } from './fingerprint.js';
import { describeOwner, ownershipOf } from './ownership.js';
import { planSync, type PlannedOperation, type SyncedEntry } from './plan.js';
import { notDoneFingerprint, SyncProgress } from './progress.js';
import type { SecretIndex } from './secret-index.js';
import type { SourceRef, SyncState, SyncStateStore, WriteFailure } from './state-store.js';
import { checkTenancy, scopeOf, type TenancyGrant } from '../vault/tenancy.js';
import {
  adoptionAllowed,
  classifyFailure,
  decideWrite,
  leafName,
  ownershipMarks,
  planLookups,
  type AdoptionGrant,
  type VaultView,
  type WriteDecision,
  type WriteIntent,
} from './write-policy.js';

export interface SourceLookup {
  deployment(namespace: string, name: string): SlimDeployment | undefined;
  secret(namespace: string, name: string): SlimSecret | undefined;
  /** VaultSyncPolicy grants currently in force (path prefixes, and prefixes where unmarked paths may be adopted). */
  tenancyGrants(): readonly (TenancyGrant & Partial<AdoptionGrant>)[];
}

export interface ReconcilerDeps {
  sources: SourceLookup;
  cluster: ClusterClient;
  vault: VaultPort;
  state: SyncStateStore;
  index: SecretIndex;
  fingerprint: Fingerprinter;
  log: Logger;
  metrics?: Metrics;
  clusterName: string;
  /** Record `content-hash` in custom_metadata: a second write per change, in exchange for hash-level drift checks (default false). */
  contentHashInMetadata?: boolean;
  kvMounts: readonly string[];
  maxSecretBytes: number;
  /** Secrets one source may sync (--max-secrets-per-source). */
  maxSecretsPerSource: number;
  tenantPathTemplate?: string;
  deletePolicy: 'all-versions' | 'latest-version';
  cleanupTimeoutMs: number;
  /** Injected for tests. */
  now?: () => number;
}

export type ReconcileOutcome = 'synced' | 'unchanged' | 'deleted' | 'refused' | 'invalid' | 'suspended' | 'ignored' | 'drift-corrected';

export interface ReconcileResult {
  outcome: ReconcileOutcome;
  /** Come back after this long (the drift-check period). */
  requeueAfterMs?: number;
}

/** Hooks of the work queue around one reconcile. */
export interface ReconcileHooks {
  /**
   * Gives the worker slot back while the reconcile only waits for Vault (called once, before its first Vault
   * request). A drift repair is the exception: its Vault metadata reads come first, the Secret values after.
   */
  releaseSlot?(): void;
}

/** What one reconcile needs on every Vault call: on whose behalf (fair sharing), and the slot hand-back. */
interface VaultSession {
  context: RequestContext;
  beforeVault(): void;
}

/** What the Vault operations of one reconcile came to. */
interface WriteOutcome {
  written: string[];
  adopted: string[];
  deleted: string[];
  refused: string[];
  terminal: WriteFailure[];
  retryable: Array<{ path: KvPath; error: unknown; message?: string }>;
}

/** The write answer shows marks that are not ours on a path we claimed as new (a lost race). */
function raceLost(customMetadata: Record<string, string> | undefined, source: SyncSource, clusterName: string): boolean {
  if (!customMetadata || Object.keys(customMetadata).length === 0) return false;
  return ownershipOf(customMetadata, source, clusterName) !== 'ours';
}

function intentOf(entry: DesiredEntry, hash: string, decision: WriteDecision): WriteIntent {
  const cas = 'cas' in decision ? decision.cas : 0;
  return {
    path: entry.path,
    version: cas + 1,
    hash,
    ...(entry.binaryKeys.length ? { binaryKeys: entry.binaryKeys } : {}),
    // Kept until the marks landed, so marks written after a crash still carry the adopted path's old metadata.
    ...(decision.action === 'adopt' ? { previousMetadata: decision.previousMetadata } : {}),
  };
}

const EVENT_REPEAT_SUPPRESSION_MS = 10 * 60_000;

/** The reason of the Event (and refusal count) for recorded or derived paths cleanup leaves alone: outside the grant. */
const OUTSIDE_GRANT = 'OutsideGrant';

/**
 * reconcile(key): the one place that orchestrates I/O. Reads the caches, decides with pure functions
 * (desired → tenancy → plan), then does the Vault and Kubernetes writes the plan asks for. Level-triggered:
 * it looks at the current state of the world, never at the event that queued the key.
 */
export class Reconciler {
  private readonly cleanupFailingSince = new Map<string, number>();
  private readonly lastEvents = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get contentHashInMetadata(): boolean {
    return this.deps.contentHashInMetadata ?? false;
  }

  async reconcile(key: string, hooks?: ReconcileHooks): Promise<ReconcileResult> {
    let released = false;
    const session: VaultSession = {
      // Every Vault request of this reconcile carries the grant of the source's namespace: the port refuses the rest.
      context: { source: key, scope: scopeOf(parseSourceKey(key).namespace, this.deps, this.deps.sources.tenancyGrants()) },
      beforeVault: () => {
        if (released) return;
        released = true;
        hooks?.releaseSlot?.();
      },
    };
    const result = await this.reconcileOnce(key, session).catch((error) => {
      this.count(key, 'error');
      throw error;
    });
    this.count(key, result.outcome);
    return result;
  }

  private count(key: string, outcome: string) {
    this.deps.metrics?.syncOperations.labels(parseSourceKey(key).kind, outcome === 'drift-corrected' ? 'synced' : outcome).inc();
    if (outcome === 'synced' || outcome === 'unchanged' || outcome === 'drift-corrected') this.deps.metrics?.lastSuccessfulSync.setToCurrentTime();
  }

  private async reconcileOnce(key: string, session: VaultSession): Promise<ReconcileResult> {
    const { kind, namespace, name } = parseSourceKey(key);
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name) : this.deps.sources.secret(namespace, name);
    if (!object) {
      // Gone without our finalizer (never synced, or already cleaned up): forget it.
      this.deps.index.forget(key);
      return { outcome: 'ignored' };
    }
    const source: SyncSource = { kind, namespace, name, uid: object.uid, annotations: object.annotations, podSpec: object.kind === 'Deployment' ? object.podSpec : undefined };
    const ref: SourceRef = { kind, namespace, name, uid: object.uid, path: object.annotations[Annotations.path] };

    if (object.deletionTimestamp || !(Annotations.path in object.annotations)) {
      if (!object.finalizers.includes(FINALIZER)) return { outcome: 'ignored' };
      return this.finalize(key, source, session);
    }
    // Reported, not refused: the sync goes on with each bad value read as annotation-check.ts says.
    await this.reportBadAnnotations(source);
    if (isTrue(object.annotations[Annotations.suspend])) {
      await this.deps.state.setCondition(key, ref, { status: 'False', reason: 'Suspended', message: `${Annotations.suspend} is "true"` });
      return { outcome: 'suspended' };
    }

    const derived = deriveTargets(source, { allowedMounts: this.deps.kvMounts, maxSecretsPerSource: this.deps.maxSecretsPerSource });
    if (!derived.ok) {
      this.deps.index.forget(key);
      return this.reject(key, source, ref, derived.problem.code === 'InvalidPath' ? 'Refused' : 'SyncFailed', derived.problem.code, derived.problem.message);
    }
    const targets = derived.targets;
    for (const target of targets) {
      const tenancy = checkTenancy(target.path, namespace, this.deps.tenantPathTemplate, this.deps.sources.tenancyGrants());
      if (!tenancy.ok) return this.reject(key, source, ref, 'Refused', 'OutsideTenantPrefix', tenancy.reason);
    }
    const secretNames = secretNamesOf(targets);
    this.deps.index.set(key, namespace, secretNames);

    const changeDetection = object.annotations[Annotations.rotationCheck]?.trim().toLowerCase() !== 'disabled';
    const forceToken = object.annotations[Annotations.forceSync];
    const inputFingerprint = fingerprintInputs(targets, secretNames, (secretName) => this.deps.sources.secret(namespace, secretName)?.dataHash, forceToken);
    const previous = await this.deps.state.get(key);
    const driftPeriodMs = driftPeriod(object.annotations[Annotations.reconcile]);

    if (changeDetection && previous?.inputFingerprint === inputFingerprint) {
      // Done, except for writes Vault refused terminally: those wait for a change, or for their slow retry.
      const retryAts = (previous.failures ?? []).flatMap((f) => (f.retryAt ? [Date.parse(f.retryAt) - this.now()] : []));
      const due = retryAts.some((ms) => ms <= 0);
      if (!due) {
        const nextRetry = retryAts.length > 0 ? Math.max(Math.min(...retryAts), MIN_DRIFT_PERIOD_MS) : undefined;
        if (driftPeriodMs === undefined) return { outcome: 'unchanged', ...(nextRetry !== undefined ? { requeueAfterMs: nextRetry } : {}) };
        return this.checkDrift(key, source, ref, previous, driftPeriodMs, session);
      }
    }

    // Something the output depends on changed: read the values now (only now) and decide per path.
    if (await this.deps.cluster.namespaceIsTerminating(namespace)) {
      // Writing now would leave data that nothing cleans up, and a new finalizer would hold the namespace.
      return this.reject(key, source, ref, 'Refused', 'NamespaceTerminating', `namespace "${namespace}" is being deleted; nothing is written to Vault`);
    }
    await this.deps.cluster.addFinalizer(kind, object);
    const values = new Map<string, ReadonlyMap<string, Uint8Array> | undefined>();
    // Only Secrets the cache knows: an absent one costs no API read (a list of absent names costs nothing).
    for (const secretName of secretNames) values.set(secretName, this.deps.sources.secret(namespace, secretName) ? await this.deps.cluster.readSecretData(namespace, secretName) : undefined);
    const materialized = materialize(targets, values, { maxEntryBytes: this.deps.maxSecretBytes });
    if (!materialized.ok) {
      const problems = materialized.problems;
      return this.reject(key, source, ref, 'SyncFailed', problems[0].code, describeProblems(problems));
    }

    const desired = materialized.entries.map((entry) => ({ entry, hash: this.deps.fingerprint.entry(entry) }));
    const operations = planSync(desired, previous?.entries ?? [], { changeDetection, force: forceRequested(forceToken, previous?.inputFingerprint) });
    return this.apply(key, source, ref, session, { operations, previous, inputFingerprint, driftPeriodMs });
  }

  /**
   * Does what the plan asks, every Vault operation of the source at once (the pipeline orders data writes
   * ahead of metadata writes): look up the paths nobody recorded (one LIST per folder), record the intents,
   * send the data writes, each path's marks as soon as its data landed, the deletes. Each answer is recorded
   * as it comes (SyncProgress); a failing path does not hold back the others.
   */
  private async apply(key: string, source: SyncSource, ref: SourceRef, session: VaultSession, plan: { operations: PlannedOperation[]; previous: SyncState | undefined; inputFingerprint: string; driftPeriodMs: number | undefined }): Promise<ReconcileResult> {
    const { operations, previous, inputFingerprint, driftPeriodMs } = plan;
    const nowIso = new Date(this.now()).toISOString();
    const progress = new SyncProgress({
      key,
      ref,
      store: this.deps.state,
      log: this.deps.log,
      now: this.now,
      base: previous ?? { inputFingerprint: '', entries: [], lastSyncTime: nowIso },
      inputFingerprint,
    });
    const adoptAsked = isTrue(source.annotations[Annotations.adopt]);
    const grants = this.deps.sources.tenancyGrants();
    const heldBack = new Map<string, WriteFailure>(); // terminal failures of the same content, not due again
    const writes: Array<{ entry: DesiredEntry; hash: string }> = [];
    const marksOnly: SyncedEntry[] = [];
    const deletes: KvPath[] = [];
    for (const op of operations) {
      if (op.type === 'delete') deletes.push(op.path);
      else if (op.type === 'unchanged') {
        const entry = progress.entry(op.path);
        if (entry?.marksPending) marksOnly.push(entry);
      } else {
        const failure = previous?.failures?.find((f) => formatPath(f.path) === formatPath(op.entry.path));
        if (failure && failure.hash === op.hash && !(failure.retryAt && Date.parse(failure.retryAt) <= this.now())) heldBack.set(formatPath(failure.path), failure);
        else writes.push({ entry: op.entry, hash: op.hash });
      }
    }
    for (const failure of heldBack.values()) progress.fail(failure);
    // An intent for a path this source no longer writes (its inputs changed after a crash) is moot.
    const wanted = new Set(writes.map((w) => formatPath(w.entry.path)));
    for (const intent of previous?.intents ?? []) if (!wanted.has(formatPath(intent.path))) progress.notLanded(intent.path);

    const outcome: WriteOutcome = { written: [], adopted: [], deleted: [], refused: [], terminal: [...heldBack.values()], retryable: [] };
    const decide = (entry: DesiredEntry, view: VaultView, intent?: WriteIntent) =>
      decideWrite({
        source,
        clusterName: this.deps.clusterName,
        recordedVersion: view.state === 'unknown' ? progress.entry(entry.path)?.version : undefined,
        intent: intent ?? progress.intent(entry.path),
        vault: view,
        adoptAllowed: adoptionAllowed(entry.path, source.namespace, adoptAsked, grants),
      });

    // Decide with what is recorded; look up (in one go) what is not.
    const decided: Array<{ entry: DesiredEntry; hash: string; decision: WriteDecision }> = [];
    const toLookUp: Array<{ entry: DesiredEntry; hash: string }> = [];
    for (const write of writes) {
      const decision = decide(write.entry, { state: 'unknown' });
      if (decision.action === 'lookup') toLookUp.push(write);
      else decided.push({ ...write, decision });
    }
    if (writes.length + deletes.length + marksOnly.length > 0) session.beforeVault();
    const views = await this.lookUp(toLookUp.map((w) => w.entry.path), session).catch((error: unknown) => error);
    if (views instanceof Error || !(views instanceof Map)) {
      for (const write of toLookUp) outcome.retryable.push({ path: write.entry.path, error: views });
    } else {
      for (const write of toLookUp) decided.push({ ...write, decision: decide(write.entry, views.get(formatPath(write.entry.path)) ?? { state: 'absent' }) });
    }

    const sending = decided.filter((d) => d.decision.action !== 'refuse');
    for (const d of decided) if (d.decision.action === 'refuse') outcome.refused.push(`refusing to overwrite ${formatPath(d.entry.path)}: ${d.decision.reason}`);
    await progress.intend(sending.flatMap((d) => (d.decision.action === 'recover' ? [] : [intentOf(d.entry, d.hash, d.decision)])));

    await Promise.all([
      ...sending.map((d) => this.writeOne(source, session, progress, d.entry, d.hash, d.decision, decide, outcome)),
      ...marksOnly.map((entry) => this.markOne(source, session, progress, entry, outcome)),
      ...deletes.map(async (path) => {
        try {
          if (await this.deleteOwned(source, path, session)) outcome.deleted.push(formatPath(path));
          progress.deleted(path);
        } catch (error) {
          outcome.retryable.push({ path, error });
        }
      }),
    ]);
    return this.conclude(key, source, ref, progress, outcome, { previous, inputFingerprint, driftPeriodMs, nowIso });
  }

  /** The Vault view of paths nobody recorded: one LIST per folder with several, a metadata read otherwise. */
  private async lookUp(paths: KvPath[], session: VaultSession): Promise<Map<string, VaultView>> {
    const views = new Map<string, VaultView>();
    const read = async (path: KvPath) => {
      const metadata = await this.deps.vault.readMetadata(path, session.context);
      views.set(formatPath(path), metadata ? { state: 'present', metadata } : { state: 'absent' });
    };
    await Promise.all(
      planLookups(paths).map(async (lookup) => {
        if (lookup.kind === 'read-metadata') return read(lookup.path);
        const names = new Set(await this.deps.vault.listFolder(lookup.folder, session.context));
        await Promise.all(lookup.paths.map((path) => (names.has(leafName(path)) ? read(path) : views.set(formatPath(path), { state: 'absent' }))));
      }),
    );
    return views;
  }

  /**
   * One path: the data write (the claim, for a new path), then its marks when they are due. A check-and-set
   * mismatch means the path moved: it is looked up once and decided again (our own landed write is recovered).
   */
  private async writeOne(source: SyncSource, session: VaultSession, progress: SyncProgress, entry: DesiredEntry, hash: string, first: WriteDecision, decide: (entry: DesiredEntry, view: VaultView, intent?: WriteIntent) => WriteDecision, outcome: WriteOutcome): Promise<void> {
    const { vault } = this.deps;
    let decision = first;
    try {
      for (let attempt = 1; ; attempt++) {
        if (decision.action === 'refuse') {
          progress.notLanded(entry.path);
          outcome.refused.push(`refusing to overwrite ${formatPath(entry.path)}: ${decision.reason}`);
          return;
        }
        if (decision.action === 'lookup') throw new Error('unreachable: a looked-up path needs no second lookup');
        if (decision.action === 'recover') {
          progress.land({ path: entry.path, hash: progress.intent(entry.path)?.hash ?? hash, version: decision.version, ...(entry.binaryKeys.length ? { binaryKeys: entry.binaryKeys } : {}), ...(decision.markMissing ? { marksPending: true } : {}) });
          if (decision.markMissing) await this.writeMarks(source, session, progress, entry.path, hash, entry.binaryKeys, progress.intent(entry.path)?.previousMetadata);
          // Landed with other content than is desired now: one more write, on the version we now know.
          if (progress.intent(entry.path) === undefined && progress.entry(entry.path)?.hash !== hash) {
            decision = { action: 'update', cas: decision.version, reason: 'recovered an older write' };
            await progress.intend([intentOf(entry, hash, decision)]);
            continue;
          }
          outcome.written.push(formatPath(entry.path));
          return;
        }
        const before = progress.entry(entry.path);
        try {
          const { version, customMetadata } = await vault.writeData(entry.path, entry.data, { cas: decision.cas }, session.context);
          if (decision.action === 'create' && raceLost(customMetadata, source, this.deps.clusterName)) {
            // A claim appeared between the lookup and the write (cas=0 passes on metadata without a version):
            // take our value out of their path again, and refuse it like any foreign path.
            await vault.deleteLatest(entry.path, session.context);
            progress.notLanded(entry.path);
            outcome.refused.push(`refusing to overwrite ${formatPath(entry.path)}: it became ${describeOwner(customMetadata)} while it was being claimed; the version written (${version}) was deleted again`);
            return;
          }
          const needsMarks = decision.action === 'create' || decision.action === 'adopt' || before?.marksPending === true || this.contentHashInMetadata || (before?.binaryKeys ?? []).join(',') !== entry.binaryKeys.join(',');
          progress.land({ path: entry.path, hash, version, ...(entry.binaryKeys.length ? { binaryKeys: entry.binaryKeys } : {}), ...(needsMarks ? { marksPending: true } : {}) });
          if (decision.action === 'adopt') outcome.adopted.push(formatPath(entry.path));
          outcome.written.push(formatPath(entry.path));
          if (needsMarks) await this.writeMarks(source, session, progress, entry.path, hash, entry.binaryKeys, decision.action === 'adopt' ? decision.previousMetadata : undefined);
          return;
        } catch (error) {
          if (!(error instanceof VaultRequestError && error.kind === 'cas-mismatch') || attempt > 2) throw error;
          // Someone (or our own earlier attempt) wrote a version since: find out who, and decide again.
          const metadata = await vault.readMetadata(entry.path, session.context);
          decision = decide(entry, metadata ? { state: 'present', metadata } : { state: 'absent' }, progress.intent(entry.path));
          if (decision.action === 'update' || decision.action === 'adopt' || decision.action === 'create') await progress.intend([intentOf(entry, hash, decision)]);
        }
      }
    } catch (error) {
      this.recordFailure(progress, entry.path, hash, error, outcome);
    }
  }

  /** Marks of a path whose data landed earlier but whose marks did not (a crash or failure in between). */
  private async markOne(source: SyncSource, session: VaultSession, progress: SyncProgress, entry: SyncedEntry, outcome: WriteOutcome): Promise<void> {
    try {
      await this.writeMarks(source, session, progress, entry.path, entry.hash, entry.binaryKeys ?? [], progress.intent(entry.path)?.previousMetadata);
    } catch (error) {
      this.recordFailure(progress, entry.path, entry.hash, error, outcome);
    }
  }

  private async writeMarks(source: SyncSource, session: VaultSession, progress: SyncProgress, path: KvPath, hash: string, binaryKeys: readonly string[], previousMetadata?: Record<string, string>): Promise<void> {
    const marks = ownershipMarks(source, this.deps.clusterName, { hash: this.contentHashInMetadata ? hash : undefined, binaryKeys, previousMetadata });
    await this.deps.vault.writeMetadata(path, marks, session.context);
    progress.marked(path);
  }

  private recordFailure(progress: SyncProgress, path: KvPath, hash: string, error: unknown, outcome: WriteOutcome): void {
    if (!(error instanceof VaultRequestError)) {
      outcome.retryable.push({ path, error });
      return;
    }
    const detail = error.message.slice(error.message.indexOf(' failed: ') + ' failed: '.length);
    const failure = classifyFailure({ kind: error.kind, retryable: error.retryable || error.kind === 'stopped' || error.kind === 'tls' || error.kind === 'connection', detail });
    // An answer from Vault means the write did not land; no answer (reset, timeout) leaves the intent in place.
    if (error.statusCode !== undefined) progress.notLanded(path);
    if (!failure.terminal) {
      outcome.retryable.push({ path, error, message: failure.message });
      return;
    }
    const recorded: WriteFailure = { path, hash, kind: error.kind, message: failure.message, ...(failure.retryAfterMs ? { retryAt: new Date(this.now() + failure.retryAfterMs).toISOString() } : {}) };
    progress.fail(recorded);
    outcome.terminal.push(recorded);
    this.deps.metrics?.refusals.labels(`Vault_${error.kind}`).inc();
  }

  /** The final record, Ready condition and Events of one reconcile; a retryable failure is thrown (backoff). */
  private async conclude(key: string, source: SyncSource, ref: SourceRef, progress: SyncProgress, outcome: WriteOutcome, context: { previous: SyncState | undefined; inputFingerprint: string; driftPeriodMs: number | undefined; nowIso: string }): Promise<ReconcileResult> {
    const { previous, inputFingerprint, driftPeriodMs, nowIso } = context;
    const { written, adopted, deleted, refused, terminal, retryable } = outcome;
    const changed = written.length > 0 || deleted.length > 0;
    const times = { lastSyncTime: changed || !previous ? nowIso : previous.lastSyncTime, lastDriftCheckTime: nowIso };
    // Terminal answers are recorded against the content: the inputs count as done, the failure is retried on a change.
    const incomplete = refused.length > 0 || retryable.length > 0;
    const state = progress.snapshot(incomplete ? notDoneFingerprint('incomplete', inputFingerprint) : inputFingerprint, times);
    if (adopted.length > 0) await this.event(source, 'Normal', 'Adopted', `took over ${boundedList(adopted)} (no ownership marks before; the previous custom_metadata is kept under "previous-")`);

    const problems = [
      ...refused,
      ...terminal.map((f) => `${formatPath(f.path)}: Vault refused the write (${f.message})${f.retryAt ? `; retried at ${f.retryAt} or when the source changes` : '; retried when the source changes'}`),
      ...retryable.map((r) => `${formatPath(r.path)}: ${r.message ?? (r.error instanceof VaultRequestError ? r.error.message : describeKubeError(r.error))}; retrying`),
    ];
    if (problems.length > 0) {
      const reason = retryable.length > 0 ? 'VaultUnavailable' : terminal.length > 0 ? 'VaultRejected' : 'Refused';
      const message = boundedList(problems, progress.landed > 0 ? `${written.length} path(s) written; ` : '');
      await progress.finish(state, { status: 'False', reason, message });
      if (refused.length > 0) {
        this.deps.metrics?.refusals.labels('NotOwned').inc();
        await this.event(source, 'Warning', 'Refused', boundedList(refused));
      }
      if (terminal.length > 0) await this.event(source, 'Warning', 'VaultRejected', boundedList(problems.slice(refused.length, refused.length + terminal.length)));
      if (retryable.length > 0) {
        const first = retryable[0].error;
        throw first instanceof Error ? first : new Error(String(first));
      }
      const retryIn = terminal.flatMap((f) => (f.retryAt ? [Date.parse(f.retryAt) - this.now()] : []));
      const requeueAfterMs = [driftPeriodMs, ...retryIn].filter((v): v is number => v !== undefined).reduce<number | undefined>((a, b) => (a === undefined ? b : Math.min(a, b)), undefined);
      return { outcome: refused.length > 0 ? 'refused' : 'invalid', requeueAfterMs: requeueAfterMs === undefined ? undefined : Math.max(requeueAfterMs, MIN_DRIFT_PERIOD_MS) };
    }
    const summary = `${state.entries.length} path(s) in sync${written.length ? `; wrote ${boundedList(written)}` : ''}${deleted.length ? `; deleted ${boundedList(deleted)}` : ''}`;
    await progress.finish(state, { status: 'True', reason: 'Synced', message: summary });
    if (changed) {
      this.deps.log.info({ source: key, written: written.length, deleted: deleted.length }, 'synced to Vault');
      await this.event(source, 'Normal', 'Synced', summary);
    }
    return { outcome: changed ? 'synced' : 'unchanged', requeueAfterMs: driftPeriodMs };
  }

  /**
   * Drift: one metadata read per path (no data read). A path whose version moved, whose latest version was
   * deleted, or that vanished is restored from the source; the next desired state is the same as ever.
   */
  private async checkDrift(key: string, source: SyncSource, ref: SourceRef, previous: SyncState, periodMs: number, session: VaultSession): Promise<ReconcileResult> {
    const since = previous.lastDriftCheckTime ? this.now() - Date.parse(previous.lastDriftCheckTime) : Infinity;
    if (since < periodMs) return { outcome: 'unchanged', requeueAfterMs: periodMs - since };
    if (previous.entries.length > 0) session.beforeVault();
    const checks = await Promise.all(
      previous.entries.map(async (entry) => hasDrifted(entry, await this.deps.vault.readMetadata(entry.path, session.context), this.contentHashInMetadata)),
    );
    const drifted = previous.entries.filter((_, i) => checks[i]);
    const now = new Date(this.now()).toISOString();
    if (drifted.length === 0) {
      await this.deps.state.set(key, ref, { ...previous, lastDriftCheckTime: now }, { status: 'True', reason: 'Synced', message: `${previous.entries.length} path(s) in sync; no drift` });
      return { outcome: 'unchanged', requeueAfterMs: periodMs };
    }
    // Forget what was recorded for the drifted paths: the regular path then rewrites them (ownership checked).
    const remaining = previous.entries.filter((e) => !drifted.includes(e));
    await this.deps.state.set(key, ref, { ...previous, inputFingerprint: notDoneFingerprint('drifted', previous.inputFingerprint), entries: remaining, lastDriftCheckTime: now }, { status: 'False', reason: 'Drifted', message: `changed in Vault out of band: ${boundedList(drifted.map((e) => formatPath(e.path)))}` });
    const result = await this.reconcileOnce(key, session);
    if (result.outcome === 'synced') {
      this.deps.metrics?.driftCorrections.inc(drifted.length);
      await this.event(source, 'Normal', 'DriftCorrected', `restored ${boundedList(drifted.map((e) => formatPath(e.path)))} after an out-of-band change in Vault`);
      return { outcome: 'drift-corrected', requeueAfterMs: periodMs };
    }
    return result;
  }

  /** Deletes a path (policy: every version, or the latest), only if it is ours. */
  private async deleteOwned(source: SyncSource, path: KvPath, session: VaultSession): Promise<boolean> {
    const metadata = await this.deps.vault.readMetadata(path, session.context);
    if (!metadata) return false;
    if (ownershipOf(metadata.customMetadata, source, this.deps.clusterName) !== 'ours') {
      await this.event(source, 'Warning', 'Refused', `not deleting ${formatPath(path)}: it is ${describeOwner(metadata.customMetadata)}`);
      return false;
    }
    if (this.deps.deletePolicy === 'latest-version') await this.deps.vault.deleteLatest(path, session.context);
    else await this.deps.vault.deleteAll(path, session.context);
    return true;
  }

  /**
   * The source is being deleted, or its path annotation was removed: delete its Vault data (unless
   * preserve-on-delete), then release the finalizer. A Vault that stays down does not hold the object
   * forever: after cleanupTimeout the finalizer goes anyway, with an Event saying what was left behind.
   */
  private async finalize(key: string, source: SyncSource, session: VaultSession): Promise<ReconcileResult> {
    const { kind, namespace, name } = source;
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name)! : this.deps.sources.secret(namespace, name)!;
    const why = object.deletionTimestamp ? 'source deleted' : `the ${Annotations.path} annotation was removed`;
    const paths = await this.ownedPaths(key, source, session.context.scope);
    if (preservesOnDelete(source.annotations)) {
      const type = isTrue(source.annotations[Annotations.preserveOnDelete]) ? 'Normal' : 'Warning'; // kept on a bad value
      await this.event(source, type, 'Preserved', `${why}; Vault data kept (${preservationReason(source.annotations)}): ${boundedList(paths.map(formatPath)) || 'nothing synced'}`);
    } else {
      const deleted: string[] = [];
      if (paths.length > 0) session.beforeVault();
      const results = await Promise.allSettled(paths.map(async (path) => (await this.deleteOwned(source, path, session)) && deleted.push(formatPath(path))));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        const error: unknown = failed.reason;
        const failingSince = this.cleanupFailingSince.get(key) ?? this.now();
        this.cleanupFailingSince.set(key, failingSince);
        if (this.now() - failingSince < this.deps.cleanupTimeoutMs) throw error; // retried with backoff by the queue
        const left = paths.map(formatPath).filter((p) => !deleted.includes(p));
        this.deps.metrics?.errors.labels('cleanup_abandoned').inc();
        await this.event(source, 'Warning', 'DataLeftBehind', `${why}; Vault failed for ${Math.round((this.now() - failingSince) / 1000)}s (${error instanceof Error ? error.message : 'error'}); releasing the finalizer and leaving in Vault: ${boundedList(left)}`);
      }
      if (deleted.length > 0 || paths.length === 0) {
        await this.event(source, 'Normal', 'Deleted', `${why}; deleted from Vault: ${boundedList(deleted) || 'nothing was synced'}`);
      }
    }
    this.cleanupFailingSince.delete(key);
    await this.deps.cluster.removeFinalizer(kind, object);
    this.deps.index.forget(key);
    await this.deps.state.delete(key);
    return { outcome: 'deleted' };
  }

  /**
   * The paths this source wrote: from its record, and (after losing it) from its annotations; only those
   * inside its grant. The others are never touched, and the Event says so without naming them: what lies
   * outside the grant (and whose it is, or whether it exists) is not this namespace's to learn.
   */
  private async ownedPaths(key: string, source: SyncSource, scope: RequestScope): Promise<KvPath[]> {
    const { inside, outside } = pathsOfSource((await this.deps.state.get(key))?.entries ?? [], source, { allowedMounts: this.deps.kvMounts, maxSecretsPerSource: this.deps.maxSecretsPerSource, scope });
    if (outside.length > 0) {
      this.deps.metrics?.refusals.labels(OUTSIDE_GRANT).inc();
      await this.event(source, 'Warning', OUTSIDE_GRANT, `not touching ${outside.length} path(s) this source names or recorded: they are outside what ${describeScope(scope)} may reach`);
    }
    return inside;
  }

  private annotationContext(source: SyncSource) {
    return { namespace: source.namespace, allowedMounts: this.deps.kvMounts, tenantPathTemplate: this.deps.tenantPathTemplate };
  }

  /**
   * One Warning Event naming every annotation value the operator does not read as written (the admission
   * policy may be off, Warn only, or younger than the object). Counted once per Event actually recorded, so a
   * source reconciled often does not inflate the metric while its Event is de-duplicated.
   */
  private async reportBadAnnotations(source: SyncSource): Promise<void> {
    const findings = annotationFindings(source.annotations, this.annotationContext(source), source.kind);
    if (findings.length === 0) return;
    if (await this.event(source, 'Warning', INVALID_ANNOTATION, boundedList(findings.map(describeFinding)))) this.deps.metrics?.refusals.labels(INVALID_ANNOTATION).inc();
  }

  private async reject(key: string, source: SyncSource, ref: SourceRef, reason: 'Refused' | 'SyncFailed', code: string, message: string): Promise<ReconcileResult> {
    this.deps.metrics?.refusals.labels(code).inc();
    await this.deps.state.setCondition(key, ref, { status: 'False', reason: code, message }).catch((error) =>
      this.deps.log.warn({ source: key, err: describeKubeError(error) }, 'could not record the VaultSync status'),
    );
    await this.event(source, 'Warning', reason, message);
    return { outcome: reason === 'Refused' ? 'refused' : 'invalid' };
  }

  /**
   * Records an Event on the source; the same reason and message is not repeated within 10 minutes.
   * Says whether it was recorded this time (false when suppressed as a repeat).
   */
  private async event(source: SyncSource, type: 'Normal' | 'Warning', reason: string, message: string): Promise<boolean> {
    const sourceName = `${source.kind}/${source.namespace}/${source.name}`;
    (type === 'Warning' ? this.deps.log.warn : this.deps.log.info).call(this.deps.log, { source: sourceName, reason }, message);
    const dedupKey = `${sourceName}\0${reason}\0${message}`;
    const last = this.lastEvents.get(dedupKey);
    if (last !== undefined && this.now() - last < EVENT_REPEAT_SUPPRESSION_MS) return false;
    this.lastEvents.set(dedupKey, this.now());
    if (this.lastEvents.size > 10_000) this.lastEvents.clear();
    const object = source.kind === 'Deployment' ? this.deps.sources.deployment(source.namespace, source.name) : this.deps.sources.secret(source.namespace, source.name);
    if (!object) return true;
    try {
      await this.deps.cluster.createEvent(source.kind, object, type, reason, message);
    } catch (error) {
      this.deps.log.warn({ source: sourceName, reason, err: describeKubeError(error) }, 'could not record an Event');
    }
    return true;
  }
}
