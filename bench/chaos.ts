// `npm run bench` step "chaos": the long form of test/e2e/chaos.test.ts (3 replicas, CHAOS_MINUTES or
// --chaos-minutes, 10 by default) against the bench's own environment. Prints the figures the issue asks
// for: writes by non-holders, stale paths, excess versions, requests over the bucket, leftovers, requests
// at rest, canary leaks; and the first lines of evidence when any is not 0.
import { join } from 'node:path';
import { chaosOptions, runChaos, type ChaosFigures } from '../test/e2e/helpers/chaos.js';

export async function chaosBench(stateDir: string, minutes: number, say: (m: string) => void): Promise<ChaosFigures & { evidence: string[] }> {
  // The harness reads the environment as the e2e tests do: from the env.json the environment wrote.
  process.env.VSO_E2E_ENV_JSON = join(stateDir, 'env.json');
  say(`chaos: ${minutes} min of churn, faults, leader kills and one pause with 3 replicas, then checks against the ledger`);
  const report = await runChaos(chaosOptions(minutes, (m) => say(`chaos: ${m}`)));
  return { ...report.figures, evidence: report.evidence };
}

export function chaosTable(figures: ChaosFigures, table: (rows: Array<Record<string, unknown>>) => string): string[] {
  const row = {
    wallMinutes: Math.round(figures.seconds / 6) / 10,
    replicas: figures.replicas,
    values: figures.valuesSet,
    livePaths: figures.paths.live,
    kills: figures.kills,
    pauses: figures.pauses,
    writesByNonHolders: figures.writesByNonHolders,
    stalePaths: figures.stalePaths,
    excessVersions: figures.excessVersions,
    overBucket: figures.requestsOverBucket,
    leftDeleted: figures.leftovers.deleted,
    leftMoved: figures.leftovers.moved,
    atRest: figures.requestsAtRest,
    leaks: figures.canaryLeaks,
  };
  return ['Chaos: replicas killed and paused behind failing proxies, checked against the ledger (all but the first six columns should be 0)', table([row]), ''];
}
