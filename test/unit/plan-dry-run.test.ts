import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { DryRunReporter } from '../../src/plan/dry-run.js';
import type { Planner } from '../../src/plan/planner.js';
import { sourcePlan, type PathPlan, type PlannedCondition, type SourcePlan } from '../../src/plan/report.js';
import type { SlimDeployment } from '../../src/kube/objects.js';

const deployment = (name: string): SlimDeployment => ({ kind: 'Deployment', namespace: 'team', name, uid: `uid-${name}`, resourceVersion: '1', annotations: { 'vault-sync.io/path': `secret/team/${name}` }, finalizers: [] });
const path = (p: string, action: PathPlan['action']): PathPlan => ({ path: p, action, reason: 'r' });

/** A planner whose answers the test sets per key (the real one is covered end to end). */
function reporterWith(plans: Map<string, SourcePlan | undefined>) {
  const metrics = new Metrics({ processMetrics: false });
  const recorded: Array<{ key: string; condition: PlannedCondition }> = [];
  const objects = new Map([['web', deployment('web')], ['api', deployment('api')]]);
  const reporter = new DryRunReporter({
    planner: { planSource: async (key: string) => plans.get(key) } as unknown as Planner,
    sources: { deployment: (_ns, name) => objects.get(name), secret: () => undefined, tenancyGrants: () => [] },
    state: { setPlanned: async (key, _source, condition) => void recorded.push({ key, condition }) },
    metrics,
    log: createLogger('silent'),
  });
  const gauge = async (action: string) => (await metrics.plannedOperations.get()).values.find((v) => v.labels.action === action)?.value;
  return { reporter, recorded, gauge, objects };
}

test('the gauge is the sum over sources, updated by difference when a source is re-planned or gone', async () => {
  const plans = new Map<string, SourcePlan | undefined>([
    ['Deployment/team/web', sourcePlan({ kind: 'Deployment', namespace: 'team', name: 'web' }, 'not synced yet', [path('secret/team/web/a', 'create'), path('secret/team/web/b', 'create')])],
    ['Deployment/team/api', sourcePlan({ kind: 'Deployment', namespace: 'team', name: 'api' }, 'x', [path('secret/team/api/a', 'refuse')])],
  ]);
  const { reporter, gauge } = reporterWith(plans);
  expect(await gauge('create')).toBe(0); // initialised at zero, before any plan
  await reporter.report('Deployment/team/web');
  await reporter.report('Deployment/team/api');
  expect([await gauge('create'), await gauge('refuse')]).toEqual([2, 1]);

  // Re-planned: counts replace the source's old ones (not added to them).
  plans.set('Deployment/team/web', sourcePlan({ kind: 'Deployment', namespace: 'team', name: 'web' }, 'in sync', [path('secret/team/web/a', 'unchanged'), path('secret/team/web/b', 'update')]));
  await reporter.report('Deployment/team/web');
  await reporter.report('Deployment/team/web');
  expect([await gauge('create'), await gauge('update'), await gauge('unchanged'), await gauge('refuse')]).toEqual([0, 1, 1, 1]);

  // Gone: its counts leave the sums.
  plans.set('Deployment/team/api', undefined);
  await reporter.report('Deployment/team/api');
  expect(await gauge('refuse')).toBe(0);
});

test('each plan is recorded as the Planned condition of its source, paths listed by action (in the summary\'s order)', async () => {
  const plans = new Map<string, SourcePlan | undefined>([
    ['Deployment/team/web', sourcePlan({ kind: 'Deployment', namespace: 'team', name: 'web' }, 'inputs changed since the last sync', [path('secret/team/web/a', 'update'), path('secret/team/web/b', 'unchanged'), { path: 'secret/team/web/c', action: 'refuse', reason: 'owned by x' }])],
  ]);
  const { reporter, recorded } = reporterWith(plans);
  await reporter.report('Deployment/team/web');
  expect(recorded).toEqual([
    {
      key: 'Deployment/team/web',
      condition: { status: 'True', reason: 'Refused', message: 'inputs changed since the last sync; would update secret/team/web/a; would refuse secret/team/web/c (owned by x); unchanged secret/team/web/b' },
    },
  ]);
});
