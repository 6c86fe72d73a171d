// What the operator does with a source's vault-sync.io annotation values that break the rules, decided from
// the one rule set the chart's admission policy is generated from (annotationProblem, src/kube/annotation-rules.ts).
// The admission policy may be off, Warn only, or younger than the object, so the operator reports them itself.
import { Annotations, isTrue } from '../kube/annotations.js';
import { annotationProblem, SWITCH_READ_ON_BAD_VALUE, type AnnotationContext } from '../kube/annotation-rules.js';

/** One annotation the operator does not read as written: which, why, and what it does instead. */
export interface AnnotationFinding {
  key: string;
  value: string;
  problem: string;
  /** What the operator does meanwhile, in words for the Event. */
  meanwhile: string;
}

/** The reason of the Warning Event and the code of vault_sync_refusals_total for these findings. */
export const INVALID_ANNOTATION = 'InvalidAnnotation';

/** The context matters to the path's verdict only; a switch is judged without it. */
const NO_PATH_CONTEXT: AnnotationContext = { namespace: '', allowedMounts: [], tenantPathTemplate: undefined };

/** How much of a bad value the Event quotes (in code points): enough to recognise it, bounded. */
const QUOTED_VALUE_LENGTH = 40;

/**
 * What the operator does on a bad value of each annotation. Switches are read as SWITCH_READ_ON_BAD_VALUE says
 * (the safe side: a bad `preserve-on-delete` keeps the data); a bad `rotation-check` or `reconcile` keeps
 * today's reading (change detection on, no drift check); an unknown key is ignored.
 */
function meanwhileFor(key: string, kind: string): string {
  switch (key) {
    case Annotations.preserveOnDelete:
      return `read as "${SWITCH_READ_ON_BAD_VALUE[key]}": the Vault data is kept when the ${kind} is deleted`;
    case Annotations.suspend:
      return `read as "${SWITCH_READ_ON_BAD_VALUE[key]}": the source keeps syncing`;
    case Annotations.adopt:
      return `read as "${SWITCH_READ_ON_BAD_VALUE[key]}": paths without ownership marks are not taken over`;
    case Annotations.rotationCheck:
      return 'read as "enabled"';
    case Annotations.reconcile:
      return 'ignored: no periodic drift check';
    case Annotations.updatePolicy:
      return 'read as "IfNotExists": a path is written only when it has no live version';
    case Annotations.customMetadata:
      return 'ignored: the paths are synced with the ownership marks only, and user keys written before are removed';
    default:
      return 'ignored'; // an unknown key (a typo of one of the above, most likely)
  }
}

/**
 * The annotations of a source whose values the operator does not read as written, in key order (a stable
 * Event message). The path is left out: a bad path is refused on its own (Refused, InvalidPath/OutsideTenantPrefix).
 */
export function annotationFindings(annotations: Readonly<Record<string, string>>, context: AnnotationContext, kind: string): AnnotationFinding[] {
  const findings: AnnotationFinding[] = [];
  for (const key of Object.keys(annotations).sort()) {
    if (key === Annotations.path) continue;
    const problem = annotationProblem(key, annotations[key], context);
    if (problem !== undefined) findings.push({ key, value: annotations[key], problem, meanwhile: meanwhileFor(key, kind) });
  }
  return findings;
}

/**
 * Keep the Vault data when the source goes? Only an absent annotation or a valid "false" deletes: a bad value
 * is read as the safe choice, as annotationFindings reports it.
 */
export function preservesOnDelete(annotations: Readonly<Record<string, string>>): boolean {
  const value = annotations[Annotations.preserveOnDelete];
  if (value === undefined) return false;
  if (annotationProblem(Annotations.preserveOnDelete, value, NO_PATH_CONTEXT) !== undefined) return SWITCH_READ_ON_BAD_VALUE[Annotations.preserveOnDelete] === 'true';
  return isTrue(value);
}

/** Why the data is kept, for the Preserved Event (a bad value says so, quoted and cut like in describeFinding). */
export function preservationReason(annotations: Readonly<Record<string, string>>): string {
  const value = annotations[Annotations.preserveOnDelete] ?? '';
  if (isTrue(value)) return `${Annotations.preserveOnDelete}: "true"`;
  return `${Annotations.preserveOnDelete}: ${quote(value)} is not "true" or "false" and is read as "true"`;
}

/** The value as a JSON string, cut; its ";" escaped too, as messages are cut between "; "-separated parts. */
function quote(value: string): string {
  const codePoints = [...value];
  const shown = codePoints.length > QUOTED_VALUE_LENGTH ? `${codePoints.slice(0, QUOTED_VALUE_LENGTH).join('')}…` : value;
  return JSON.stringify(shown).replaceAll(';', '\\u003b');
}

/**
 * One finding in the Event: the annotation, its value (quoted, cut), the problem and what happens meanwhile.
 * No "; " of its own: the findings are joined by "; ", which is where a bounded message is cut.
 */
export function describeFinding(finding: AnnotationFinding): string {
  return `${finding.key}: ${quote(finding.value)} ${finding.problem} (${finding.meanwhile})`;
}
