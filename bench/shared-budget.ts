// `npm run bench` step "budget": one Vault budget shared by 3 shard holders (real operator processes) against
// the static split, the same backlog (200 new paths in one shard's namespace) on each. Prints how soon the busy
// shard's share reached 90 % of the rate, its share, its backlog's drain time and rate in both modes, and the
// merged audit log's replay through one bucket of the installation's budget (test/e2e/helpers/shared-budget-run.ts).
import { join } from 'node:path';
import { runSharedBudget, type SharedBudgetFigures } from '../test/e2e/helpers/shared-budget-run.js';

export interface SharedBudgetBench {
  shared: SharedBudgetFigures;
  static: SharedBudgetFigures;
  /** static drain time / shared drain time. */
  drainSpeedup: number;
}

export async function sharedBudgetBench(stateDir: string, say: (m: string) => void, deployments = 8, secretsPerDeployment = 25): Promise<SharedBudgetBench> {
  // The harness reads the environment as the e2e tests do: from the env.json the environment wrote.
  process.env.VSO_E2E_ENV_JSON = join(stateDir, 'env.json');
  const run = (sharing: 'shared' | 'static') => {
    say(`budget: 3 shards (3 processes), ${deployments * secretsPerDeployment} new paths in one shard, ${sharing} budget`);
    return runSharedBudget({ sharing, deployments, secretsPerDeployment, say: (m) => say(`budget ${sharing}: ${m}`) });
  };
  const shared = await run('shared');
  const statics = await run('static');
  return { shared, static: statics, drainSpeedup: shared.drainSeconds > 0 ? Math.round((statics.drainSeconds / shared.drainSeconds) * 100) / 100 : 0 };
}

export function sharedBudgetTable(bench: SharedBudgetBench, table: (rows: Array<Record<string, unknown>>) => string): string[] {
  const row = (f: SharedBudgetFigures) => ({
    sharing: f.sharing,
    paths: f.paths,
    busyRequests: f.busyRequests,
    drainSeconds: f.drainSeconds,
    achievedPerSecond: f.achievedRate,
    secondsTo90: f.secondsToShare90 ?? '-',
    rebalanceSeconds: f.rebalanceSeconds ?? '-',
    busyShare: f.busyShare ? `${f.busyShare.rate}/s, ${f.busyShare.burst}` : `${Math.floor((f.rate / f.shards) * 1000) / 1000}/s, ${Math.floor(f.burst / f.shards)} (static)`,
    overBucket: f.requestsOverBucket,
  });
  return [
    `One budget shared by 3 shard holders vs the static split (10/s, burst 20; one shard with a backlog): drain ${bench.drainSpeedup}x faster shared`,
    table([row(bench.shared), row(bench.static)]),
    '',
  ];
}
