// The operator's Vault side (limiter, batches, retries, auth) on its own, against the real OpenBao of the
// e2e environment, logged in the way the operator is (Kubernetes auth) unless told otherwise.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../../src/config.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { vaultMetricsOf } from '../../../src/observability/vault-metrics.js';
import type { RequestContext } from '../../../src/vault/port.js';
import { wholeMounts } from '../../../src/vault/scope.js';
import { createVaultStack, type VaultStackParts, type VaultStackTuning } from '../../../src/vault/stack.js';
import { loadTestEnv, vaultHttp } from './env.js';
import { writeOperatorToken } from './operator.js';

export interface TestVaultStack extends VaultStackParts {
  metrics: Metrics;
  /** Every log line, parsed. */
  logs: Array<Record<string, unknown>>;
  /** The raw log text, to check that no secret value ever appears in it. */
  logText(): string;
}

/** A log sink that keeps the lines (JSON) in memory. */
export function memoryLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/**
 * argv as for the operator (`--vault-addr=...` overrides the environment's Vault, e.g. with a proxy).
 * Defaults to Kubernetes auth with a fresh service-account token.
 */
export async function vaultStack(argv: string[] = [], tuning: VaultStackTuning = {}): Promise<TestVaultStack> {
  const env = loadTestEnv();
  const wantsOtherAuth = argv.some((a) => a.startsWith('--vault-auth-method='));
  const authArgs = wantsOtherAuth
    ? []
    : ['--vault-auth-method=kubernetes', `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`, `--vault-kubernetes-token-path=${await writeOperatorToken()}`];
  const config = loadConfig([`--vault-addr=${env.vaultAddr}`, ...authArgs, ...argv], {});
  const metrics = new Metrics({ processMetrics: false });
  const { log, lines } = memoryLogger();
  const stack = createVaultStack(config, log, vaultMetricsOf(metrics), tuning);
  return {
    ...stack,
    metrics,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join('\n'),
  };
}

/**
 * The context of a request these tests make on the port directly, for no source: the whole `secret/` mount
 * (every KV request carries a scope; the port refuses one without).
 */
export const testScope = wholeMounts(['secret'], 'an e2e test of the Vault layer');
export const asTest: RequestContext = { scope: testScope };

/** A unique prefix under secret/ for one test. */
export function uniquePrefix(name: string): string {
  return `${name}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** What is in Vault at secret/<key> (root token, straight to OpenBao, not through any proxy). */
export async function kvData(key: string, mount = 'secret'): Promise<Record<string, string> | undefined> {
  const res = await vaultHttp(`${mount}/data/${key}`);
  return res.status === 200 ? res.json.data.data : undefined;
}

/** A metric's value from the registry text (first series matching the labels). */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await metrics.registry.metrics();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? (.+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(match[3]);
  }
  return 0;
}
