// One writer, no stale value, whatever happens to the operator's pods: two real replicas with leader election,
// each behind its own fault-injecting proxy in front of the real OpenBao, Secrets changing all the time, paths
// moved and Deployments deleted, the leader SIGKILLed twice and once SIGSTOPped past its lease, then checked
// against the test's own ledger of every value set (test/e2e/helpers/chaos.ts). The longer form runs in
// `npm run bench` or here with CHAOS_MINUTES=10. On a failure the evidence says which path, which values,
// which requests by whom and when.
import { chaosOptions, runChaos } from './helpers/chaos.js';
import { shutdownAllReplicas } from './helpers/chaos-replicas.js';

const minutes = process.env.CHAOS_MINUTES ? Number(process.env.CHAOS_MINUTES) : undefined;
if (minutes !== undefined && !(minutes > 0 && minutes <= 60)) throw new Error(`CHAOS_MINUTES must be a number of minutes in (0, 60], got "${process.env.CHAOS_MINUTES}"`);
const say = (m: string) => process.stderr.write(`[chaos] ${m}\n`);
const options = chaosOptions(minutes, say);
// The workload, the settling bound, the quiet window, and start-up and collection around them.
const timeoutMs = options.durationMs + options.settleTimeoutMs + options.quietWindowMs + 120_000;
// A run that timed out has not stopped its replicas: stop them (a finished run already did; then a no-op).
afterAll(() => shutdownAllReplicas());

test(
  'replicas killed, paused and behind a failing Vault: every live path holds the latest value, written once, by the Lease holder only, within one budget, nothing left behind, nothing leaked, nothing sent at rest',
  async () => {
    const report = await runChaos(options);
    say(`figures: ${JSON.stringify(report.figures)}`);
    if (report.evidence.length) say(`evidence (seed ${options.seed}; CHAOS_SEED=${options.seed} repeats the workload):\n${report.evidence.join('\n')}\nlogs:\n${report.logs.join('\n')}`);

    // The run did what it claims: chaos happened, and the workload was real.
    expect(report.figures.kills).toBe(options.kills);
    expect(report.figures.pauses).toBe(1);
    expect(report.figures.leaseTransitions).toBeGreaterThanOrEqual(options.kills + 1);
    expect(report.figures.valuesSet).toBeGreaterThan(50);
    expect(report.figures.paths.moved).toBeGreaterThan(0);
    expect(report.figures.paths.deleted).toBeGreaterThan(0);
    const faulted = Object.entries(report.figures.requestsByOutcome).filter(([outcome]) => outcome !== 'forwarded');
    expect(faulted.reduce((n, [, count]) => n + count, 0)).toBeGreaterThan(0);

    // The guarantees, with the evidence as the failure message.
    const { figures } = report;
    expect({
      settled: figures.settled,
      writesByNonHolders: figures.writesByNonHolders,
      requestsByNonHolders: figures.requestsByNonHolders,
      stalePaths: figures.stalePaths,
      staleWritesLanded: figures.staleWritesLanded,
      excessVersions: figures.excessVersions,
      requestsOverBucket: figures.requestsOverBucket,
      leftovers: figures.leftovers,
      unmarkedPaths: figures.unmarkedPaths,
      requestsAtRest: figures.requestsAtRest,
      canaryLeaks: figures.canaryLeaks,
      evidence: report.evidence,
    }).toEqual({
      settled: true,
      writesByNonHolders: 0,
      requestsByNonHolders: 0,
      stalePaths: 0,
      staleWritesLanded: 0,
      excessVersions: 0,
      requestsOverBucket: 0,
      leftovers: { deleted: 0, moved: 0, unknown: 0 },
      unmarkedPaths: 0,
      requestsAtRest: 0,
      canaryLeaks: 0,
      evidence: [],
    });
  },
  timeoutMs,
);
