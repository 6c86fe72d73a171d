import type { Logger } from 'pino';
import { Annotations, isTrue } from '../kube/annotations.js';
import { boundedList } from '../kube/message-bounds.js';
import type { SlimDeployment, SlimMeta, SlimSecret, SourceKind } from '../kube/objects.js';
import { parseSourceKey } from '../kube/objects.js';
import { describeKubeError } from '../kube/reflector.js';
import type { Metrics } from '../observability/metrics.js';
import { VaultRequestError } from '../vault/errors.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { RequestContext, VaultPort } from '../vault/port.js';
import { describeScope } from '../vault/scope.js';
import { describeFinding, INVALID_ANNOTATION, type AnnotationFinding } from './annotation-check.js';
import { MIN_DRIFT_PERIOD_MS } from './change-detection.js';
import type { DecisionPipeline } from './gather.js';
import { describeOwner, ownershipOf } from './ownership.js';
import type { SyncedEntry } from './plan.js';
import { notDoneFingerprint, SyncProgress } from './progress.js';
import type { SecretIndex } from './secret-index.js';
import type { SourceRef, SyncStateStore, WriteFailure } from './state-store.js';
import { composeCustomMetadata, userMetadataHash } from './user-metadata.js';
import { userMetadataAt, type DeleteOp, type MarksOp, type UserMetadata, type Verdict, type WriteOp } from './verdict.js';
import { classifyFailure, ownershipMarks } from './write-policy.js';

export type { SourceLookup } from './gather.js';

/** The Kubernetes writes of a reconcile (the reads are the pipeline's). */
export interface ReconcilerCluster {
  addFinalizer(kind: SourceKind, object: SlimMeta): Promise<void>;
  removeFinalizer(kind: SourceKind, object: SlimMeta): Promise<void>;
  createEvent(kind: SourceKind, object: SlimMeta, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export interface ReconcilerDeps {
  /** Decides (src/sync/verdict.ts) from what it gathers; the reconciler carries the verdict out. */
  pipeline: DecisionPipeline;
  cluster: ReconcilerCluster;
  vault: Pick<VaultPort, 'writeData' | 'writeMetadata' | 'deleteLatest' | 'deleteAll'>;
  state: SyncStateStore;
  index: SecretIndex;
  log: Logger;
  metrics?: Metrics;
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
  /** Gives the worker slot back while the reconcile only waits for Vault (called once, before its first Vault request). */
  releaseSlot?(): void;
}

/**
 * A check-and-set write found another version than decided on: someone else wrote. Never retried with the same
 * value in the same reconcile; the queue retries the source, which decides again from fresh reads.
 */
export class VersionConflictError extends Error {
  override readonly name = 'VersionConflictError';
}

/** One reconcile's Vault context and the object it serves. */
interface Run {
  key: string;
  object: SlimDeployment | SlimSecret;
  ref: SourceRef;
  context: RequestContext;
  beforeVault(): void;
  /** The user custom_metadata written with the marks (an apply verdict's). */
  user?: UserMetadata;
}

/** What the Vault operations of one reconcile came to. */
interface WriteOutcome {
  written: string[];
  adopted: string[];
  deleted: string[];
  refused: string[];
  /** Paths whose custom_metadata alone was written (no new version). */
  marked: string[];
  terminal: WriteFailure[];
  retryable: Array<{ path: KvPath; error: unknown; message?: string }>;
  conflicts: string[];
}

const EVENT_REPEAT_SUPPRESSION_MS = 10 * 60_000;

/** The reason of the Event (and refusal count) for paths a source names or recorded outside its grant. */
const OUTSIDE_GRANT = 'OutsideGrant';

/**
 * reconcile(key): asks the decision pipeline for the source's Verdict (src/sync/verdict.ts), then carries it
 * out: the Vault and Kubernetes writes, the record, the Events. Level-triggered: it looks at the current
 * state of the world, never at the event that queued the key.
 */
export class Reconciler {
  private readonly cleanupFailingSince = new Map<string, number>();
  private readonly lastEvents = new Map<string, number>();
  /** Sources whose last reconcile hit a version conflict: their next decision reads the record from the API server. */
  private readonly freshNext = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get settings() {
    return this.deps.pipeline.settings;
  }

  async reconcile(key: string, hooks?: ReconcileHooks): Promise<ReconcileResult> {
    let released = false;
    const beforeVault = () => {
      if (released) return;
      released = true;
      hooks?.releaseSlot?.();
    };
    const result = await this.reconcileOnce(key, beforeVault).catch((error) => {
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

  private async reconcileOnce(key: string, beforeVault: () => void): Promise<ReconcileResult> {
    const fresh = this.freshNext.delete(key);
    const decided = await this.deps.pipeline.verdict(key, { fresh, beforeVault, readsSecrets: (namespace, names) => this.deps.index.set(key, namespace, [...names]) }).catch((error: unknown) => this.cleanupBlocked(key, error));
    if (!('verdict' in decided)) return decided;
    const { verdict, input, context } = decided;
    const object = input.object;
    if (verdict.type === 'ignore' || !object) {
      if (verdict.index === 'forget') this.deps.index.forget(key);
      return { outcome: 'ignored' };
    }
    const ref: SourceRef = { kind: object.kind, namespace: object.namespace, name: object.name, uid: object.uid, path: object.annotations[Annotations.path] };
    const run: Run = { key, object, ref, context, beforeVault };
    if (verdict.type === 'finalize') return this.finalize(run, verdict);
    if (verdict.index === 'forget') this.deps.index.forget(key);
    else if (verdict.index) this.deps.index.set(key, object.namespace, verdict.index);
    // Reported, not refused: the sync goes on with each bad value read as annotation-check.ts says.
    await this.reportBadAnnotations(object, verdict.findings ?? []);
    await this.reportOutside(object, verdict);
    switch (verdict.type) {
      case 'suspended':
        await this.deps.state.setCondition(key, ref, { status: 'False', reason: 'Suspended', message: `${Annotations.suspend} is "true"` });
        return { outcome: 'suspended' };
      case 'reject':
        return this.reject(run, verdict.reason, verdict.code, verdict.message);
      case 'unchanged':
        return { outcome: 'unchanged', ...(verdict.requeueAfterMs !== undefined ? { requeueAfterMs: verdict.requeueAfterMs } : {}) };
      case 'drift-check': {
        const kept = verdict.updatePolicy === 'IfNotExists' ? `; kept: create-once (${Annotations.updatePolicy}: IfNotExists)` : '';
        const message = `${verdict.record.entries.length} path(s) in sync; no drift${kept}`;
        await this.deps.state.set(key, ref, { ...verdict.record, lastDriftCheckTime: new Date(this.now()).toISOString() }, { status: 'True', reason: 'Synced', message });
        return { outcome: 'unchanged', requeueAfterMs: verdict.requeueAfterMs };
      }
      case 'apply':
        return this.apply(run, verdict);
    }
  }

  /**
   * Carries out an apply verdict, every Vault operation of the source at once (the pipeline orders data writes
   * ahead of metadata writes): record the intents, send the data writes, each path's marks as soon as its data
   * landed, the deletes. Each answer is recorded as it comes (SyncProgress); a failing path does not hold
   * back the others.
   */
  private async apply(run: Run, verdict: Extract<Verdict, { type: 'apply' }>): Promise<ReconcileResult> {
    const { key, ref } = run;
    run.user = verdict.userMetadata;
    const nowIso = new Date(this.now()).toISOString();
    if (verdict.drifted.length > 0) {
      // Recorded first: a crash now leaves the drifted paths forgotten, so the next reconcile restores them.
      const paths = verdict.drifted.map((d) => formatPath(d.path));
      await this.deps.state.set(key, ref, { ...verdict.base, lastDriftCheckTime: nowIso }, { status: 'False', reason: 'Drifted', message: `changed in Vault out of band: ${boundedList(paths)}` });
    }
    const progress = new SyncProgress({ key, ref, store: this.deps.state, log: this.deps.log, now: this.now, base: verdict.base, inputFingerprint: verdict.inputFingerprint });
    for (const failure of verdict.heldBack) progress.fail(failure);
    const outcome: WriteOutcome = { written: [], adopted: [], deleted: [], refused: [], marked: [], terminal: [...verdict.heldBack], retryable: [], conflicts: [] };

    const sending = verdict.writes.filter((w) => w.decision.action !== 'refuse');
    for (const w of verdict.writes) {
      if (w.decision.action !== 'refuse') continue;
      progress.notLanded(w.entry.path); // an intent the lookup found not ours: nothing of ours there
      outcome.refused.push(`refusing to overwrite ${formatPath(w.entry.path)}: ${w.decision.reason}`);
    }
    if (sending.length + verdict.marks.length + verdict.deletes.length > 0) {
      await this.deps.cluster.addFinalizer(run.object.kind, run.object);
      run.beforeVault();
    }
    // A landed write found by its intent is recorded before anything new is intended (one durable write with both).
    for (const w of sending) if (w.recovered) progress.land({ path: w.entry.path, hash: w.recovered.hash, version: w.recovered.version, ...binaryKeysOf(w.entry.binaryKeys), ...(w.recovered.markMissing ? { marksPending: true } : {}) });
    await progress.intend(sending.flatMap((w) => (w.intent ? [w.intent] : [])));

    await Promise.all([
      ...sending.map((w) => this.writeOne(run, progress, w, outcome)),
      ...verdict.marks.map((op) => this.markOne(run, progress, op, outcome)),
      ...verdict.deletes.map(async (d) => {
        try {
          if (await this.deleteDecided(run, d)) outcome.deleted.push(formatPath(d.path));
          progress.deleted(d.path);
        } catch (error) {
          outcome.retryable.push({ path: d.path, error });
        }
      }),
    ]);
    const result = await this.conclude(run, progress, outcome, { verdict, nowIso });
    if (verdict.drifted.length > 0 && result.outcome === 'synced') {
      const paths = verdict.drifted.map((d) => formatPath(d.path));
      this.deps.metrics?.driftCorrections.inc(paths.length);
      await this.event(run.object, 'Normal', 'DriftCorrected', `restored ${boundedList(paths)} after an out-of-band change in Vault`);
      return { outcome: 'drift-corrected', requeueAfterMs: verdict.driftPeriodMs };
    }
    return result;
  }

  /**
   * One path: the data write (the claim, for a new path), then its marks when they are due. A check-and-set
   * mismatch is a fence: nothing is recorded as landed and nothing is retried now (see VersionConflictError).
   */
  private async writeOne(run: Run, progress: SyncProgress, op: WriteOp, outcome: WriteOutcome): Promise<void> {
    const { entry, hash, decision } = op;
    const path = entry.path;
    if (op.unchecked) throw new Error(`unreachable: a write decided without Vault's view reached the reconciler (${formatPath(path)})`);
    try {
      if (decision.action === 'recover') {
        // Marked already, but with which user keys is not known (the crash may have come between them): written
        // again when the source wants some, so the record can say what is there.
        const marks = decision.markMissing || userMetadataHash(userMetadataAt(run.user, path)) !== undefined;
        progress.land({ path, hash, version: decision.version, ...binaryKeysOf(entry.binaryKeys), ...(marks ? { marksPending: true } : {}) });
        if (marks) await this.writeMarks(run, progress, path, hash, entry.binaryKeys, progress.intent(path)?.previousMetadata);
        outcome.written.push(formatPath(path));
        return;
      }
      if (decision.action !== 'create' && decision.action !== 'update' && decision.action !== 'adopt') throw new Error(`unreachable: ${decision.action} is not sent`);
      const before = progress.entry(path);
      const metadataHash = userMetadataHash(userMetadataAt(run.user, path));
      const { version, customMetadata } = await this.deps.vault.writeData(path, entry.data, { cas: decision.cas }, run.context);
      if (decision.action === 'create' && customMetadata && Object.keys(customMetadata).length > 0 && ownershipOf(customMetadata, run.object, this.settings.clusterName) !== 'ours') {
        // A claim appeared between the lookup and the write (cas=0 passes on metadata without a version):
        // take our value out of their path again, and refuse it like any foreign path.
        await this.deps.vault.deleteLatest(path, run.context);
        progress.notLanded(path);
        outcome.refused.push(`refusing to overwrite ${formatPath(path)}: it became ${describeOwner(customMetadata)} while it was being claimed; the version written (${version}) was deleted again`);
        return;
      }
      const needsMarks =
        decision.action === 'create' ||
        decision.action === 'adopt' ||
        before?.marksPending === true ||
        this.settings.contentHashInMetadata ||
        (before?.binaryKeys ?? []).join(',') !== entry.binaryKeys.join(',') ||
        before?.metadataHash !== metadataHash;
      // Without a marks write the path keeps the user metadata it had, which is the one wanted (else marks are due).
      progress.land({ path, hash, version, ...binaryKeysOf(entry.binaryKeys), ...(needsMarks ? { marksPending: true } : metadataHash ? { metadataHash } : {}) });
      if (decision.action === 'adopt') outcome.adopted.push(formatPath(path));
      outcome.written.push(formatPath(path));
      if (needsMarks) await this.writeMarks(run, progress, path, hash, entry.binaryKeys, decision.action === 'adopt' ? decision.previousMetadata : undefined);
    } catch (error) {
      if (error instanceof VaultRequestError && error.kind === 'cas-mismatch') {
        progress.conflict(path);
        outcome.conflicts.push(formatPath(path));
        return;
      }
      this.recordFailure(progress, path, hash, error, outcome);
    }
  }

  /** The custom_metadata of a path whose data is as wanted: its marks did not follow (a crash or failure in between), or the user's keys changed. */
  private async markOne(run: Run, progress: SyncProgress, op: MarksOp, outcome: WriteOutcome): Promise<void> {
    const { entry } = op;
    try {
      await this.writeMarks(run, progress, entry.path, entry.hash, entry.binaryKeys ?? [], progress.intent(entry.path)?.previousMetadata);
      outcome.marked.push(formatPath(entry.path));
    } catch (error) {
      this.recordFailure(progress, entry.path, entry.hash, error, outcome);
    }
  }

  private async writeMarks(run: Run, progress: SyncProgress, path: KvPath, hash: string, binaryKeys: readonly string[], previousMetadata?: Record<string, string>): Promise<void> {
    const marks = ownershipMarks(run.object, this.settings.clusterName, { hash: this.settings.contentHashInMetadata ? hash : undefined, binaryKeys, previousMetadata });
    const user = userMetadataAt(run.user, path);
    const { customMetadata, userDropped } = composeCustomMetadata(marks, user);
    if (userDropped) this.deps.log.warn({ source: run.key, path: formatPath(path), marks: Object.keys(marks).length }, `the ownership marks alone fill Vault's custom_metadata; the ${user.size} key(s) of ${Annotations.customMetadata} are not written there`);
    await this.deps.vault.writeMetadata(path, customMetadata, run.context);
    progress.marked(path, userMetadataHash(user));
  }

  private recordFailure(progress: SyncProgress, path: KvPath, hash: string, error: unknown, outcome: WriteOutcome): void {
    if (!(error instanceof VaultRequestError)) {
      outcome.retryable.push({ path, error });
      return;
    }
    const detail = error.message.slice(error.message.indexOf(' failed: ') + ' failed: '.length);
    const failure = classifyFailure({ kind: error.kind, retryable: error.retryable || error.kind === 'stopped' || error.kind === 'tls' || error.kind === 'connection', detail });
    // An answer from Vault means the write did not land; no answer (reset, timeout) leaves the intent in place,
    // and so does an answer to a retry whose earlier attempt got none (that attempt may have landed).
    if (error.statusCode !== undefined && !error.earlierAttemptUnanswered) progress.notLanded(path);
    if (!failure.terminal) {
      outcome.retryable.push({ path, error, message: failure.message });
      return;
    }
    const recorded: WriteFailure = { path, hash, kind: error.kind, message: failure.message, ...(failure.retryAfterMs ? { retryAt: new Date(this.now() + failure.retryAfterMs).toISOString() } : {}) };
    progress.fail(recorded);
    outcome.terminal.push(recorded);
    this.deps.metrics?.refusals.labels(`Vault_${error.kind}`).inc();
  }

  /** The final record, Ready condition and Events of one reconcile; a retryable failure or a conflict is thrown (backoff). */
  private async conclude(run: Run, progress: SyncProgress, outcome: WriteOutcome, context: { verdict: Extract<Verdict, { type: 'apply' }>; nowIso: string }): Promise<ReconcileResult> {
    const { verdict, nowIso } = context;
    const { driftPeriodMs, inputFingerprint, base } = verdict;
    const { written, adopted, deleted, refused, marked, terminal, retryable, conflicts } = outcome;
    const changed = written.length > 0 || deleted.length > 0 || marked.length > 0;
    const times = { lastSyncTime: changed || base.lastSyncTime === '' ? nowIso : base.lastSyncTime, lastDriftCheckTime: nowIso };
    // Terminal answers are recorded against the content: the inputs count as done, the failure is retried on a change.
    const incomplete = refused.length > 0 || retryable.length > 0 || conflicts.length > 0;
    const state = progress.snapshot(incomplete ? notDoneFingerprint('incomplete', inputFingerprint) : inputFingerprint, times);
    if (adopted.length > 0) await this.event(run.object, 'Normal', 'Adopted', `took over ${boundedList(adopted)} (no ownership marks before; the previous custom_metadata is kept under "previous-")`);

    const problems = [
      ...refused,
      ...terminal.map((f) => `${formatPath(f.path)}: Vault refused the write (${f.message})${f.retryAt ? `; retried at ${f.retryAt} or when the source changes` : '; retried when the source changes'}`),
      ...conflicts.map((p) => `${p}: the version in Vault moved (another writer); not retried with this value: decided again from fresh reads`),
      ...retryable.map((r) => `${formatPath(r.path)}: ${r.message ?? (r.error instanceof VaultRequestError ? r.error.message : describeKubeError(r.error))}; retrying`),
    ];
    if (problems.length > 0) {
      const reason = conflicts.length > 0 ? 'VersionConflict' : retryable.length > 0 ? 'VaultUnavailable' : terminal.length > 0 ? 'VaultRejected' : 'Refused';
      const message = boundedList(problems, progress.landed > 0 ? `${written.length} path(s) written; ` : '');
      await progress.finish(state, { status: 'False', reason, message });
      if (refused.length > 0) {
        this.deps.metrics?.refusals.labels('NotOwned').inc();
        await this.event(run.object, 'Warning', 'Refused', boundedList(refused));
      }
      if (terminal.length > 0) await this.event(run.object, 'Warning', 'VaultRejected', boundedList(problems.slice(refused.length, refused.length + terminal.length)));
      if (conflicts.length > 0) {
        this.freshNext.add(run.key);
        throw new VersionConflictError(`version conflict at ${boundedList(conflicts)}: decided again from fresh reads`);
      }
      if (retryable.length > 0) {
        const first = retryable[0].error;
        throw first instanceof Error ? first : new Error(String(first));
      }
      const retryIn = terminal.flatMap((f) => (f.retryAt ? [Date.parse(f.retryAt) - this.now()] : []));
      const requeueAfterMs = [driftPeriodMs, ...retryIn].filter((v): v is number => v !== undefined).reduce<number | undefined>((a, b) => (a === undefined ? b : Math.min(a, b)), undefined);
      return { outcome: refused.length > 0 ? 'refused' : 'invalid', requeueAfterMs: requeueAfterMs === undefined ? undefined : Math.max(requeueAfterMs, MIN_DRIFT_PERIOD_MS) };
    }
    const kept = verdict.kept.map((k) => formatPath(k.path));
    const summary = [
      `${state.entries.length} path(s) in sync`,
      ...(written.length ? [`wrote ${boundedList(written)}`] : []),
      ...(marked.length ? [`wrote the custom_metadata of ${boundedList(marked)}`] : []),
      ...(deleted.length ? [`deleted ${boundedList(deleted)}`] : []),
      ...(kept.length ? [`kept: create-once (${Annotations.updatePolicy}: IfNotExists) ${boundedList(kept)}`] : []),
    ].join('; ');
    await progress.finish(state, { status: 'True', reason: 'Synced', message: summary });
    if (changed) {
      this.deps.log.info({ source: run.key, written: written.length, deleted: deleted.length }, 'synced to Vault');
      await this.event(run.object, 'Normal', 'Synced', summary);
    }
    return { outcome: changed ? 'synced' : 'unchanged', requeueAfterMs: driftPeriodMs };
  }

  /** Carries out one decided delete (delete-policy.ts: only a path provably ours is deleted). */
  private async deleteDecided(run: Run, op: DeleteOp): Promise<boolean> {
    const { decision } = op;
    if (decision.action === 'unchecked') throw new Error(`unreachable: a delete decided without Vault's view reached the reconciler (${formatPath(op.path)})`);
    if (decision.action === 'refuse') {
      await this.event(run.object, 'Warning', 'Refused', `not deleting ${formatPath(op.path)}: ${decision.reason}`);
      return false;
    }
    if (decision.action !== 'delete') return false;
    if (this.settings.deletePolicy === 'latest-version') await this.deps.vault.deleteLatest(op.path, run.context);
    else await this.deps.vault.deleteAll(op.path, run.context);
    return true;
  }

  /**
   * The source is being deleted, or its path annotation was removed: delete its Vault data (unless
   * preserve-on-delete), then release the finalizer. A Vault that stays down does not hold the object
   * forever: after cleanupTimeout the finalizer goes anyway, with an Event saying what was left behind.
   */
  private async finalize(run: Run, verdict: Extract<Verdict, { type: 'finalize' }>): Promise<ReconcileResult> {
    const { key, object } = run;
    const { why } = verdict;
    await this.reportOutside(object, verdict);
    if (verdict.preserved !== undefined) {
      const type = isTrue(object.annotations[Annotations.preserveOnDelete]) ? 'Normal' : 'Warning'; // kept on a bad value
      await this.event(object, type, 'Preserved', `${why}; Vault data kept (${verdict.preserved}): ${boundedList(verdict.recorded.map(formatPath)) || 'nothing synced'}`);
    } else {
      const deleted: string[] = [];
      if (verdict.deletes.some((d) => d.decision.action === 'delete')) run.beforeVault();
      const results = await Promise.allSettled(verdict.deletes.map(async (d) => (await this.deleteDecided(run, d)) && deleted.push(formatPath(d.path))));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        const error: unknown = failed.reason;
        const failingSince = this.cleanupFailingSince.get(key) ?? this.now();
        this.cleanupFailingSince.set(key, failingSince);
        if (this.now() - failingSince < this.deps.cleanupTimeoutMs) throw error; // retried with backoff by the queue
        const left = verdict.recorded.map(formatPath).filter((p) => !deleted.includes(p));
        this.deps.metrics?.errors.labels('cleanup_abandoned').inc();
        await this.event(object, 'Warning', 'DataLeftBehind', `${why}; Vault failed for ${Math.round((this.now() - failingSince) / 1000)}s (${error instanceof Error ? error.message : 'error'}); releasing the finalizer and leaving in Vault: ${boundedList(left)}`);
      }
      if (deleted.length > 0 || verdict.recorded.length === 0) {
        await this.event(object, 'Normal', 'Deleted', `${why}; deleted from Vault: ${boundedList(deleted) || 'nothing was synced'}`);
      }
    }
    this.cleanupFailingSince.delete(key);
    await this.deps.cluster.removeFinalizer(object.kind, object);
    this.deps.index.forget(key);
    await this.deps.state.delete(key);
    return { outcome: 'deleted' };
  }

  /**
   * A source being finalized whose Vault reads fail: retried with backoff until cleanupTimeout, then the
   * finalizer goes with an Event naming what its record says was left (a namespace deletion is never held forever).
   */
  private async cleanupBlocked(key: string, error: unknown): Promise<ReconcileResult> {
    const finalizing = this.deps.pipeline.finalizing(key);
    if (!finalizing) throw error;
    const failingSince = this.cleanupFailingSince.get(key) ?? this.now();
    this.cleanupFailingSince.set(key, failingSince);
    if (this.now() - failingSince < this.deps.cleanupTimeoutMs) throw error; // retried with backoff by the queue
    const { object, why, recorded } = finalizing;
    this.deps.metrics?.errors.labels('cleanup_abandoned').inc();
    await this.event(object, 'Warning', 'DataLeftBehind', `${why}; Vault failed for ${Math.round((this.now() - failingSince) / 1000)}s (${error instanceof Error ? error.message : 'error'}); releasing the finalizer and leaving in Vault: ${boundedList((await recorded()).map(formatPath)) || 'nothing recorded'}`);
    this.cleanupFailingSince.delete(key);
    await this.deps.cluster.removeFinalizer(object.kind, object);
    this.deps.index.forget(key);
    await this.deps.state.delete(key);
    return { outcome: 'deleted' };
  }

  /**
   * One Warning Event naming every annotation value the operator does not read as written (the admission
   * policy may be off, Warn only, or younger than the object). Counted once per Event actually recorded, so a
   * source reconciled often does not inflate the metric while its Event is de-duplicated.
   */
  private async reportBadAnnotations(object: SlimMeta & { kind: SourceKind }, findings: readonly AnnotationFinding[]): Promise<void> {
    if (findings.length === 0) return;
    if (await this.event(object, 'Warning', INVALID_ANNOTATION, boundedList(findings.map(describeFinding)))) this.deps.metrics?.refusals.labels(INVALID_ANNOTATION).inc();
  }

  /**
   * Paths the source names or recorded that its grant does not cover: never touched, and the Event does not
   * name them: what lies outside the grant (whose it is, or whether it exists) is not this namespace's to learn.
   */
  private async reportOutside(object: SlimMeta & { kind: SourceKind }, verdict: Verdict): Promise<void> {
    const outside = verdict.outside ?? [];
    if (outside.length === 0 || !verdict.scope) return;
    const message = `not touching ${outside.length} path(s) this source names or recorded: they are outside what ${describeScope(verdict.scope)} may reach`;
    if (await this.event(object, 'Warning', OUTSIDE_GRANT, message)) this.deps.metrics?.refusals.labels(OUTSIDE_GRANT).inc();
  }

  private async reject(run: Run, reason: 'Refused' | 'SyncFailed', code: string, message: string): Promise<ReconcileResult> {
    this.deps.metrics?.refusals.labels(code).inc();
    await this.deps.state.setCondition(run.key, run.ref, { status: 'False', reason: code, message }).catch((error) =>
      this.deps.log.warn({ source: run.key, err: describeKubeError(error) }, 'could not record the VaultSync status'),
    );
    await this.event(run.object, 'Warning', reason, message);
    return { outcome: reason === 'Refused' ? 'refused' : 'invalid' };
  }

  /**
   * Records an Event on the source; the same reason and message is not repeated within 10 minutes.
   * Says whether it was recorded this time (false when suppressed as a repeat).
   */
  private async event(object: SlimMeta & { kind: SourceKind }, type: 'Normal' | 'Warning', reason: string, message: string): Promise<boolean> {
    const sourceName = `${object.kind}/${object.namespace}/${object.name}`;
    (type === 'Warning' ? this.deps.log.warn : this.deps.log.info).call(this.deps.log, { source: sourceName, reason }, message);
    const dedupKey = `${sourceName}\0${reason}\0${message}`;
    const last = this.lastEvents.get(dedupKey);
    if (last !== undefined && this.now() - last < EVENT_REPEAT_SUPPRESSION_MS) return false;
    this.lastEvents.set(dedupKey, this.now());
    if (this.lastEvents.size > 10_000) this.lastEvents.clear();
    try {
      await this.deps.cluster.createEvent(object.kind, object, type, reason, message);
    } catch (error) {
      this.deps.log.warn({ source: sourceName, reason, err: describeKubeError(error) }, 'could not record an Event');
    }
    return true;
  }
}

function binaryKeysOf(keys: readonly string[]): { binaryKeys?: string[] } {
  return keys.length ? { binaryKeys: [...keys] } : {};
}
