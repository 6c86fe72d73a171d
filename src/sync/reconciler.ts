import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Annotations, FINALIZER, isTrue } from '../kube/annotations.js';
import type { ClusterClient } from '../kube/cluster.js';
import { parseSourceKey, type SlimDeployment, type SlimSecret } from '../kube/objects.js';
import { describeKubeError } from '../kube/reflector.js';
import type { Metrics } from '../observability/metrics.js';
import { parseDurationMs } from '../config.js';
import { VaultRequestError } from '../vault/errors.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { VaultPort } from '../vault/port.js';
import { deriveTargets, describeProblems, materialize, secretNamesOf, type DesiredEntry, type SyncSource, type Target } from './desired.js';
import type { Fingerprinter } from './fingerprint.js';
import { describeOwner, ownershipMetadata, ownershipOf } from './ownership.js';
import { planSync, type SyncedEntry } from './plan.js';
import type { SecretIndex } from './secret-index.js';
import type { Condition, SourceRef, SyncState, SyncStateStore } from './state-store.js';
import { checkTenancy, type TenancyGrant } from './tenancy.js';

export interface SourceLookup {
  deployment(namespace: string, name: string): SlimDeployment | undefined;
  secret(namespace: string, name: string): SlimSecret | undefined;
  /** VaultSyncPolicy grants currently in force. */
  tenancyGrants(): readonly TenancyGrant[];
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
  /** Record `content-hash` in custom_metadata: a second write per change, in exchange for hash-level drift checks. */
  contentHashInMetadata?: boolean;
  kvMounts: readonly string[];
  maxSecretBytes: number;
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

/** A problem that a retry will not fix: reported, not retried until the source changes. */
class Refusal extends Error {}

const MIN_DRIFT_PERIOD_MS = 1_000; // the rate limiter protects Vault; this only stops a busy loop
const EVENT_REPEAT_SUPPRESSION_MS = 10 * 60_000;

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
    return this.deps.contentHashInMetadata ?? true;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const result = await this.reconcileOnce(key).catch((error) => {
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

  private async reconcileOnce(key: string): Promise<ReconcileResult> {
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
      return this.finalize(key, source);
    }
    if (isTrue(object.annotations[Annotations.suspend])) {
      await this.deps.state.setCondition(key, ref, { status: 'False', reason: 'Suspended', message: `${Annotations.suspend} is "true"` });
      return { outcome: 'suspended' };
    }

    const derived = deriveTargets(source, { allowedMounts: this.deps.kvMounts });
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
    const inputFingerprint = this.inputFingerprint(targets, namespace, secretNames, forceToken);
    const previous = await this.deps.state.get(key);
    const driftPeriodMs = this.driftPeriod(object.annotations[Annotations.reconcile]);

    if (changeDetection && previous?.inputFingerprint === inputFingerprint) {
      if (driftPeriodMs === undefined) return { outcome: 'unchanged' };
      return this.checkDrift(key, source, ref, previous, driftPeriodMs);
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
    const force = forceToken !== undefined && previous !== undefined && !previous.inputFingerprint.endsWith(`:${forceToken}`);
    const operations = planSync(desired, previous?.entries ?? [], { changeDetection, force });

    const synced: SyncedEntry[] = [];
    const written: string[] = [];
    const deleted: string[] = [];
    const refusals: string[] = [];
    for (const op of operations) {
      if (op.type === 'unchanged') {
        synced.push(previous!.entries.find((e) => formatPath(e.path) === formatPath(op.path))!);
      } else if (op.type === 'write') {
        const before = previous?.entries.find((e) => formatPath(e.path) === formatPath(op.entry.path));
        try {
          const version = await this.writeOwned(source, op.entry, op.hash, before);
          synced.push({ path: op.entry.path, hash: op.hash, version, ...(op.entry.binaryKeys.length ? { binaryKeys: op.entry.binaryKeys } : {}) });
          written.push(formatPath(op.entry.path));
        } catch (error) {
          if (!(error instanceof Refusal)) throw error;
          refusals.push(error.message);
        }
      } else if (await this.deleteOwned(source, op.path)) {
        deleted.push(formatPath(op.path));
      }
    }

    const now = new Date(this.now()).toISOString();
    const state: SyncState = {
      // An incomplete sync must be retried on the next change, so it does not record the inputs as done.
      inputFingerprint: refusals.length > 0 ? notDone('incomplete', inputFingerprint) : inputFingerprint,
      entries: synced,
      lastSyncTime: written.length > 0 || !previous ? now : previous.lastSyncTime,
      lastDriftCheckTime: now,
    };
    if (refusals.length > 0) {
      this.deps.metrics?.refusals.labels('NotOwned').inc();
      await this.deps.state.set(key, ref, state, { status: 'False', reason: 'Refused', message: refusals.join('; ') });
      await this.event(source, 'Warning', 'Refused', refusals.join('; '));
      return { outcome: 'refused' };
    }
    const summary = `${synced.length} path(s) in sync${written.length ? `; wrote ${written.join(', ')}` : ''}${deleted.length ? `; deleted ${deleted.join(', ')}` : ''}`;
    await this.deps.state.set(key, ref, state, { status: 'True', reason: 'Synced', message: summary });
    if (written.length > 0 || deleted.length > 0) {
      this.deps.log.info({ source: key, written, deleted }, 'synced to Vault');
      await this.event(source, 'Normal', 'Synced', summary);
    }
    return { outcome: written.length > 0 || deleted.length > 0 ? 'synced' : 'unchanged', requeueAfterMs: driftPeriodMs };
  }

  /**
   * Drift: one metadata read per path (no data read). A path whose version moved, whose latest version was
   * deleted, or that vanished is restored from the source; the next desired state is the same as ever.
   */
  private async checkDrift(key: string, source: SyncSource, ref: SourceRef, previous: SyncState, periodMs: number): Promise<ReconcileResult> {
    const since = previous.lastDriftCheckTime ? this.now() - Date.parse(previous.lastDriftCheckTime) : Infinity;
    if (since < periodMs) return { outcome: 'unchanged', requeueAfterMs: periodMs - since };
    const drifted: SyncedEntry[] = [];
    for (const entry of previous.entries) {
      const metadata = await this.deps.vault.readMetadata(entry.path);
      const hashMoved = this.contentHashInMetadata && metadata?.customMetadata['content-hash'] !== entry.hash;
      if (!metadata || metadata.currentVersion !== entry.version || metadata.currentVersionDeleted || hashMoved) drifted.push(entry);
    }
    const now = new Date(this.now()).toISOString();
    if (drifted.length === 0) {
      await this.deps.state.set(key, ref, { ...previous, lastDriftCheckTime: now }, { status: 'True', reason: 'Synced', message: `${previous.entries.length} path(s) in sync; no drift` });
      return { outcome: 'unchanged', requeueAfterMs: periodMs };
    }
    // Forget what was recorded for the drifted paths: the regular path then rewrites them (ownership checked).
    const remaining = previous.entries.filter((e) => !drifted.includes(e));
    await this.deps.state.set(key, ref, { ...previous, inputFingerprint: notDone('drifted', previous.inputFingerprint), entries: remaining, lastDriftCheckTime: now }, { status: 'False', reason: 'Drifted', message: `changed in Vault out of band: ${drifted.map((e) => formatPath(e.path)).join(', ')}` });
    const result = await this.reconcileOnce(key);
    if (result.outcome === 'synced') {
      this.deps.metrics?.driftCorrections.inc(drifted.length);
      await this.event(source, 'Normal', 'DriftCorrected', `restored ${drifted.map((e) => formatPath(e.path)).join(', ')} after an out-of-band change in Vault`);
      return { outcome: 'drift-corrected', requeueAfterMs: periodMs };
    }
    return result;
  }

  /**
   * Writes one path, only if it is ours. With a known version the write is check-and-set on it, so a
   * concurrent out-of-band write is noticed; a new path is claimed (ownership metadata) before data lands.
   * The metadata (ownership + content hash) follows the data: a crash in between leaves an old hash, which
   * only causes one more write, never a skipped one. Without the hash in the metadata, an update is the data
   * write alone (the marks are rewritten only when the set of base64 keys changes).
   */
  private async writeOwned(source: SyncSource, entry: DesiredEntry, hash: string, before: SyncedEntry | undefined): Promise<number> {
    const { vault } = this.deps;
    const marks: Record<string, string> = {
      ...ownershipMetadata(source, this.deps.clusterName),
      ...(this.contentHashInMetadata ? { 'content-hash': hash } : {}),
      ...(entry.binaryKeys.length ? { 'base64-keys': entry.binaryKeys.join(',') } : {}),
    };
    if (before?.version !== undefined) {
      try {
        const { version } = await vault.writeData(entry.path, entry.data, { cas: before.version });
        const marksChanged = (before.binaryKeys ?? []).join(',') !== entry.binaryKeys.join(',');
        if (this.contentHashInMetadata || marksChanged) await vault.writeMetadata(entry.path, marks);
        return version;
      } catch (error) {
        if (!(error instanceof VaultRequestError && error.kind === 'cas-mismatch')) throw error;
        // Someone else wrote a version since ours: find out who owns the path now.
      }
    }
    const metadata = await vault.readMetadata(entry.path);
    const owner = ownershipOf(metadata?.customMetadata, source, this.deps.clusterName);
    if (metadata && owner !== 'ours') {
      this.deps.metrics?.refusals.labels('NotOwned').inc();
      throw new Refusal(`refusing to overwrite ${formatPath(entry.path)}: it is ${describeOwner(metadata.customMetadata)}`);
    }
    await vault.writeMetadata(entry.path, marks); // claims a new path before its data lands
    return (await vault.writeData(entry.path, entry.data, { cas: metadata?.currentVersion ?? 0 })).version;
  }

  /** Deletes a path (policy: every version, or the latest), only if it is ours. */
  private async deleteOwned(source: SyncSource, path: KvPath): Promise<boolean> {
    const metadata = await this.deps.vault.readMetadata(path);
    if (!metadata) return false;
    if (ownershipOf(metadata.customMetadata, source, this.deps.clusterName) !== 'ours') {
      await this.event(source, 'Warning', 'Refused', `not deleting ${formatPath(path)}: it is ${describeOwner(metadata.customMetadata)}`);
      return false;
    }
    if (this.deps.deletePolicy === 'latest-version') await this.deps.vault.deleteLatest(path);
    else await this.deps.vault.deleteAll(path);
    return true;
  }

  /**
   * The source is being deleted, or its path annotation was removed: delete its Vault data (unless
   * preserve-on-delete), then release the finalizer. A Vault that stays down does not hold the object
   * forever: after cleanupTimeout the finalizer goes anyway, with an Event saying what was left behind.
   */
  private async finalize(key: string, source: SyncSource): Promise<ReconcileResult> {
    const { kind, namespace, name } = source;
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name)! : this.deps.sources.secret(namespace, name)!;
    const why = object.deletionTimestamp ? 'source deleted' : `the ${Annotations.path} annotation was removed`;
    const paths = await this.ownedPaths(key, source);
    if (isTrue(source.annotations[Annotations.preserveOnDelete])) {
      await this.event(source, 'Normal', 'Preserved', `${why}; Vault data kept (${Annotations.preserveOnDelete}: "true"): ${paths.map(formatPath).join(', ') || 'nothing synced'}`);
    } else {
      const deleted: string[] = [];
      try {
        for (const path of paths) if (await this.deleteOwned(source, path)) deleted.push(formatPath(path));
      } catch (error) {
        const failingSince = this.cleanupFailingSince.get(key) ?? this.now();
        this.cleanupFailingSince.set(key, failingSince);
        if (this.now() - failingSince < this.deps.cleanupTimeoutMs) throw error; // retried with backoff by the queue
        const left = paths.map(formatPath).filter((p) => !deleted.includes(p));
        this.deps.metrics?.errors.labels('cleanup_abandoned').inc();
        await this.event(source, 'Warning', 'DataLeftBehind', `${why}; Vault failed for ${Math.round((this.now() - failingSince) / 1000)}s (${error instanceof Error ? error.message : 'error'}); releasing the finalizer and leaving in Vault: ${left.join(', ')}`);
      }
      if (deleted.length > 0 || paths.length === 0) {
        await this.event(source, 'Normal', 'Deleted', `${why}; deleted from Vault: ${deleted.join(', ') || 'nothing was synced'}`);
      }
    }
    this.cleanupFailingSince.delete(key);
    await this.deps.cluster.removeFinalizer(kind, object);
    this.deps.index.forget(key);
    await this.deps.state.delete(key);
    return { outcome: 'deleted' };
  }

  /** The paths this source wrote: from its record, and (after losing it) from its annotations. */
  private async ownedPaths(key: string, source: SyncSource): Promise<KvPath[]> {
    const paths = new Map<string, KvPath>();
    for (const entry of (await this.deps.state.get(key))?.entries ?? []) paths.set(formatPath(entry.path), entry.path);
    const derived = deriveTargets(source, { allowedMounts: this.deps.kvMounts });
    if (derived.ok) for (const target of derived.targets) paths.set(formatPath(target.path), target.path);
    return [...paths.values()];
  }

  private async reject(key: string, source: SyncSource, ref: SourceRef, reason: 'Refused' | 'SyncFailed', code: string, message: string): Promise<ReconcileResult> {
    this.deps.metrics?.refusals.labels(code).inc();
    await this.deps.state.setCondition(key, ref, { status: 'False', reason: code, message }).catch((error) =>
      this.deps.log.warn({ source: key, err: describeKubeError(error) }, 'could not record the VaultSync status'),
    );
    await this.event(source, 'Warning', reason, message);
    return { outcome: reason === 'Refused' ? 'refused' : 'invalid' };
  }

  private driftPeriod(annotation: string | undefined): number | undefined {
    if (annotation === undefined) return undefined;
    const ms = parseDurationMs(annotation);
    return ms === undefined ? undefined : Math.max(ms, MIN_DRIFT_PERIOD_MS);
  }

  /** Hash of every input of the desired state; the force-sync token is appended so a new one is visible. */
  private inputFingerprint(targets: Target[], namespace: string, secretNames: string[], forceToken: string | undefined): string {
    const hash = createHash('sha256');
    hash.update(JSON.stringify(targets));
    for (const secretName of secretNames) hash.update(`\0${secretName}\0${this.deps.sources.secret(namespace, secretName)?.dataHash ?? 'absent'}`);
    return hash.digest('hex') + (forceToken !== undefined ? `:${forceToken}` : '');
  }

  /** Records an Event on the source; the same reason and message is not repeated within 10 minutes. */
  private async event(source: SyncSource, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const sourceName = `${source.kind}/${source.namespace}/${source.name}`;
    (type === 'Warning' ? this.deps.log.warn : this.deps.log.info).call(this.deps.log, { source: sourceName, reason }, message);
    const dedupKey = `${sourceName}\0${reason}\0${message}`;
    const last = this.lastEvents.get(dedupKey);
    if (last !== undefined && this.now() - last < EVENT_REPEAT_SUPPRESSION_MS) return;
    this.lastEvents.set(dedupKey, this.now());
    if (this.lastEvents.size > 10_000) this.lastEvents.clear();
    const object = source.kind === 'Deployment' ? this.deps.sources.deployment(source.namespace, source.name) : this.deps.sources.secret(source.namespace, source.name);
    if (!object) return;
    try {
      await this.deps.cluster.createEvent(source.kind, object, type, reason, message);
    } catch (error) {
      this.deps.log.warn({ source: sourceName, reason, err: describeKubeError(error) }, 'could not record an Event');
    }
  }
}

/**
 * A fingerprint that never matches (so the next reconcile recomputes), keeping the force-sync token suffix
 * of the real one: a force-sync that was already honoured is not honoured again by a drift repair or retry.
 */
function notDone(marker: string, fingerprint: string): string {
  const colon = fingerprint.indexOf(':');
  return colon >= 0 ? marker + fingerprint.slice(colon) : marker;
}
