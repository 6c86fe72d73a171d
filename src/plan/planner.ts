import { Annotations, FINALIZER, isTrue } from '../kube/annotations.js';
import { parseSourceKey } from '../kube/objects.js';
import { preservationReason, preservesOnDelete } from '../sync/annotation-check.js';
import { deriveTargets, pathsOfSource, describeProblems, materialize, secretNamesOf, type SyncSource } from '../sync/desired.js';
import { driftPeriodMs, forceRequested, hasDrifted, inputFingerprint } from '../sync/change-detection.js';
import type { Fingerprinter } from '../sync/fingerprint.js';
import type { SecretIndex } from '../sync/secret-index.js';
import { describeOwner, ownershipOf } from '../sync/ownership.js';
import { adoptionAllowed, decideWrite, type VaultView, type WriteDecision, type WriteInput } from '../sync/write-policy.js';
import { planSync } from '../sync/plan.js';
import type { SourceLookup } from '../sync/reconciler.js';
import type { SyncState, WriteFailure } from '../sync/state-store.js';
import { checkTenancy, scopeOf } from '../vault/tenancy.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { KvMetadata, VaultPort } from '../vault/port.js';
import { describeScope, type RequestScope } from '../vault/scope.js';
import { sourcePlan, type PathAction, type PathPlan, type SourcePlan } from './report.js';

/** Everything the planner reads. Reads only: nothing here can write to Kubernetes or Vault. */
export interface PlannerDeps {
  sources: SourceLookup;
  state: { get(sourceKey: string): Promise<SyncState | undefined> };
  cluster: {
    readSecretData(namespace: string, name: string): Promise<ReadonlyMap<string, Uint8Array> | undefined>;
    namespaceIsTerminating(namespace: string): Promise<boolean>;
  };
  /** Vault metadata (never data), each read with the scope of the source it is for. */
  vault: Pick<VaultPort, 'readMetadata'>;
  /**
   * The KV version of a mount: on KV v1 the ownership marks live inside the data, which plan never reads,
   * so ownership is reported as unchecked there.
   */
  kvVersion?(mount: string): Promise<1 | 2>;
  fingerprint: Fingerprinter;
  clusterName: string;
  contentHashInMetadata: boolean;
  kvMounts: readonly string[];
  maxSecretBytes: number;
  maxSecretsPerSource: number;
  tenantPathTemplate?: string;
  deletePolicy: 'all-versions' | 'latest-version';
  /** Injected for tests. */
  now?: () => number;
  /** DRY_RUN keeps the Secret→source index up to date (as the reconciler does), so Secret changes re-plan. */
  index?: SecretIndex;
}

/**
 * What reconcile(key) would do, decided by the same pure functions in the same order (desired → tenancy →
 * change detection → materialize → planSync → ownership), with Vault metadata reads where the reconciler
 * would ask Vault. Writes nothing.
 */
export class Planner {
  constructor(private readonly deps: PlannerDeps) {}

  /** Undefined when the key names no object (nothing to plan). */
  async planSource(key: string): Promise<SourcePlan | undefined> {
    const { kind, namespace, name } = parseSourceKey(key);
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name) : this.deps.sources.secret(namespace, name);
    if (!object) {
      this.deps.index?.forget(key);
      return undefined;
    }
    const id = { kind, namespace, name };
    const source: SyncSource = { kind, namespace, name, uid: object.uid, annotations: object.annotations, podSpec: object.kind === 'Deployment' ? object.podSpec : undefined };

    if (object.deletionTimestamp || !(Annotations.path in object.annotations)) {
      if (!object.finalizers.includes(FINALIZER)) return undefined; // never synced: nothing to clean up
      return this.planCleanup(key, source, object.deletionTimestamp ? 'source deleted' : `the ${Annotations.path} annotation was removed`);
    }
    const previous = await this.deps.state.get(key);
    const recorded = (reason: string): PathPlan[] => (previous?.entries ?? []).map((e) => ({ path: formatPath(e.path), action: 'unchanged', reason }));
    if (isTrue(object.annotations[Annotations.suspend])) {
      return sourcePlan(id, `suspended (${Annotations.suspend}: "true"): nothing is written or deleted`, recorded('suspended'));
    }

    const derived = deriveTargets(source, { allowedMounts: this.deps.kvMounts, maxSecretsPerSource: this.deps.maxSecretsPerSource });
    if (!derived.ok) {
      this.deps.index?.forget(key);
      return sourcePlan(id, `${derived.problem.code}: ${derived.problem.message}`, [], true);
    }
    const targets = derived.targets;
    for (const target of targets) {
      const tenancy = checkTenancy(target.path, namespace, this.deps.tenantPathTemplate, this.deps.sources.tenancyGrants());
      if (!tenancy.ok) return sourcePlan(id, `OutsideTenantPrefix: ${tenancy.reason}`, [], true);
    }
    const secretNames = secretNamesOf(targets);
    this.deps.index?.set(key, namespace, secretNames);
    const changeDetection = object.annotations[Annotations.rotationCheck]?.trim().toLowerCase() !== 'disabled';
    const forceToken = object.annotations[Annotations.forceSync];
    const fingerprint = inputFingerprint(targets, secretNames, (secretName) => this.deps.sources.secret(namespace, secretName)?.dataHash, forceToken);

    const now = (this.deps.now ?? Date.now)();
    if (changeDetection && previous?.inputFingerprint === fingerprint && !(previous.failures ?? []).some((f) => failureDue(f, now))) {
      // Done (as the reconciler sees it), except for writes Vault refused terminally: they wait for a change.
      const failed = (previous.failures ?? []).map((f): PathPlan => ({ path: formatPath(f.path), action: 'refuse', reason: describeFailure(f) }));
      const failedPaths = new Set(failed.map((f) => f.path));
      if (driftPeriodMs(object.annotations[Annotations.reconcile]) === undefined) {
        return sourcePlan(id, 'in sync: no input changed since the last sync', [...recorded('content unchanged').filter((p) => !failedPaths.has(p.path)), ...failed]);
      }
      const drift = await this.planDriftCheck(key, source, previous);
      return sourcePlan(id, drift.reason, [...drift.paths.filter((p) => !failedPaths.has(p.path)), ...failed]);
    }

    if (await this.deps.cluster.namespaceIsTerminating(namespace)) {
      return sourcePlan(id, `NamespaceTerminating: namespace "${namespace}" is being deleted; nothing is written to Vault`, [], true);
    }
    // Values are read (they decide the content hashes) and dropped here: only hashes leave this function.
    const values = new Map<string, ReadonlyMap<string, Uint8Array> | undefined>();
    // As the reconciler: only Secrets the cache knows are read (an absent one costs no API read).
    for (const secretName of secretNames) values.set(secretName, this.deps.sources.secret(namespace, secretName) ? await this.deps.cluster.readSecretData(namespace, secretName) : undefined);
    const materialized = materialize(targets, values, { maxEntryBytes: this.deps.maxSecretBytes });
    if (!materialized.ok) {
      const problems = materialized.problems;
      return sourcePlan(id, `${problems[0].code}: ${describeProblems(problems)}`, [], true);
    }
    const desired = materialized.entries.map((entry) => ({ entry, hash: this.deps.fingerprint.entry(entry) }));
    const operations = planSync(desired, previous?.entries ?? [], { changeDetection, force: forceRequested(forceToken, previous?.inputFingerprint) });

    const paths: PathPlan[] = [];
    for (const op of operations) {
      if (op.type === 'unchanged') {
        const pending = previous?.entries.find((e) => formatPath(e.path) === formatPath(op.path))?.marksPending;
        paths.push({ path: formatPath(op.path), action: pending ? 'update' : 'unchanged', reason: pending ? 'content unchanged; its ownership marks did not follow the data yet: written now (no new version)' : op.reason });
      } else if (op.type === 'write') {
        const failure = previous?.failures?.find((f) => formatPath(f.path) === formatPath(op.entry.path));
        if (failure && failure.hash === op.hash && !failureDue(failure, now)) paths.push({ path: formatPath(op.entry.path), action: 'refuse', reason: describeFailure(failure) });
        else paths.push(await this.planWrite(key, source, op.entry.path, op.hash, op.reason, previous));
      } else paths.push(await this.planDelete(key, source, op.path, op.reason));
    }
    return sourcePlan(id, previous ? 'inputs changed since the last sync' : 'not synced yet', paths);
  }

  /** The drift check of `vault-sync.io/reconcile` (its period aside: plan reports drift as soon as it exists). */
  private async planDriftCheck(key: string, source: SyncSource, previous: SyncState): Promise<SourcePlan> {
    const paths: PathPlan[] = [];
    for (const entry of previous.entries) {
      const metadata = await this.readMetadata(key, entry.path);
      if (metadata === 'unchecked') paths.push({ path: formatPath(entry.path), action: 'unchanged', reason: 'KV v1: drift not checked (plan reads no data)' });
      else if (!hasDrifted(entry, metadata, this.deps.contentHashInMetadata)) paths.push({ path: formatPath(entry.path), action: 'unchanged', reason: 'content unchanged; no drift in Vault' });
      else {
        // As the reconciler: the drifted path is forgotten from the record, then written like any other.
        const forgotten: SyncState = { ...previous, entries: previous.entries.filter((e) => e !== entry) };
        paths.push(await this.planWrite(key, source, entry.path, entry.hash, metadata ? 'changed in Vault out of band: restored' : 'gone from Vault: restored', forgotten, { metadata }));
      }
    }
    return sourcePlan(source, 'in sync with its inputs; drift checked in Vault', paths);
  }

  private async planCleanup(key: string, source: SyncSource, why: string): Promise<SourcePlan> {
    const scope = this.scopeOf(key);
    const { inside: paths, outside } = pathsOfSource((await this.deps.state.get(key))?.entries ?? [], source, { allowedMounts: this.deps.kvMounts, maxSecretsPerSource: this.deps.maxSecretsPerSource, scope });
    // As the reconciler: never looked up, never touched; nothing is said of what is there.
    const untouched = outside.map((p): PathPlan => ({ path: formatPath(p), action: 'refuse', reason: `outside what ${describeScope(scope)} may reach: never touched` }));
    if (preservesOnDelete(source.annotations)) {
      return sourcePlan(source, `${why}; Vault data kept (${preservationReason(source.annotations)}), then the finalizer released`, [...paths.map((p): PathPlan => ({ path: formatPath(p), action: 'keep', reason: 'preserve-on-delete' })), ...untouched]);
    }
    const planned: PathPlan[] = [];
    for (const path of paths) planned.push(await this.planDelete(key, source, path, why));
    return sourcePlan(source, `${why}; its Vault data is deleted, then the finalizer released`, [...planned, ...untouched]);
  }

  /**
   * The write decision of the reconciler (decideWrite) at one path, with its metadata read where the
   * reconciler would learn it: by a lookup, or by a check-and-set write that does not match.
   */
  private async planWrite(key: string, source: SyncSource, path: KvPath, hash: string, why: string, previous: SyncState | undefined, known?: { metadata: KvMetadata | undefined }): Promise<PathPlan> {
    const shown = formatPath(path);
    const input: Omit<WriteInput, 'vault'> = {
      source,
      clusterName: this.deps.clusterName,
      recordedVersion: previous?.entries.find((e) => formatPath(e.path) === shown)?.version,
      intent: previous?.intents?.find((i) => formatPath(i.path) === shown),
      adoptAllowed: adoptionAllowed(path, source.namespace, isTrue(source.annotations[Annotations.adopt]), this.deps.sources.tenancyGrants()),
    };
    const metadata = known ? known.metadata : await this.readMetadata(key, path);
    if (metadata === 'unchecked') {
      const first = decideWrite({ ...input, vault: { state: 'unknown' } });
      return { path: shown, action: first.action === 'create' ? 'create' : 'update', reason: `${why} (KV v1: ownership not checked, plan reads no data)` };
    }
    return { path: shown, ...describeWrite(predictWrite(input, metadata), hash, input.intent?.hash, why) };
  }

  /** Deletes happen only at paths this source owns (see the reconciler's deleteOwned). */
  private async planDelete(key: string, source: SyncSource, path: KvPath, why: string): Promise<PathPlan> {
    const metadata = await this.readMetadata(key, path);
    const shown = formatPath(path);
    if (metadata === 'unchecked') return { path: shown, action: 'delete', reason: `${why} (KV v1: ownership not checked, plan reads no data)` };
    if (!metadata) return { path: shown, action: 'unchanged', reason: `${why}; already gone from Vault` };
    if (ownershipOf(metadata.customMetadata, source, this.deps.clusterName) !== 'ours') return { path: shown, action: 'refuse', reason: `not deleting: it is ${describeOwner(metadata.customMetadata)}` };
    return { path: shown, action: 'delete', reason: `${why} (${this.deps.deletePolicy === 'latest-version' ? 'latest version soft-deleted' : 'every version and the metadata'})` };
  }

  /** The grant of the source's namespace, which every Vault read made for it carries (the port enforces it). */
  private scopeOf(key: string): RequestScope {
    return scopeOf(parseSourceKey(key).namespace, this.deps, this.deps.sources.tenancyGrants());
  }

  private async readMetadata(key: string, path: KvPath): Promise<KvMetadata | undefined | 'unchecked'> {
    if (this.deps.kvVersion && (await this.deps.kvVersion(path.mount)) === 1) return 'unchecked';
    return this.deps.vault.readMetadata(path, { source: key, scope: this.scopeOf(key) });
  }
}

/**
 * Pure: the decision the reconciler ends with at one path, given its metadata now. It decides first with what
 * is recorded; a lookup, or a check-and-set write that would not match the version in Vault, makes it decide
 * again with what Vault says (as after a cas-mismatch answer).
 */
export function predictWrite(input: Omit<WriteInput, 'vault'>, metadata: KvMetadata | undefined): WriteDecision {
  const seen: VaultView = metadata ? { state: 'present', metadata } : { state: 'absent' };
  const first = decideWrite({ ...input, vault: { state: 'unknown' } });
  if (first.action === 'lookup') return decideWrite({ ...input, vault: seen });
  if (first.action === 'create' || first.action === 'update') {
    // KV v2 accepts a check-and-set write when cas equals current_version (0 when nothing was ever written).
    const casMatches = (metadata?.currentVersion ?? 0) === first.cas;
    if (!casMatches) return decideWrite({ ...input, vault: seen });
  }
  return first;
}

/** Pure: a write decision as a line of the plan. */
export function describeWrite(decision: WriteDecision, hash: string, intendedHash: string | undefined, why: string): { action: PathAction; reason: string } {
  switch (decision.action) {
    case 'create':
    case 'update':
      return { action: decision.action, reason: `${why}; ${decision.reason}` };
    case 'adopt':
      return { action: 'adopt', reason: `${why}; ${decision.reason} (an Adopted Event; the previous custom_metadata kept under "previous-")` };
    case 'recover':
      if (decision.markMissing) return { action: 'update', reason: `${decision.reason}; its ownership marks are written` };
      if (intendedHash !== undefined && intendedHash !== hash) return { action: 'update', reason: `${decision.reason}, with older content: written again` };
      return { action: 'unchanged', reason: `${decision.reason}; recorded, no write` };
    case 'refuse':
      return { action: 'refuse', reason: `refusing to overwrite: ${decision.reason}` };
    case 'lookup':
      return { action: 'refuse', reason: `undecided: ${decision.reason}` }; // predictWrite always decides with a view
  }
}

/** A terminal failure is retried at its retryAt (403: a policy fix can cure it), else only on a change. */
function failureDue(failure: WriteFailure, now: number): boolean {
  return failure.retryAt !== undefined && Date.parse(failure.retryAt) <= now;
}

function describeFailure(failure: WriteFailure): string {
  return `Vault refused this content before (${failure.kind}: ${failure.message}); retried ${failure.retryAt ? `at ${failure.retryAt} or ` : ''}when the source changes`;
}
