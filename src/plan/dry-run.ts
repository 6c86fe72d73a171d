import type { Logger } from 'pino';
import { Annotations } from '../kube/annotations.js';
import { parseSourceKey } from '../kube/objects.js';
import type { Metrics } from '../observability/metrics.js';
import type { SourceRef } from '../sync/state-store.js';
import type { SourceLookup } from '../sync/reconciler.js';
import type { Planner } from './planner.js';
import { countPaths, describeCounts, plannedCondition, type PathAction, type PlannedCondition } from './report.js';

const ACTIONS: PathAction[] = ['create', 'update', 'adopt', 'delete', 'refuse', 'unchanged', 'keep'];

export interface DryRunDeps {
  planner: Planner;
  sources: SourceLookup;
  /** Where the `Planned` condition goes (the VaultSync status); nothing else of the status changes. */
  state: { setPlanned(key: string, source: SourceRef, planned: PlannedCondition): Promise<void> };
  metrics?: Metrics;
  log: Logger;
}

/**
 * DRY_RUN: in place of reconcile(key), the plan of the source (the same Planner as `vault-sync-operator
 * plan`), reported as a log line when it changes, the VaultSync condition `Planned`, and the gauge
 * vault_sync_planned_operations{action} summed over sources. No Vault write, no finalizer, no Event.
 */
export class DryRunReporter {
  private readonly countsBySource = new Map<string, Record<PathAction, number>>();
  /** Running sums over countsBySource (updated by difference: a resync of many sources stays linear). */
  private readonly totals = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as Record<PathAction, number>;
  private readonly lastMessages = new Map<string, string>();

  constructor(private readonly deps: DryRunDeps) {
    for (const action of ACTIONS) deps.metrics?.plannedOperations.labels(action).set(0);
  }

  async report(key: string): Promise<void> {
    const plan = await this.deps.planner.planSource(key);
    this.record(key, plan ? countPaths(plan.paths) : undefined);
    if (!plan) {
      this.lastMessages.delete(key);
      return;
    }
    const condition = plannedCondition(plan);
    if (this.lastMessages.get(key) !== condition.message) {
      this.lastMessages.set(key, condition.message);
      (plan.verdict === 'refuse' ? this.deps.log.warn : this.deps.log.info).call(
        this.deps.log,
        { source: key, dryRun: true, verdict: plan.verdict, paths: plan.paths },
        `DRY_RUN plan: ${describeCounts(countPaths(plan.paths))} - ${plan.reason}`,
      );
    }
    const { kind, namespace, name } = parseSourceKey(key);
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name) : this.deps.sources.secret(namespace, name);
    if (!object) return;
    await this.deps.state.setPlanned(key, { kind, namespace, name, uid: object.uid, path: object.annotations[Annotations.path] }, condition);
  }

  private record(key: string, counts: Record<PathAction, number> | undefined): void {
    const previous = this.countsBySource.get(key);
    for (const action of ACTIONS) this.totals[action] += (counts?.[action] ?? 0) - (previous?.[action] ?? 0);
    if (counts) this.countsBySource.set(key, counts);
    else this.countsBySource.delete(key);
    for (const action of ACTIONS) this.deps.metrics?.plannedOperations.labels(action).set(this.totals[action]);
  }
}
