import { parseSourceKey } from '../kube/objects.js';
import { Annotations } from '../kube/annotations.js';
import { KEPT_CREATE_ONCE } from '../sync/create-once.js';
import type { DecisionPipeline } from '../sync/gather.js';
import type { SecretIndex } from '../sync/secret-index.js';
import type { WriteFailure } from '../sync/state-store.js';
import { userMetadataAt, type DeleteOp, type UserMetadata, type Verdict, type WriteOp } from '../sync/verdict.js';
import type { WriteDecision } from '../sync/write-policy.js';
import { formatPath } from '../vault/path.js';
import { sortedByPath } from '../vault/path-order.js';
import { describeScope } from '../vault/scope.js';
import { sourcePlan, type PathAction, type PathPlan, type SourcePlan } from './report.js';

export interface PlannerDeps {
  /** The read-only pipeline (createDecisionPipeline with readOnly): metadata reads only, nothing on KV v1. */
  pipeline: DecisionPipeline;
  /** DRY_RUN keeps the Secret→source index up to date (as the reconciler does), so Secret changes re-plan. */
  index?: SecretIndex;
}

/**
 * What reconcile(key) would do: the same Verdict (src/sync/verdict.ts) from the same pipeline, printed instead
 * of carried out. Reads only: the pipeline it is given reads metadata and Secrets, and nothing here writes.
 */
export class Planner {
  constructor(private readonly deps: PlannerDeps) {}

  /** Undefined when the key names no object, or one with nothing to plan. */
  async planSource(key: string): Promise<SourcePlan | undefined> {
    const { verdict, input } = await this.deps.pipeline.verdict(key);
    const { namespace } = parseSourceKey(key);
    if (verdict.index === 'forget') this.deps.index?.forget(key);
    else if (verdict.index) this.deps.index?.set(key, namespace, verdict.index);
    if (!input.object) return undefined;
    return printVerdict(verdict, input.object, this.deps.pipeline.settings.deletePolicy);
  }
}

const KV1_UNCHECKED = 'KV v1: ownership not checked, plan reads no data';

/** Pure: a Verdict as the plan of one source (its paths sorted). */
export function printVerdict(verdict: Verdict, id: Pick<SourcePlan, 'kind' | 'namespace' | 'name'>, deletePolicy: 'all-versions' | 'latest-version'): SourcePlan | undefined {
  // As the reconciler: never looked up, never touched; nothing is said of what is there.
  const scope = verdict.scope;
  const untouched = scope ? (verdict.outside ?? []).map((p): PathPlan => ({ path: formatPath(p), action: 'refuse', reason: `outside what ${describeScope(scope)} may reach: never touched` })) : [];
  const plan = (reason: string, paths: PathPlan[], refused = false) => sourcePlan(id, reason, sortedByPath([...paths, ...untouched], (p) => p.path), refused);
  const failed = (failures: readonly WriteFailure[]) => failures.map((f): PathPlan => ({ path: formatPath(f.path), action: 'refuse', reason: describeFailure(f) }));
  const without = (paths: PathPlan[], failures: readonly WriteFailure[]) => {
    const failedPaths = new Set(failures.map((f) => formatPath(f.path)));
    return paths.filter((p) => !failedPaths.has(p.path));
  };
  switch (verdict.type) {
    case 'ignore':
      return undefined;
    case 'suspended':
      return plan(`suspended (${Annotations.suspend}: "true"): nothing is written or deleted`, verdict.recorded.map((p) => ({ path: formatPath(p), action: 'unchanged', reason: 'suspended' })));
    case 'reject':
      return plan(`${verdict.code}: ${verdict.message}`, [], true);
    case 'finalize':
      if (verdict.preserved !== undefined) return plan(`${verdict.why}; Vault data kept (${verdict.preserved}), then the finalizer released`, verdict.recorded.map((p) => ({ path: formatPath(p), action: 'keep', reason: 'preserve-on-delete' })));
      return plan(`${verdict.why}; its Vault data is deleted, then the finalizer released`, verdict.deletes.flatMap((d) => describeDelete(d, deletePolicy)));
    case 'unchanged': {
      // Create once: the record says what was written once; whether the source changed since is not read here.
      const reason = verdict.updatePolicy === 'IfNotExists' ? KEPT_CREATE_ONCE : 'content unchanged';
      return plan('in sync: no input changed since the last sync', [...without(verdict.recorded.map((e) => ({ path: formatPath(e.path), action: 'unchanged', reason })), verdict.heldBack), ...failed(verdict.heldBack)]);
    }
    case 'drift-check': {
      const unchecked = new Set(verdict.unchecked.map(formatPath));
      const inSync = verdict.updatePolicy === 'IfNotExists' ? `${KEPT_CREATE_ONCE}; a live version in Vault` : 'content unchanged; no drift in Vault';
      const lines = verdict.paths.map((p): PathPlan => ({ path: formatPath(p), action: 'unchanged', reason: unchecked.has(formatPath(p)) ? 'KV v1: drift not checked (plan reads no data)' : inSync }));
      return plan('in sync with its inputs; drift checked in Vault', [...without(lines, verdict.heldBack), ...failed(verdict.heldBack)]);
    }
    case 'apply': {
      const unchangedReason = verdict.drifted.length > 0 ? 'content unchanged; no drift in Vault' : 'content unchanged';
      return plan(verdict.why, [
        ...verdict.unchanged.map((e): PathPlan => ({ path: formatPath(e.path), action: 'unchanged', reason: unchangedReason })),
        ...verdict.marks.map((m): PathPlan => ({ path: formatPath(m.entry.path), action: 'update', reason: m.why })),
        ...verdict.kept.map((k): PathPlan => ({ path: formatPath(k.path), action: 'keep', reason: k.why })),
        ...verdict.writes.map((op) => printWrite(op, verdict.userMetadata)),
        ...failed(verdict.heldBack),
        ...verdict.deletes.flatMap((d) => describeDelete(d, deletePolicy)),
      ]);
    }
  }
}

function printWrite(op: WriteOp, user: UserMetadata): PathPlan {
  const path = formatPath(op.entry.path);
  if (op.unchecked) return { path, action: op.decision.action === 'create' ? 'create' : 'update', reason: `${op.why} (${KV1_UNCHECKED})` };
  // As the reconciler: a landed write of ours gets its marks again when the source wants user keys there.
  if (op.decision.action === 'recover' && !op.decision.markMissing && userMetadataAt(user, op.entry.path).size > 0) {
    return { path, action: 'update', reason: `${op.decision.reason}; its custom_metadata is written again (which user keys are there is not known)` };
  }
  return { path, ...describeWrite(op.decision, op.hash, op.recovered?.hash ?? op.hash, op.why) };
}

/** Pure: a delete decision as a line of the plan (a `drop` is nothing of ours: no line). */
function describeDelete(op: DeleteOp, deletePolicy: 'all-versions' | 'latest-version'): PathPlan[] {
  const path = formatPath(op.path);
  const { decision } = op;
  switch (decision.action) {
    case 'unchecked':
      return [{ path, action: 'delete', reason: `${op.why} (${KV1_UNCHECKED})` }];
    case 'gone':
      return [{ path, action: 'unchanged', reason: `${op.why}; already gone from Vault` }];
    case 'refuse':
      return [{ path, action: 'refuse', reason: `not deleting: ${decision.reason}` }];
    case 'drop':
      return [];
    case 'delete': {
      const how = deletePolicy === 'latest-version' ? 'latest version soft-deleted' : 'every version and the metadata';
      const proof = decision.proof === 'intent' ? '; its data landed before its marks: ours by the record of the write' : '';
      return [{ path, action: 'delete', reason: `${op.why} (${how})${proof}` }];
    }
  }
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
      return { action: 'refuse', reason: `undecided: ${decision.reason}` }; // the verdict always decides with a view
  }
}

function describeFailure(failure: WriteFailure): string {
  return `Vault refused this content before (${failure.kind}: ${failure.message}); retried ${failure.retryAt ? `at ${failure.retryAt} or ` : ''}when the source changes`;
}
