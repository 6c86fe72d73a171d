// The one decision pipeline (docs/adr/0007-plan-and-dry-run.md): what the operator does for one source, decided
// by ordered pure checks over one gathered input, each with its reason. The reconciler carries a Verdict out;
// `plan` and DRY_RUN print it. No I/O here: where a decision needs more than the caches (Secret values, Vault
// metadata), decide() answers with a ReadRequest and is called again with the reads added (src/sync/gather.ts).
import { Annotations, FINALIZER, isTrue } from '../kube/annotations.js';
import type { SlimDeployment, SlimSecret } from '../kube/objects.js';
import { formatPath, type KvPath } from '../vault/path.js';
import { compareUtf8 } from '../vault/path-order.js';
import { annotationFindings, preservationReason, preservesOnDelete, type AnnotationFinding } from './annotation-check.js';
import { driftDueInMs, driftPeriodMs as driftPeriodOf, forceRequested, hasDrifted, inputFingerprint, MIN_DRIFT_PERIOD_MS } from './change-detection.js';
import { deriveTargets, describeProblems, materialize, pathsOfSource, secretNamesOf, type DesiredEntry, type SyncSource } from './desired.js';
import { planSync, type SyncedEntry } from './plan.js';
import { notDoneFingerprint } from './progress.js';
import type { SyncState, WriteFailure } from './state-store.js';
import { checkTenancy, scopeOf, type TenancyGrant } from '../vault/tenancy.js';
import type { RequestScope } from '../vault/scope.js';
import { decideDelete, deleteProofs, type DeleteAction } from './delete-policy.js';
import { scopedRecord } from './source-scope.js';
import { driftPhaseKey, driftRootOf } from './drift-root.js';
import { adoptionAllowed, decideWrite, type AdoptionGrant, type PathView, type WriteDecision, type WriteIntent } from './write-policy.js';
import { createOnce, KEPT_CREATE_ONCE } from './create-once.js';
import { NO_USER_METADATA, updatePolicyOf, userMetadataDrifted, userMetadataHash, userMetadataOf, type UpdatePolicy } from './user-metadata.js';

/** The operator settings the decisions depend on. */
export interface DecisionSettings {
  clusterName: string;
  kvMounts: readonly string[];
  tenantPathTemplate?: string;
  maxSecretBytes: number;
  /** Secrets one source may sync (--max-secrets-per-source). */
  maxSecretsPerSource: number;
  /** Keys one path may hold (--max-keys-per-path, or the default of the Vault server detected at start). */
  maxKeysPerPath: number;
  /** `content-hash` in custom_metadata: a second write per change, hash-level drift checks. */
  contentHashInMetadata: boolean;
  deletePolicy: 'all-versions' | 'latest-version';
}

export type PolicyGrant = TenancyGrant & Partial<AdoptionGrant>;

/** What the gatherer read for the stages decide() asked for. */
export interface Reads {
  namespaceTerminating?: boolean;
  /** Raw bytes of each Secret asked for (undefined: it does not exist). */
  values?: ReadonlyMap<string, ReadonlyMap<string, Uint8Array> | undefined>;
  /** Vault metadata by formatted path: drift, lookups of unrecorded paths, ownership before a delete. */
  views?: ReadonlyMap<string, PathView>;
  /** The KV version of each mount the source writes to, when it asks for user custom_metadata (KV v1 has none). */
  kvVersions?: ReadonlyMap<string, 1 | 2>;
}

export interface DecisionInput {
  key: string;
  object: SlimDeployment | SlimSecret | undefined;
  record: SyncState | undefined;
  grants: readonly PolicyGrant[];
  /** The cached data hash of a Secret in the source's namespace (undefined: not in the cache). */
  cachedSecretHash(name: string): string | undefined;
  /** The keyed content hash of an entry (src/sync/fingerprint.ts). */
  hashEntry(entry: DesiredEntry): string;
  now: number;
  settings: DecisionSettings;
  /** Check drift now, whatever the period says (`plan`: a person asks now). */
  driftNow?: boolean;
  /**
   * Whether drift checks below this root can count on a shared scan of it (the setting is on, and neither the
   * server, the token nor the byte cap refused one): then the source's drift slot is its root's
   * (src/sync/drift-root.ts). Absent: no scans, every source on its own slot.
   */
  driftScanUsable?: (root: KvPath) => boolean;
  reads: Reads;
}

/** The next stage: what to read before deciding again. */
export interface ReadRequest {
  type: 'read';
  /** Whether the namespace is being deleted, then (only if not) these Secrets' values. */
  values?: { namespace: string; secretNames: string[] };
  /** Paths nobody recorded: who owns them (may be grouped by folder, one LIST). */
  lookup?: KvPath[];
  /** Metadata reads: ownership of paths to delete. */
  metadata?: KvPath[];
  /** The KV version of these mounts (asked along with the first other read; the port caches it per mount). */
  kvVersions?: string[];
  /** Metadata reads of a drift check (recorded paths): grouped by folder, and behind changes in the fair line. */
  drift?: KvPath[];
  /**
   * With `drift`: the paths below `root` may be read from one scan of the root shared with other sources' checks,
   * if it was taken at or after `dueAt` (when this check fell due: never an older result).
   */
  driftScan?: { root: KvPath; dueAt: number };
}

/** One data write (with its marks when due). */
export interface WriteOp {
  entry: DesiredEntry;
  hash: string;
  /** Why the path is written (planSync, drift). */
  why: string;
  /** Not 'lookup' (looked up before), except when `unchecked`. */
  decision: WriteDecision;
  /** Recorded before the write is sent (none for a recover). */
  intent?: WriteIntent;
  /** Our intended write had landed with older content: recorded as landed first, then written over. */
  /** An earlier write of ours found landed, recorded before the write over it; `markMissing`: its marks did not follow. */
  recovered?: { version: number; hash: string; markMissing: boolean };
  /** `plan` on KV v1: decided from the record alone (ownership not checked). */
  unchecked?: true;
}

/** A custom_metadata write without a data write (no new version): marks that did not follow, or the user's keys changed. */
export interface MarksOp {
  entry: SyncedEntry;
  why: string;
}

/**
 * The user custom_metadata of a source (vault-sync.io/custom-metadata), parsed; none on a KV v1 mount (it has
 * no custom_metadata: the marks ride in the data there).
 */
export interface UserMetadata {
  keys: ReadonlyMap<string, string>;
  kv1Mounts: readonly string[];
}

/** The user's keys written with the marks of this path. */
export function userMetadataAt(user: UserMetadata | undefined, path: KvPath): ReadonlyMap<string, string> {
  return !user || user.kv1Mounts.includes(path.mount) ? NO_USER_METADATA : user.keys;
}

export interface DeleteOp {
  path: KvPath;
  why: string;
  decision: DeleteAction;
}

interface Common {
  /** The grant of the source's namespace: every request made for it carries this (the port refuses the rest). */
  scope?: RequestScope;
  /** The Secret→source index: the Secrets the source reads, or 'forget'. */
  index?: string[] | 'forget';
  /** Annotation values not read as written (a Warning Event; the sync goes on). */
  findings?: AnnotationFinding[];
  /** Paths the source names or recorded that its scope does not cover: reported on the source, never touched. */
  outside?: KvPath[];
  /** vault-sync.io/update-policy as read (absent: Replace). */
  updatePolicy?: UpdatePolicy;
}

export type Verdict = Common &
  (
    | { type: 'ignore' }
    | { type: 'finalize'; why: string; preserved?: string; recorded: KvPath[]; deletes: DeleteOp[] }
    | { type: 'suspended'; recorded: KvPath[] }
    | { type: 'reject'; reason: 'Refused' | 'SyncFailed'; code: string; message: string }
    | { type: 'unchanged'; recorded: SyncedEntry[]; heldBack: WriteFailure[]; requeueAfterMs?: number }
    /** The drift check ran and found nothing: recorded as checked. */
    | { type: 'drift-check'; record: SyncState; paths: KvPath[]; unchecked: KvPath[]; heldBack: WriteFailure[]; requeueAfterMs: number }
    | {
        type: 'apply';
        why: string;
        /** The record the writes start from (scope-checked; drifted paths forgotten). */
        base: SyncState;
        inputFingerprint: string;
        driftPeriodMs?: number;
        /** `metadataOnly`: only the user's custom_metadata changed there (restored by a marks write, no new version). */
        drifted: Array<{ path: KvPath; gone: boolean; metadataOnly?: true }>;
        unchanged: SyncedEntry[];
        writes: WriteOp[];
        /** Content unchanged, custom_metadata written now (no new version): marks not landed yet, or the user's keys changed. */
        marks: MarksOp[];
        /** update-policy IfNotExists: paths with a live version, not written (their record as it stands). */
        kept: Array<{ path: KvPath; why: string }>;
        userMetadata: UserMetadata;
        deletes: DeleteOp[];
        heldBack: WriteFailure[];
      }
  );

export type Decision = Verdict | ReadRequest;

/** A recorded metadata hash that matches no user metadata: the user's keys drifted in Vault, written again. */
const METADATA_DRIFTED = 'drifted';

/** Every list of a verdict in the one output order (src/vault/path-order.ts). */
const byPath = <T>(pathOf: (item: T) => KvPath) => (a: T, b: T) => compareUtf8(formatPath(pathOf(a)), formatPath(pathOf(b)));

/** A terminal failure is retried at its retryAt (403: a policy fix can cure it), else only on a change. */
export function failureDue(failure: WriteFailure, now: number): boolean {
  return failure.retryAt !== undefined && Date.parse(failure.retryAt) <= now;
}

/** Intents whose write is not recorded as landed (an entry at that version): it may have landed or not. */
function pendingIntents(record: SyncState | undefined): Map<string, WriteIntent> {
  const landed = new Map((record?.entries ?? []).map((e) => [formatPath(e.path), e.version]));
  return new Map((record?.intents ?? []).filter((i) => landed.get(formatPath(i.path)) !== i.version).map((i) => [formatPath(i.path), i]));
}

/** Deletes of these paths, or the read of their metadata first. */
function decideDeletes(paths: Array<{ path: KvPath; why: string; recorded: boolean }>, input: DecisionInput, source: SyncSource, record: SyncState | undefined): DeleteOp[] | ReadRequest {
  const views = input.reads.views ?? new Map<string, PathView>();
  const missing = paths.filter((p) => !views.has(formatPath(p.path))).map((p) => p.path);
  if (missing.length > 0) return { type: 'read', metadata: missing };
  const proofs = deleteProofs(record);
  return paths.map((p) => ({ path: p.path, why: p.why, decision: decideDelete(views.get(formatPath(p.path))!, source, input.settings.clusterName, proofs.get(formatPath(p.path)) ?? new Set(), p.recorded) }));
}

function sourceOf(object: SlimDeployment | SlimSecret): SyncSource {
  return { kind: object.kind, namespace: object.namespace, name: object.name, uid: object.uid, annotations: object.annotations, podSpec: object.kind === 'Deployment' ? object.podSpec : undefined };
}

/**
 * Pure: the verdict for one source, or what to read first. In order: gone → finalize → suspend → targets →
 * tenancy → the nothing-changed shortcut (held-back failures, drift) → namespace → values → planSync → the
 * write decision per path (lookups) and the delete-ownership check per path.
 */
export function decide(input: DecisionInput): Decision {
  const { object, settings } = input;
  if (!object) return { type: 'ignore', index: 'forget' }; // gone without our finalizer (never synced, or cleaned up)
  const source = sourceOf(object);
  const scope = scopeOf(object.namespace, settings, input.grants);
  const scoped = scopedRecord(input.record, scope);
  const reported = { scope, outside: scoped.outside };

  if (object.deletionTimestamp || !(Annotations.path in object.annotations)) {
    if (!object.finalizers.includes(FINALIZER)) return { type: 'ignore' };
    return decideFinalize(input, source, scope, scoped.record);
  }
  const findings = annotationFindings(object.annotations, { namespace: object.namespace, allowedMounts: settings.kvMounts, tenantPathTemplate: settings.tenantPathTemplate }, object.kind);
  const record = scoped.record;
  if (isTrue(object.annotations[Annotations.suspend])) return { type: 'suspended', recorded: (record?.entries ?? []).map((e) => e.path).sort(byPath((p) => p)), findings, ...reported };

  const derived = deriveTargets(source, { allowedMounts: settings.kvMounts, maxSecretsPerSource: settings.maxSecretsPerSource, maxKeysPerPath: settings.maxKeysPerPath });
  if (!derived.ok) return { type: 'reject', reason: derived.problem.code === 'InvalidPath' ? 'Refused' : 'SyncFailed', code: derived.problem.code, message: derived.problem.message, index: 'forget', findings, ...reported };
  const targets = derived.targets;
  for (const target of targets) {
    const tenancy = checkTenancy(target.path, object.namespace, settings.tenantPathTemplate, input.grants);
    if (!tenancy.ok) return { type: 'reject', reason: 'Refused', code: 'OutsideTenantPrefix', message: tenancy.reason, findings, ...reported };
  }
  const secretNames = secretNamesOf(targets);
  const updatePolicy = updatePolicyOf(object.annotations);
  const createsOnce = updatePolicy === 'IfNotExists';

  // The user's custom_metadata goes to KV v2 paths only: the KV version of each mount is asked along with the
  // first read that follows (cached per mount by the port), only when there are user keys to write.
  const userKeys = userMetadataOf(object.annotations);
  const mounts = [...new Set(targets.map((t) => t.path.mount))].sort(compareUtf8);
  const kvKnown = input.reads.kvVersions;
  const kvUnknown = userKeys.size > 0 && mounts.some((m) => !kvKnown?.has(m)) ? mounts : undefined;
  const ask = (request: ReadRequest): ReadRequest => (kvUnknown ? { ...request, kvVersions: kvUnknown } : request);
  const user: UserMetadata = { keys: userKeys, kv1Mounts: userKeys.size > 0 ? mounts.filter((m) => kvKnown?.get(m) === 1) : [] };
  if (user.kv1Mounts.length > 0) {
    findings.push({
      key: Annotations.customMetadata,
      value: object.annotations[Annotations.customMetadata],
      problem: `cannot be written on KV version 1 (mount ${user.kv1Mounts.map((m) => `"${m}"`).join(', ')}): KV v1 has no custom_metadata`,
      meanwhile: 'ignored on those paths: their data is synced without it',
    });
    findings.sort((a, b) => compareUtf8(a.key, b.key));
  }
  const wantedMetadataHash = (path: KvPath) => userMetadataHash(userMetadataAt(user, path));
  const common: Common = { index: secretNames, findings, ...reported, ...(createsOnce ? { updatePolicy } : {}) };

  const changeDetection = object.annotations[Annotations.rotationCheck]?.trim().toLowerCase() !== 'disabled';
  const forceToken = object.annotations[Annotations.forceSync];
  // The user's keys and a non-default policy are inputs too: a change of either alone is decided again.
  const metadataHash = userMetadataHash(userKeys);
  const extras = [...(metadataHash ? [`custom-metadata ${metadataHash}`] : []), ...(createsOnce ? ['update-policy IfNotExists'] : [])];
  const fingerprint = inputFingerprint(targets, secretNames, (name) => input.cachedSecretHash(name), forceToken, extras);
  const driftPeriodMs = driftPeriodOf(object.annotations[Annotations.reconcile]);
  const failures = record?.failures ?? [];
  let base: SyncState | undefined = record;
  let drifted: Array<{ path: KvPath; gone: boolean; metadataOnly?: true }> = [];
  const metadataDrifted = new Set<string>();

  if (changeDetection && record?.inputFingerprint === fingerprint && !failures.some((f) => failureDue(f, input.now))) {
    // Done, except for writes Vault refused terminally: those wait for a change, or for their slow retry.
    const heldBack = [...failures].sort(byPath((f) => f.path));
    const retryAts = failures.flatMap((f) => (f.retryAt ? [Date.parse(f.retryAt) - input.now] : []));
    const nextRetry = retryAts.length > 0 ? Math.max(Math.min(...retryAts), MIN_DRIFT_PERIOD_MS) : undefined;
    const entries = [...record.entries].sort(byPath((e) => e.path));
    if (driftPeriodMs === undefined) return { type: 'unchanged', recorded: entries, heldBack, ...(nextRetry !== undefined ? { requeueAfterMs: nextRetry } : {}), ...common };
    // Each source checks on its own slots of the period (change-detection.ts): sources sharing a period are spread over it.
    const lastCheck = record.lastDriftCheckTime ? Date.parse(record.lastDriftCheckTime) : undefined;
    // Below a root that can be scanned, the slot is the root's: the sources below it fall due together, one scan.
    const candidateRoot = input.driftScanUsable ? driftRootOf(scope, entries.map((e) => e.path)) : undefined;
    const driftRoot = candidateRoot && input.driftScanUsable?.(candidateRoot) ? candidateRoot : undefined;
    const phaseKey = driftPhaseKey(input.key, driftRoot);
    const dueIn = driftDueInMs(phaseKey, driftPeriodMs, lastCheck, input.now);
    // Drift: the metadata of each recorded path (no data read): one listing per folder where the server has one.
    const views = input.reads.views ?? new Map<string, PathView>();
    const unread = entries.filter((e) => !views.has(formatPath(e.path))).map((e) => e.path);
    // Once read, the check is carried out: a scan refused while it was read moves the slot to the source's own,
    // and the reads already made are not thrown away for that.
    const alreadyRead = entries.length > 0 && unread.length === 0;
    if (!input.driftNow && dueIn > 0 && !alreadyRead) return { type: 'unchanged', recorded: entries, heldBack, requeueAfterMs: dueIn, ...common };
    if (unread.length > 0 || kvUnknown) return ask({ type: 'read', ...(unread.length > 0 ? { drift: unread, ...(driftRoot ? { driftScan: { root: driftRoot, dueAt: input.now + Math.min(dueIn, 0) } } : {}) } : {}) });
    const viewOf = (e: SyncedEntry) => views.get(formatPath(e.path))!;
    const unchecked = entries.filter((e) => viewOf(e).state === 'unchecked');
    drifted = entries
      .filter((e) => {
        const view = viewOf(e);
        return view.state !== 'unchecked' && hasDrifted(e, view.state === 'present' ? view.metadata : undefined, settings.contentHashInMetadata, createsOnce);
      })
      .map((e) => ({ path: e.path, gone: viewOf(e).state !== 'present' || createsOnce }));
    // The next slot of this source's own (requeued when due; never sooner than the busy-loop guard).
    const nextIn = Math.max(driftDueInMs(phaseKey, driftPeriodMs, input.now, input.now), MIN_DRIFT_PERIOD_MS);
    const gone = new Set(drifted.map((d) => formatPath(d.path)));
    // The user's keys removed or changed in Vault, the data as written: restored by a marks write alone.
    for (const e of entries) {
      const view = viewOf(e);
      if (!gone.has(formatPath(e.path)) && view.state === 'present' && userMetadataDrifted(userMetadataAt(user, e.path), view.metadata.customMetadata)) metadataDrifted.add(formatPath(e.path));
    }
    if (drifted.length === 0 && metadataDrifted.size === 0) return { type: 'drift-check', record, paths: entries.map((e) => e.path), unchecked: unchecked.map((e) => e.path), heldBack, requeueAfterMs: nextIn, ...common };
    drifted = [...drifted, ...entries.filter((e) => metadataDrifted.has(formatPath(e.path))).map((e) => ({ path: e.path, gone: false, metadataOnly: true as const }))].sort(byPath((d) => d.path));
    // The drifted paths are forgotten from the record: the regular path rewrites them (ownership checked). A path
    // whose user keys alone drifted stays, with its metadata hash unknown: its marks are written again.
    base = {
      ...record,
      inputFingerprint: notDoneFingerprint('drifted', record.inputFingerprint),
      entries: record.entries.filter((e) => !gone.has(formatPath(e.path))).map((e) => (metadataDrifted.has(formatPath(e.path)) ? { ...e, metadataHash: METADATA_DRIFTED } : e)),
    };
  }

  // Something the output depends on changed: read the values now (only now) and decide per path.
  const reads = input.reads;
  if (reads.namespaceTerminating === undefined || (!reads.namespaceTerminating && reads.values === undefined)) {
    return ask({ type: 'read', values: { namespace: object.namespace, secretNames } });
  }
  if (reads.namespaceTerminating) {
    // Writing now would leave data that nothing cleans up, and a new finalizer would hold the namespace.
    return { type: 'reject', reason: 'Refused', code: 'NamespaceTerminating', message: `namespace "${object.namespace}" is being deleted; nothing is written to Vault`, ...common };
  }
  const materialized = materialize(targets, reads.values!, { maxEntryBytes: settings.maxSecretBytes, maxKeysPerPath: settings.maxKeysPerPath });
  if (!materialized.ok) return { type: 'reject', reason: 'SyncFailed', code: materialized.problems[0].code, message: describeProblems(materialized.problems), ...common };

  const desired = materialized.entries.map((entry) => ({ entry, hash: input.hashEntry(entry) }));
  const operations = planSync(desired, base?.entries ?? [], { changeDetection, force: forceRequested(forceToken, record?.inputFingerprint) });
  const intents = pendingIntents(base);
  const driftedWhy = new Map(drifted.map((d) => [formatPath(d.path), d.gone ? (createsOnce ? 'no live version in Vault (create-once): written again' : 'gone from Vault: restored') : 'changed in Vault out of band: restored']));
  const recordedOf = new Map((base?.entries ?? []).map((e) => [formatPath(e.path), e]));
  // Maps by path: a source may have a thousand paths, so nothing below is quadratic.
  const desiredOf = new Map(desired.map((d) => [formatPath(d.entry.path), d.entry]));
  const failureOf = new Map(failures.map((f) => [formatPath(f.path), f]));

  const unchanged: SyncedEntry[] = [];
  const marks: MarksOp[] = [];
  const kept: Array<{ path: KvPath; why: string }> = [];
  const heldBack: WriteFailure[] = [];
  /** A recorded path whose custom_metadata is due without its data: marks that did not follow, or other user keys. */
  const marksDue = (entry: SyncedEntry): MarksOp | undefined => {
    if (entry.marksPending) return { entry, why: 'content unchanged; its ownership marks did not follow the data yet: written now (no new version)' };
    if (entry.metadataHash === wantedMetadataHash(entry.path)) return undefined;
    const why = metadataDrifted.has(formatPath(entry.path)) ? 'custom_metadata changed in Vault out of band: restored' : `custom_metadata changed (${Annotations.customMetadata})`;
    return { entry, why: `${why}: written with the marks (no new version)` };
  };
  const toWrite: Array<{ entry: DesiredEntry; hash: string; why: string }> = [];
  const toDelete = new Map<string, { path: KvPath; why: string; recorded: boolean }>();
  const wanted = new Set<string>();
  for (const op of operations) {
    if (op.type === 'delete') {
      toDelete.set(formatPath(op.path), { path: op.path, why: op.reason, recorded: true });
      continue;
    }
    const path = op.type === 'write' ? op.entry.path : op.path;
    const shown = formatPath(path);
    wanted.add(shown);
    if (op.type === 'unchanged') {
      const entry = recordedOf.get(shown)!;
      // An intended write of other content may have landed here (its answer lost): resolved like any write.
      const due = marksDue(entry);
      if (intents.has(shown)) toWrite.push({ entry: desiredOf.get(shown)!, hash: op.hash, why: 'an intended write is not recorded as landed' });
      else if (due) marks.push(due);
      else unchanged.push(entry);
      continue;
    }
    // Create once: a path this source wrote keeps its data, whatever the source says now.
    const recordedEntry = recordedOf.get(shown);
    if (createsOnce && recordedEntry && !intents.has(shown)) {
      const due = marksDue(recordedEntry);
      if (due) marks.push(due);
      else kept.push({ path: recordedEntry.path, why: KEPT_CREATE_ONCE });
      continue;
    }
    const failure = failureOf.get(shown);
    if (failure && failure.hash === op.hash && !failureDue(failure, input.now)) heldBack.push(failure);
    else toWrite.push({ entry: op.entry, hash: op.hash, why: driftedWhy.get(shown) ?? op.reason });
  }
  // An intent for a path this source no longer writes (its inputs changed after a crash): its data may
  // have landed, unmarked; the intent proves it ours, so it is deleted like a path the source moved away from.
  for (const [shown, intent] of intents) if (!wanted.has(shown) && !toDelete.has(shown)) toDelete.set(shown, { path: intent.path, why: 'no longer produced by the source', recorded: false });

  // The write decision per path: from the record; what the record cannot say is looked up.
  const views = reads.views ?? new Map<string, PathView>();
  const adoptAsked = isTrue(object.annotations[Annotations.adopt]);
  const lookups: KvPath[] = [];
  const writes: WriteOp[] = [];
  /** Paths IfNotExists keeps that the record had lost: recorded again as they are (content unknown). */
  const rerecorded: SyncedEntry[] = [];
  const decided = (write: { entry: DesiredEntry; hash: string; why: string }, decision: WriteDecision, vault: PathView, intent?: WriteIntent) => {
    if (!createsOnce || vault.state === 'unchecked') return writes.push(writeOp(write, decision, intent));
    const once = createOnce(decision, vault);
    if (once.action === 'write') return writes.push(writeOp(write, once.decision, intent));
    const entry: SyncedEntry = { path: write.entry.path, hash: '', version: once.version };
    rerecorded.push(entry);
    const due = marksDue(entry);
    return due ? marks.push(due) : kept.push({ path: entry.path, why: once.why });
  };
  for (const write of toWrite) {
    const shown = formatPath(write.entry.path);
    const intent = intents.get(shown);
    const writeInput = {
      source,
      clusterName: settings.clusterName,
      recordedVersion: recordedOf.get(shown)?.version,
      intent,
      adoptAllowed: adoptionAllowed(write.entry.path, object.namespace, adoptAsked, input.grants),
    };
    const first = decideWrite({ ...writeInput, vault: { state: 'unknown' } });
    if (first.action !== 'lookup') {
      decided(write, first, { state: 'unknown' });
      continue;
    }
    const view = views.get(shown);
    if (!view) lookups.push(write.entry.path);
    else if (view.state === 'unchecked') writes.push({ ...write, decision: decideWrite({ ...writeInput, intent: undefined, vault: { state: 'unknown' } }), unchecked: true });
    else decided(write, decideWrite({ ...writeInput, vault: view }), view, intent);
  }
  const deletes = decideDeletes([...toDelete.values()], input, source, base);
  if (lookups.length > 0 || !Array.isArray(deletes) || kvUnknown) {
    return ask({ type: 'read', ...(lookups.length > 0 ? { lookup: lookups } : {}), ...(!Array.isArray(deletes) ? { metadata: deletes.metadata } : {}) });
  }
  const started = base ?? { inputFingerprint: '', entries: [], lastSyncTime: new Date(input.now).toISOString() };
  return {
    type: 'apply',
    why: drifted.length > 0 ? 'in sync with its inputs; drift checked in Vault' : record ? 'inputs changed since the last sync' : 'not synced yet',
    base: rerecorded.length > 0 ? { ...started, entries: [...started.entries, ...rerecorded] } : started,
    inputFingerprint: fingerprint,
    ...(driftPeriodMs !== undefined ? { driftPeriodMs } : {}),
    drifted,
    unchanged: unchanged.sort(byPath((e) => e.path)),
    writes: writes.sort(byPath((w) => w.entry.path)),
    marks: marks.sort(byPath((m) => m.entry.path)),
    kept: kept.sort(byPath((k) => k.path)),
    userMetadata: user,
    deletes: deletes.sort(byPath((d) => d.path)),
    heldBack: heldBack.sort(byPath((f) => f.path)),
    ...common,
  };
}

/** A decided write with its intent; a recover of older content becomes a write over it. */
function writeOp(write: { entry: DesiredEntry; hash: string; why: string }, decision: WriteDecision, intent?: WriteIntent): WriteOp {
  if (decision.action === 'recover' && intent && intent.hash !== write.hash) {
    const update: WriteDecision = { action: 'update', cas: decision.version, reason: `${decision.reason}, with older content: written again` };
    return { ...write, decision: update, intent: intentOf(write.entry, write.hash, update), recovered: { version: decision.version, hash: intent.hash, markMissing: decision.markMissing } };
  }
  if (decision.action === 'create' || decision.action === 'update' || decision.action === 'adopt') return { ...write, decision, intent: intentOf(write.entry, write.hash, decision) };
  return { ...write, decision };
}

function intentOf(entry: DesiredEntry, hash: string, decision: Extract<WriteDecision, { cas: number }>): WriteIntent {
  return {
    path: entry.path,
    version: decision.cas + 1,
    hash,
    ...(entry.binaryKeys.length ? { binaryKeys: entry.binaryKeys } : {}),
    // Kept until the marks landed, so marks written after a crash still carry the adopted path's old metadata.
    ...(decision.action === 'adopt' ? { previousMetadata: decision.previousMetadata } : {}),
  };
}

/**
 * The source is being deleted, or its path annotation was removed: the paths it wrote (its record, its
 * pending intents, and what its annotations derive now) — each inside its scope — are deleted where they
 * are provably ours, unless preserve-on-delete.
 */
function decideFinalize(input: DecisionInput, source: SyncSource, scope: RequestScope, record: SyncState | undefined): Decision {
  const why = input.object!.deletionTimestamp ? 'source deleted' : `the ${Annotations.path} annotation was removed`;
  // The record (as written: a tampered entry is set apart here) and what the annotations derive now (the record
  // may be lost), split by the scope: neither the annotation nor the record proves a path is the source's.
  const { inside, outside } = pathsOfSource(input.record?.entries ?? [], source, { allowedMounts: input.settings.kvMounts, maxSecretsPerSource: input.settings.maxSecretsPerSource, maxKeysPerPath: input.settings.maxKeysPerPath, scope });
  const paths = new Map(inside.map((path) => [formatPath(path), { path, why, recorded: true }]));
  // An intent whose data may have landed before its marks: proved ours (or dropped) like any path.
  for (const intent of record?.intents ?? []) if (!paths.has(formatPath(intent.path))) paths.set(formatPath(intent.path), { path: intent.path, why, recorded: false });
  const all = [...paths.values()].sort(byPath((p) => p.path));
  const recorded = all.map((p) => p.path);
  const untouched = new Map([...scopedRecord(input.record, scope).outside, ...outside].map((path) => [formatPath(path), path]));
  const reported = { index: 'forget' as const, scope, outside: [...untouched.values()].sort(byPath((p) => p)) };
  if (preservesOnDelete(source.annotations)) return { type: 'finalize', why, preserved: preservationReason(source.annotations), recorded, deletes: [], ...reported };
  const deletes = decideDeletes(all, input, source, record);
  if (!Array.isArray(deletes)) return deletes;
  return { type: 'finalize', why, recorded, deletes, ...reported };
}
