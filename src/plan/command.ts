import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, syncSettings, usage, type Config } from '../config.js';
import { ClusterClient } from '../kube/cluster.js';
import { readHashKey } from '../kube/hash-key.js';
import { loadKubeConfig } from '../kube/kube-config.js';
import { sourceKey } from '../kube/objects.js';
import { describeKubeError } from '../kube/reflector.js';
import { SourceReflectors } from '../kube/source-reflectors.js';
import { VaultSyncStore } from '../kube/vaultsync-store.js';
import { createLogger } from '../observability/logger.js';
import { Fingerprinter } from '../sync/fingerprint.js';
import { createDecisionPipeline } from '../sync/gather.js';
import { reportDroppedPaths, syncStateStore } from '../sync/state-store.js';
import { createVaultStack } from '../vault/stack.js';
import { Planner } from './planner.js';
import { buildReport, exitCodeOf, renderJson, renderText, type PlanReport, type SourcePlan } from './report.js';

/** Exit code when no plan could be made (bad flag, unreachable cluster or Vault): distinct from 0/1/2. */
export const PLAN_FAILED = 3;

export interface PlanOptions {
  output: 'text' | 'json';
}

export class PlanUsageError extends Error {
  override readonly name = 'PlanUsageError';
}

/** Splits the plan's own flags from the operator settings (which loadConfig validates). */
export function parsePlanArgs(argv: readonly string[]): { options: PlanOptions; settings: string[]; help: boolean } {
  const options: PlanOptions = { output: 'text' };
  const settings: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const match = /^(?:--output|-o)(?:=(.*))?$/.exec(arg);
    if (!match) {
      settings.push(arg);
      continue;
    }
    const value = match[1] ?? argv[++i];
    if (value === undefined) throw new PlanUsageError('--output needs a value: text or json');
    if (value !== 'text' && value !== 'json') throw new PlanUsageError(`--output must be text or json, got "${value}"`);
    options.output = value;
  }
  return { options, settings, help };
}

export function planUsage(): string {
  return [
    'Usage: vault-sync-operator plan [--output text|json] [--setting=value ...]',
    '',
    'Prints, per annotated source, what the operator would write to Vault, delete, refuse or leave alone, and why.',
    'Reads the cluster (Deployments, Secrets, VaultSyncs, VaultSyncPolicies) and Vault metadata only; writes nothing.',
    'Needs only get/list/watch in Kubernetes and `read` on <mount>/metadata/* in Vault (`list` on',
    '<mount>/detailed-metadata/* lets OpenBao >= 2.2 answer a folder in one request instead of one read per path).',
    'Exit code: 0 nothing to do, 2 changes pending, 1 something is refused, 3 no plan could be made.',
    '',
    'The settings are the operator\'s (same names, same environment variables); the ones that matter here:',
    '--vault-*, --watch-namespaces, --cluster-name, --tenant-path-template, --operator-namespace, --hash-key-secret.',
    '',
    usage(),
  ].join('\n');
}

export interface PlanCommandIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface PlanOverrides {
  kubeConfig?: KubeConfig;
  log?: Logger;
}

/** `vault-sync-operator plan`: returns the exit code. */
export async function runPlanCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: PlanCommandIO, overrides: PlanOverrides = {}): Promise<number> {
  let parsed: ReturnType<typeof parsePlanArgs>;
  let config: Config;
  try {
    parsed = parsePlanArgs(argv);
    if (parsed.help) {
      io.stdout(planUsage() + '\n');
      return 0;
    }
    config = loadConfig(parsed.settings, env);
  } catch (error) {
    if (error instanceof PlanUsageError || error instanceof ConfigError) {
      io.stderr(`vault-sync-operator plan: invalid configuration: ${error.message}\n`);
      return PLAN_FAILED;
    }
    throw error;
  }
  // Logs go to stderr (stdout is the plan, possibly JSON); quiet unless a level was asked for.
  const levelAsked = env.LOG_LEVEL !== undefined || parsed.settings.some((s) => s.startsWith('--log-level'));
  const log = overrides.log ?? createLogger(levelAsked ? config.logLevel : 'warn', 'vault-sync-operator-plan', { write: (line: string) => io.stderr(line) });
  try {
    const report = await makePlan(config, log, overrides.kubeConfig ?? loadKubeConfig(), (warning) => io.stderr(`warning: ${warning}\n`));
    io.stdout(parsed.options.output === 'json' ? renderJson(report) : renderText(report));
    return exitCodeOf(report);
  } catch (error) {
    const message = error instanceof Error && error.name === 'VaultRequestError' ? error.message : describeKubeError(error);
    io.stderr(`vault-sync-operator plan: no plan could be made: ${message}\n`);
    return PLAN_FAILED;
  }
}

/**
 * The read-only snapshot (caches listed once, then stopped; VaultSync records; the content-hash key) and a
 * plan of every managed source in it.
 */
export async function makePlan(config: Config, log: Logger, kubeConfig: KubeConfig, warn: (message: string) => void = () => undefined): Promise<PlanReport> {
  const vaultStack = createVaultStack(config, log.child({ component: 'vault' }));
  const fingerprint = new Fingerprinter();
  let failed: (error: unknown) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  failure.catch(() => undefined); // raced below; a failure after the race is not an unhandled rejection
  const cluster = new ClusterClient(kubeConfig);
  const reflectors = new SourceReflectors(kubeConfig, config.watchNamespaces, (data) => fingerprint.secretData(data), log, { onError: (error) => failed(error) });
  try {
    const key = await readHashKey(kubeConfig, config.operatorNamespace, config.hashKeySecret);
    const state = new VaultSyncStore(kubeConfig, config.watchNamespaces, undefined, { kvMounts: config.vault.kvMounts });
    await state.load();
    await reportDroppedPaths(state.droppedAtLoad, { log });
    if (!key && state.size > 0) {
      warn(`the content-hash key Secret ${config.operatorNamespace}/${config.hashKeySecret} does not exist (see --operator-namespace / --hash-key-secret): what the VaultSyncs record cannot be compared, so recorded paths show as "update"`);
    }
    // Before the operator's first start there is no key and nothing recorded: any key gives the same plan.
    fingerprint.useKey(key ?? randomBytes(32));
    await vaultStack.login();
    // A list that fails (403: not allowed) would be retried forever by a reflector: fail the plan instead.
    await Promise.race([reflectors.startAndSync(), failure]);
    reflectors.stop();

    const planner = new Planner({
      pipeline: createDecisionPipeline({
        sources: reflectors,
        state: syncStateStore(state),
        cluster,
        vault: vaultStack.vault,
        kvVersion: (mount) => vaultStack.kvVersion(mount),
        fingerprint,
        settings: syncSettings(config, vaultStack),
        readOnly: true,
      }),
    });
    const keys = [...reflectors.managedSources()].map((object) => sourceKey(object.kind, object.namespace, object.name));
    const plans = await mapConcurrently(keys, config.workers, (key) => planner.planSource(key));
    return buildReport(config.clusterName, plans.filter((p): p is SourcePlan => p !== undefined));
  } finally {
    reflectors.stop();
    await vaultStack.stop();
  }
}

/** Like Promise.all over items, at most `limit` at a time (the Vault budget is shared by the limiter anyway). */
async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
