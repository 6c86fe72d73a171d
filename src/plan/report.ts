/**
 * The plan as data, and its two renderings (text for people, JSON for machines). Pure. Names, paths and
 * reasons only: a plan never holds a secret value, so no rendering can print one. Sources and paths are
 * sorted here, where the report is built, so the plan reads the same whatever order it was gathered in.
 */
import { compareUtf8, sortedByPath } from '../vault/path-order.js';

/** What would happen at one Vault path. */
export type PathAction =
  | 'create' // a new path: claimed (ownership marks), then written
  | 'update' // a path this source owns: a new version
  | 'adopt' // a path without marks that the source asks to take over
  | 'delete' // a path this source owns that it no longer produces (or the source is gone)
  | 'unchanged' // equal means no-op
  | 'keep' // left in Vault on purpose (preserve-on-delete)
  | 'refuse'; // owned by someone else, or not allowed

export interface PathPlan {
  path: string;
  action: PathAction;
  reason: string;
}

/** The sum of a source: refused wins over change, change over none. */
export type Verdict = 'change' | 'refuse' | 'none';

export interface SourcePlan {
  kind: 'Deployment' | 'Secret';
  namespace: string;
  name: string;
  verdict: Verdict;
  /** One line on the source as a whole: why it is refused, suspended, deleting, in sync... */
  reason: string;
  paths: PathPlan[];
}

export interface PlanSummary {
  sources: number;
  /** Paths by action. */
  create: number;
  update: number;
  adopt: number;
  delete: number;
  unchanged: number;
  keep: number;
  refuse: number;
  /** Sources refused as a whole (bad annotation, outside the tenant prefix, missing Secret...). */
  refusedSources: number;
}

export interface PlanReport {
  /** Version of this document's shape, for scripts that read `--output json`. */
  apiVersion: 'vault-sync.io/plan/v1';
  cluster: string;
  summary: PlanSummary;
  sources: SourcePlan[];
}

export const WRITE_ACTIONS: ReadonlySet<PathAction> = new Set(['create', 'update', 'adopt']);
const CHANGE_ACTIONS: ReadonlySet<PathAction> = new Set(['create', 'update', 'adopt', 'delete']);

/** Messages quote annotations and Vault custom_metadata, which anyone may fill: bound them, and no control characters. */
const MAX_REASON_CHARS = 1024;

export function cleanText(text: string, max = MAX_REASON_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const printable = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return printable.length > max ? `${printable.slice(0, max - 1)}…` : printable;
}

/**
 * A source plan from its paths (the verdict follows from them) or a refusal of the whole source. Paths come
 * sorted (byte order): the order they were decided in (the record's, Vault's answers') is not the output's.
 */
export function sourcePlan(source: Pick<SourcePlan, 'kind' | 'namespace' | 'name'>, reason: string, paths: PathPlan[], refused = false): SourcePlan {
  const cleanPaths = sortedByPath(
    paths.map((p) => ({ path: cleanText(p.path), action: p.action, reason: cleanText(p.reason) })),
    (p) => p.path,
  );
  const verdict: Verdict = refused || cleanPaths.some((p) => p.action === 'refuse') ? 'refuse' : cleanPaths.some((p) => CHANGE_ACTIONS.has(p.action)) ? 'change' : 'none';
  return { kind: source.kind, namespace: source.namespace, name: source.name, verdict, reason: cleanText(reason), paths: cleanPaths };
}

/** Byte order, not localeCompare: the plan must not change with the machine's locale. */
const order = (a: SourcePlan, b: SourcePlan) => compareUtf8(a.namespace, b.namespace) || compareUtf8(a.kind, b.kind) || compareUtf8(a.name, b.name);

export function buildReport(cluster: string, sources: SourcePlan[]): PlanReport {
  const summary: PlanSummary = { sources: sources.length, create: 0, update: 0, adopt: 0, delete: 0, unchanged: 0, keep: 0, refuse: 0, refusedSources: 0 };
  for (const source of sources) {
    for (const path of source.paths) summary[path.action] += 1;
    if (source.verdict === 'refuse' && !source.paths.some((p) => p.action === 'refuse')) summary.refusedSources += 1;
  }
  return { apiVersion: 'vault-sync.io/plan/v1', cluster, summary, sources: [...sources].sort(order) };
}

/** 0 nothing to do, 2 changes pending, 1 anything refused (a refusal needs a person; it wins over changes). */
export function exitCodeOf(report: PlanReport): 0 | 1 | 2 {
  if (report.sources.some((s) => s.verdict === 'refuse')) return 1;
  if (report.sources.some((s) => s.verdict === 'change')) return 2;
  return 0;
}

const MARKS: Record<PathAction, string> = { create: '+', update: '~', adopt: '>', delete: '-', unchanged: '=', keep: '=', refuse: '!' };

/** One counted phrase per non-zero action, in a fixed order: "2 to create, 1 refused". */
export function describeCounts(summary: Omit<PlanSummary, 'sources' | 'refusedSources'>): string {
  const parts: string[] = [];
  if (summary.create) parts.push(`${summary.create} to create`);
  if (summary.update) parts.push(`${summary.update} to update`);
  if (summary.adopt) parts.push(`${summary.adopt} to adopt`);
  if (summary.delete) parts.push(`${summary.delete} to delete`);
  if (summary.refuse) parts.push(`${summary.refuse} refused`);
  if (summary.unchanged) parts.push(`${summary.unchanged} unchanged`);
  if (summary.keep) parts.push(`${summary.keep} kept`);
  return parts.join(', ') || 'no paths';
}

/** Counts of one source's paths by action. */
export function countPaths(paths: readonly PathPlan[]): Omit<PlanSummary, 'sources' | 'refusedSources'> {
  const counts = { create: 0, update: 0, adopt: 0, delete: 0, unchanged: 0, keep: 0, refuse: 0 };
  for (const path of paths) counts[path.action] += 1;
  return counts;
}

export function renderText(report: PlanReport): string {
  const lines: string[] = [];
  for (const source of report.sources) {
    const verdict = source.verdict === 'refuse' ? 'REFUSED' : source.verdict === 'change' ? 'changes' : 'nothing to do';
    lines.push(`${source.kind} ${source.namespace}/${source.name}: ${verdict} - ${source.reason}`);
    const width = Math.max(0, ...source.paths.map((p) => p.path.length));
    for (const path of source.paths) lines.push(`  ${MARKS[path.action]} ${path.path.padEnd(width)}  ${path.action.padEnd(9)}  ${path.reason}`);
  }
  const s = report.summary;
  if (report.sources.length === 0) lines.push('No annotated sources found.');
  const refusedSources = s.refusedSources ? `; ${s.refusedSources} source(s) refused as a whole` : '';
  lines.push(`Plan for cluster "${cleanText(report.cluster, 253)}": ${s.sources} source(s); paths: ${describeCounts(s)}${refusedSources}.`);
  const code = exitCodeOf(report);
  lines.push(code === 0 ? 'Nothing to do.' : code === 2 ? 'Changes pending.' : 'Refusals need attention (see "!" lines and REFUSED sources).');
  return lines.join('\n') + '\n';
}

export function renderJson(report: PlanReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

/** A VaultSync condition (names and paths only). */
export interface PlannedCondition {
  status: 'True';
  reason: 'NothingToDo' | 'ChangesPending' | 'Refused';
  message: string;
}

const MAX_CONDITION_MESSAGE_CHARS = 1024;
const ACTION_ORDER: readonly PathAction[] = ['create', 'update', 'adopt', 'delete', 'refuse', 'unchanged', 'keep'];

/**
 * DRY_RUN's VaultSync condition `Planned`: what the operator would do for one source. Paths are listed by
 * action; the message is bounded (a source may produce many paths).
 */
export function plannedCondition(plan: SourcePlan): PlannedCondition {
  const reason = plan.verdict === 'refuse' ? 'Refused' : plan.verdict === 'change' ? 'ChangesPending' : 'NothingToDo';
  const byAction = new Map<PathAction, string[]>();
  for (const path of sortedByPath(plan.paths, (p) => p.path)) byAction.set(path.action, [...(byAction.get(path.action) ?? []), path.action === 'refuse' ? `${path.path} (${path.reason})` : path.path]);
  // Actions in one fixed order (that of the summary), paths sorted within each.
  const parts = ACTION_ORDER.filter((action) => byAction.has(action)).map((action) => `${action === 'refuse' ? 'would refuse' : action === 'unchanged' || action === 'keep' ? action : `would ${action}`} ${byAction.get(action)!.join(', ')}`);
  return { status: 'True', reason, message: cleanText([plan.reason, ...parts].join('; '), MAX_CONDITION_MESSAGE_CHARS) };
}
