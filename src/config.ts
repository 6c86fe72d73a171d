import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { tokenFromFile } from './observability/bearer-token.js';


/**
 * Operations a waiting marks write lets go first: 100 is about 10 s at the default rate. A backlog shorter than
 * that still sends every value before any mark; a longer one (steady churn) interleaves the aged marks.
 */
export const MARKS_MAX_WAIT_DEFAULT = 100;

/**
 * Keys one path may hold by default, per server:
 *  - OpenBao: measured on 2.7.2 with its default of 1,000 strings: 498 keys with `cas` pass, 499 fail; 499
 *    without `cas` pass, 500 fail. 480 leaves room for the envelope and, on KV v1, for the ownership marks
 *    that ride in the data (about 16 strings).
 *  - HashiCorp Vault: 100 below its 10,000 entries per JSON object: the data is one object, and on KV v1 the
 *    marks are one more entry in it.
 *  - unknown (sys/health unanswered or unreadable): OpenBao's, which every server accepts.
 */
/** Which Vault server answered sys/health at start (src/vault/server-limits.ts tells them apart). */
export type VaultServerKind = 'openbao' | 'vault' | 'unknown';

export const KEYS_PER_PATH_DEFAULTS: Readonly<Record<VaultServerKind, number>> = { openbao: 480, vault: 9_900, unknown: 480 };

/**
 * The highest --max-keys-per-path accepted: a bound on what one reconcile holds for one path (the keys are kept
 * in a Map, hashed, serialized into the body) whatever a server was configured to take. Measured with
 * bench/path-keys.ts (20-character names, 32-byte values): 9,900 keys cost ~30 ms to decide, ~30 ms to
 * serialize, ~6 MiB of heap and a 561 KiB body; 20,000 keys ~80 + ~70 ms and ~18 MiB, so four workers on such
 * paths at once stay well inside the chart's 384 MiB limit; 100,000 keys took ~55 MiB each. Twice the
 * default entries of HashiCorp Vault's JSON objects.
 */
export const MAX_KEYS_PER_PATH_LIMIT = 20_000;
/** One drift scan's answer: 16 MiB is about 40,000 keys (a scan of 10,000 keys measured 6.1 MB). */
export const DRIFT_SCAN_MAX_BYTES_DEFAULT = 16 * 1024 ** 2;
/** The most a scan's answer may be set to: it is held whole while it is parsed. */
export const DRIFT_SCAN_MAX_BYTES_LIMIT = 256 * 1024 ** 2;
/**
 * The settings the sync decisions read (reconciler, plan, DRY_RUN): taken from Config in one place. The keys one
 * path may hold follow the Vault server unless set (src/vault/server-limits.ts): the stack learns them at login,
 * before the first decision, and every decision reads the number it chose.
 */
export function syncSettings(config: Config, server: { writeLimits(): { maxKeysPerPath: number } }) {
  return {
    clusterName: config.clusterName,
    contentHashInMetadata: config.contentHashInMetadata,
    kvMounts: config.vault.kvMounts,
    maxSecretBytes: config.maxSecretBytes,
    maxSecretsPerSource: config.maxSecretsPerSource,
    get maxKeysPerPath(): number {
      return server.writeLimits().maxKeysPerPath;
    },
    tenantPathTemplate: config.tenantPathTemplate,
    deletePolicy: config.deletePolicy,
  };
}

/**
 * How the operator proves itself to Vault: plain settings, owned here; the Vault layer turns them into its
 * login request (src/vault/auth.ts).
 */
export type VaultAuthConfig =
  | { method: 'token'; token: string }
  | { method: 'kubernetes'; role: string; mount: string; tokenPath: string }
  | { method: 'approle'; roleId: string; secretIdPath: string; mount: string };

/** Everything the operator can be told, typed and validated. */
export interface Config {
  vault: {
    addr: string;
    auth: VaultAuthConfig;
    namespace?: string;
    caCert?: string;
    timeoutMs: number;
    kvMounts: string[];
  };
  rateLimit: { rate: number; burst: number };
  batchSize: number;
  /**
   * Values go before ownership marks in the fair line; a mark that has let this many other operations go
   * first is served like data, so marks cannot starve under steady churn (the intent record covers the gap).
   */
  marksMaxWaitRequests: number;
  /** Retries of one Vault request on transient failures, before the source is re-queued with its own backoff. */
  vaultRetry: { retries: number; maxDelayMs: number };
  largeSecretThresholdBytes: number;
  maxSecretBytes: number;
  /**
   * Drift checks of the sources below one root share one recursive scan per period (OpenBao's SCAN); the byte cap
   * of one scan's answer. 0 = no scans (one detailed listing per folder).
   */
  driftScanMaxBytes: number;
  /**
   * Secrets one source may sync (one Vault path each when its pod template is used). It bounds the work and
   * memory of one reconcile and the size of its VaultSync status, not what a workload may use.
   */
  maxSecretsPerSource: number;
  /**
   * Keys one Vault path may hold (one write): undefined = the default of the server detected at start
   * (src/vault/server-limits.ts: OpenBao 480, HashiCorp Vault 9,900).
   */
  maxKeysPerPath?: number;
  /** Empty = every namespace. */
  watchNamespaces: string[];
  clusterName: string;
  /** Record the content hash in each path's custom_metadata (one more Vault write per change). */
  contentHashInMetadata: boolean;
  workers: number;
  /** The operations HTTP server: /metrics, /healthz, /readyz, /health, / (dashboard). */
  http: {
    /** 0 = an ephemeral port (tests). */
    port: number;
    bindAddress: string;
    tls?: { certFile: string; keyFile: string };
    /** When set, every endpoint but the probes wants `Authorization: Bearer <the file's content>`. */
    bearerTokenFile?: string;
  };
  leaderElection: {
    enabled: boolean;
    namespace: string;
    /** The Lease name; with shards > 1, `<leaseName>-shard-<i>`. */
    leaseName: string;
    identity: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
    /**
     * A Lease taken over from another holder (not released by it): the new holder waits the old lease
     * duration plus this before it sends anything, so that a request the old holder let through has landed.
     */
    takeoverMarginMs: number;
  };
  /** Namespaces are split into this many shards; a replica works on at most one (leader election per shard). */
  shards: number;
  /**
   * With shards > 1: how the shard holders split the Vault budget. `shared`: one budget for the installation,
   * lent where it is needed (src/budget/); `static`: rate/shards each.
   */
  budget: {
    sharing: 'shared' | 'static';
    /** Requests per second an idle shard keeps. */
    floorRate: number;
    /** How often each holder publishes its demand and rebalances. */
    periodMs: number;
  };
  /** Every managed source is re-queued this often; the heartbeat of /health is stale after 3x. */
  resyncIntervalMs: number;
  logLevel: string;
  /** Where the operator keeps its own objects (the hash-key Secret). */
  operatorNamespace: string;
  hashKeySecret: string;
  /** `secret/{namespace}/`: where a namespace may write by default; undefined = anywhere in the KV mounts. */
  tenantPathTemplate?: string;
  deletePolicy: 'all-versions' | 'latest-version';
  /** How long cleanup on deletion retries against a failing Vault before the finalizer is released anyway. */
  cleanupTimeoutMs: number;
  /** DRY_RUN: plan continuously (log, metric, VaultSync condition Planned) instead of writing to Vault. */
  dryRun: boolean;
}

/**
 * Secrets per source: the default and the highest value accepted, from what one source costs
 * (bench/source-size.ts; PERFORMANCE.md "Secrets per source"). Deciding a reconcile of 1,000 Secrets takes
 * ~0.25 s of CPU and ~15 MiB of heap; its VaultSync status is ~145 KiB with 35-character paths and ~1.1 MiB
 * with the longest paths the grammar allows while every write is intended, under etcd's 1.5 MiB per object.
 * Above 5,000 even short paths no longer fit. Reads of Secrets are bounded elsewhere: only cached ones are read.
 */
export const DEFAULT_MAX_SECRETS_PER_SOURCE = 1000;
export const MAX_SECRETS_PER_SOURCE_LIMIT = 5000;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * One setting: its flag (`--vault-addr`) and environment variable (`VAULT_ADDR`) are derived from one
 * name, so the two spellings never disagree. Flags win over the environment.
 */
const SETTINGS = {
  'vault-addr': 'Vault address, e.g. https://vault.example:8200',
  'vault-auth-method': 'token | kubernetes | approle (default: token when VAULT_TOKEN is set, else kubernetes)',
  'vault-token': 'a Vault token (auth method token)',
  'vault-kubernetes-role': 'Vault role for Kubernetes auth',
  'vault-kubernetes-mount': 'mount path of the Kubernetes auth method (default kubernetes)',
  'vault-kubernetes-token-path': 'service-account token file (default /var/run/secrets/kubernetes.io/serviceaccount/token)',
  'vault-approle-role-id': 'AppRole role_id',
  'vault-approle-secret-id-file': 'file holding the AppRole secret_id',
  'vault-approle-mount': 'mount path of the AppRole auth method (default approle)',
  'vault-namespace': 'Vault Enterprise / OpenBao namespace (X-Vault-Namespace)',
  'vault-cacert': 'PEM file with the CA bundle that signed Vault\'s certificate',
  'vault-timeout': 'timeout of one Vault request (default 10s)',
  'vault-kv-mounts': 'comma-separated KV mounts the operator may write to (default secret)',
  'vault-rate-limit': 'Vault requests per second, every call included (default 10)',
  'vault-rate-burst': 'requests that may start at once (default 20)',
  'vault-batch-size': 'operations grouped into one batch (default 5)',
  'vault-marks-max-wait': 'other Vault operations a waiting ownership-marks write lets go first before it is served like data (default 100, about 10 s at 10/s)',
  'vault-drift-scan-max-bytes': 'drift checks of every source below one root share one recursive scan a period (OpenBao\'s SCAN, the `scan` capability); the most bytes one scan\'s answer may have, past it that root is checked folder by folder (default 16Mi; 0 = no scans)',
  'vault-max-retries': 'retries of one Vault request on connection errors, timeouts, 5xx and 429, with exponential backoff (default 5; 0 = none)',
  'vault-retry-max-delay': 'longest backoff between two retries (default 30s; a longer Retry-After from Vault is honoured up to 2m)',
  'large-secret-threshold': 'payload size above which a secret counts as large (default 1Mi)',
  'max-secret-size': 'payload size above which a write is refused (default 32Mi, Vault\'s default max request size)',
  'max-secrets-per-source': `Secrets one source may sync, listed in vault-sync.io/secrets or used by its pod template; more is refused with an Event (default ${DEFAULT_MAX_SECRETS_PER_SOURCE}, at most ${MAX_SECRETS_PER_SOURCE_LIMIT}: each is a path recorded in the source's VaultSync status)`,
  'max-keys-per-path': `keys one Vault path may hold (one write); more is refused with an Event before sending (default: by the server detected at start: ${KEYS_PER_PATH_DEFAULTS.openbao} on OpenBao, whose listener refuses more than 1,000 JSON strings by default; ${KEYS_PER_PATH_DEFAULTS.vault.toLocaleString('en-US')} on HashiCorp Vault, 10,000 entries per JSON object; 1 to ${MAX_KEYS_PER_PATH_LIMIT.toLocaleString('en-US')}). Raise it with the server's own limit`,
  'watch-namespaces': 'comma-separated namespaces to watch (default: all)',
  'cluster-name': 'this cluster\'s name, recorded in Vault custom_metadata (default: default)',
  'content-hash-in-metadata': 'true: also record the content hash in each path\'s custom_metadata, costing a second Vault write per change; false: one write per change, drift detected by KV version alone (default false; docs/adr/0003)',
  'workers': 'sources reconciled concurrently (default 4)',
  'metrics-port': 'port of the HTTP server with /metrics, /healthz, /readyz, /health and the dashboard (default 8080; 0 = any free port)',
  'metrics-bind-address': 'address the HTTP server listens on (default 127.0.0.1, loopback only; the Helm chart sets 0.0.0.0 behind its NetworkPolicy)',
  'metrics-tls-cert-file': 'PEM certificate: serve HTTPS instead of HTTP (with --metrics-tls-key-file; re-read when it changes)',
  'metrics-tls-key-file': 'PEM private key of --metrics-tls-cert-file',
  'metrics-bearer-token-file': 'file holding a token that /metrics, /health and the dashboard require as "Authorization: Bearer"; probes stay open',
  'leader-elect': 'true: only the holder of a coordination.k8s.io Lease syncs; other replicas stand by (default false)',
  'leader-election-namespace': 'namespace of the Lease (default: the operator namespace)',
  'leader-election-id': 'name of the Lease (default vault-sync-operator)',
  'leader-election-lease-duration': 'how long a standby waits after the last renewal before it takes over (default 15s)',
  'leader-election-renew-deadline': 'the leader stops syncing when it could not renew for this long (default 10s)',
  'leader-election-retry-period': 'how often candidates try to acquire and the leader renews (default 2s)',
  'leader-election-takeover-margin': 'a Lease taken over from a holder that did not release it: wait its lease duration plus this before sending anything (default 2s)',
  'shards': 'split namespaces into this many shards, one Lease each; each replica syncs at most one shard (default 1; > 1 needs --leader-elect)',
  'vault-budget-sharing': 'with --shards > 1: shared (one Vault budget for the installation, lent to the shards with queued work through the Lease <leader-election-id>-budget) | static (rate/shards each) (default shared)',
  'vault-budget-floor': 'with a shared budget: requests per second an idle shard keeps (default 0.2)',
  'vault-budget-period': 'with a shared budget: how often each shard holder publishes its queued work and rebalances (default 1s; shorter than --leader-election-renew-deadline)',
  'resync-interval': 're-check every synced source this often (no Vault call when nothing changed); /health reports a stale heartbeat after 3x (default 10m)',
  'log-level': 'trace | debug | info | warn | error (default info)',
  'operator-namespace': 'namespace of the operator\'s own objects (default: the pod\'s namespace, else vault-sync-system)',
  'hash-key-secret': 'Secret (in the operator namespace) holding the HMAC key of content hashes; created if absent (default vault-sync-operator-hash-key)',
  'tenant-path-template': 'prefix a namespace may write under; {namespace} is replaced; "none" lifts the restriction (default secret/{namespace}/)',
  'delete-policy': 'on source deletion: all-versions (delete the metadata and every version) | latest-version (soft-delete the latest)',
  'cleanup-timeout': 'how long deletion retries against a failing Vault before the finalizer is released and the data left behind (default 10m)',
  'dry-run': 'true: write nothing to Vault and add no finalizer; log each source\'s plan, report it as the VaultSync condition Planned and the metric vault_sync_planned_operations (default false)',
} as const;
type SettingName = keyof typeof SETTINGS;

export function envName(setting: string): string {
  return setting.toUpperCase().replace(/-/g, '_');
}

export function usage(): string {
  return [
    'Usage: vault-sync-operator [--setting=value ...]   (each setting also reads the environment variable shown)',
    '',
    ...Object.entries(SETTINGS).map(([name, help]) => `  --${name.padEnd(30)} ${envName(name).padEnd(30)} ${help}`),
    '',
    'The Kubernetes connection comes from KUBECONFIG / ~/.kube/config, or in-cluster service-account config.',
  ].join('\n');
}

function parseFlags(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}" (settings are --name=value)`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (!(name in SETTINGS)) throw new ConfigError(`unknown setting --${name} (see --help)`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1e3, ki: 1024, m: 1e6, mi: 1024 ** 2, g: 1e9, gi: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  return match ? Number(match[1]) * DURATION_UNITS[match[2]] : undefined;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const flags = parseFlags(argv);
  const get = (name: SettingName): string | undefined => {
    const value = flags.get(name) ?? env[envName(name)];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const where = (name: SettingName) => `--${name} / ${envName(name)}`;
  const fail = (name: SettingName, problem: string): never => {
    throw new ConfigError(`${where(name)}: ${problem}`);
  };
  const number = (name: SettingName, fallback: number, check: (n: number) => boolean, expectation: string): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || !check(n)) fail(name, `must be ${expectation}, got "${raw}"`);
    return n;
  };
  const size = (name: SettingName, fallback: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const match = /^(\d+)\s*([kKmMgG]i?)?$/.exec(raw);
    if (!match) fail(name, `must be a size like 1048576, 512Ki or 1Mi, got "${raw}"`);
    return Number(match![1]) * SIZE_UNITS[(match![2] ?? '').toLowerCase()];
  };
  const list = (name: SettingName, fallback: string[]): string[] => {
    const raw = get(name);
    return raw === undefined ? fallback : raw.split(',').map((s) => s.trim()).filter(Boolean);
  };
  const readable = (name: SettingName, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      return fail(name, `cannot read "${path}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };

  const addr = get('vault-addr') ?? fail('vault-addr', 'is required');
  let url: URL | undefined;
  try {
    url = new URL(addr);
  } catch {
    fail('vault-addr', `"${addr}" is not a URL (expected http(s)://host:port)`);
  }
  if (url!.protocol !== 'http:' && url!.protocol !== 'https:') fail('vault-addr', `"${addr}" must start with http:// or https://`);

  const token = get('vault-token');
  const method = get('vault-auth-method') ?? (token ? 'token' : 'kubernetes');
  let auth: VaultAuthConfig;
  if (method === 'token') {
    auth = { method, token: token ?? fail('vault-token', 'is required with auth method token') };
  } else if (method === 'kubernetes') {
    const tokenPath = get('vault-kubernetes-token-path') ?? '/var/run/secrets/kubernetes.io/serviceaccount/token';
    auth = {
      method,
      role: get('vault-kubernetes-role') ?? fail('vault-kubernetes-role', 'is required with auth method kubernetes'),
      mount: get('vault-kubernetes-mount') ?? 'kubernetes',
      tokenPath,
    };
    readable('vault-kubernetes-token-path', tokenPath);
  } else if (method === 'approle') {
    const secretIdPath = get('vault-approle-secret-id-file') ?? fail('vault-approle-secret-id-file', 'is required with auth method approle');
    readable('vault-approle-secret-id-file', secretIdPath);
    auth = {
      method,
      roleId: get('vault-approle-role-id') ?? fail('vault-approle-role-id', 'is required with auth method approle'),
      secretIdPath,
      mount: get('vault-approle-mount') ?? 'approle',
    };
  } else {
    return fail('vault-auth-method', `must be token, kubernetes or approle, got "${method}"`);
  }

  const caPath = get('vault-cacert');
  const timeout = get('vault-timeout');
  const timeoutMs = timeout === undefined ? 10_000 : parseDurationMs(timeout) ?? fail('vault-timeout', `must be a duration like 10s, got "${timeout}"`);
  if (timeoutMs <= 0) fail('vault-timeout', 'must be positive');
  const largeSecretThresholdBytes = size('large-secret-threshold', 1024 ** 2);
  const maxSecretBytes = size('max-secret-size', 32 * 1024 ** 2);
  const driftScanMaxBytes = size('vault-drift-scan-max-bytes', DRIFT_SCAN_MAX_BYTES_DEFAULT);
  if (driftScanMaxBytes > DRIFT_SCAN_MAX_BYTES_LIMIT) fail('vault-drift-scan-max-bytes', `must be at most ${DRIFT_SCAN_MAX_BYTES_LIMIT / 1024 ** 2}Mi`);
  if (maxSecretBytes < largeSecretThresholdBytes) fail('max-secret-size', 'must not be below --large-secret-threshold');
  const logLevel = get('log-level') ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) fail('log-level', `unknown level "${logLevel}"`);

  const deletePolicy = get('delete-policy') ?? 'all-versions';
  if (deletePolicy !== 'all-versions' && deletePolicy !== 'latest-version') fail('delete-policy', `must be all-versions or latest-version, got "${deletePolicy}"`);
  const cleanupTimeout = get('cleanup-timeout') ?? '10m';
  const cleanupTimeoutMs = parseDurationMs(cleanupTimeout) ?? fail('cleanup-timeout', `must be a duration like 10m, got "${cleanupTimeout}"`);
  const template = get('tenant-path-template') ?? 'secret/{namespace}/';
  if (template !== 'none' && !template.includes('{namespace}')) fail('tenant-path-template', `must contain {namespace} (or be "none"), got "${template}"`);

  // --- operations: HTTP server, leader election, sharding ---
  const bool = (name: SettingName, fallback: boolean): boolean => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    return fail(name, `must be true or false, got "${raw}"`);
  };
  const duration = (name: SettingName, fallback: string): number => {
    const raw = get(name) ?? fallback;
    const ms = parseDurationMs(raw) ?? fail(name, `must be a duration like ${fallback}, got "${raw}"`);
    if (ms <= 0) fail(name, 'must be positive');
    return ms;
  };
  const certFile = get('metrics-tls-cert-file');
  const keyFile = get('metrics-tls-key-file');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    fail(certFile === undefined ? 'metrics-tls-cert-file' : 'metrics-tls-key-file', 'is required with --metrics-tls-cert-file / --metrics-tls-key-file (set both or neither)');
  }
  if (certFile !== undefined) readable('metrics-tls-cert-file', certFile);
  if (keyFile !== undefined) readable('metrics-tls-key-file', keyFile);
  const bearerTokenFile = get('metrics-bearer-token-file');
  if (bearerTokenFile !== undefined) {
    // Checked here to fail fast; the server checks again on every request (the file may change).
    const held = tokenFromFile(readable('metrics-bearer-token-file', bearerTokenFile));
    if (!held.ok) fail('metrics-bearer-token-file', `"${bearerTokenFile}" ${held.reason}`);
  }
  const leaderElect = bool('leader-elect', false);
  const leaseDurationMs = duration('leader-election-lease-duration', '15s');
  const renewDeadlineMs = duration('leader-election-renew-deadline', '10s');
  const retryPeriodMs = duration('leader-election-retry-period', '2s');
  const takeoverMarginMs = duration('leader-election-takeover-margin', '2s');
  if (renewDeadlineMs >= leaseDurationMs) fail('leader-election-renew-deadline', 'must be shorter than --leader-election-lease-duration');
  if (retryPeriodMs >= renewDeadlineMs) fail('leader-election-retry-period', 'must be shorter than --leader-election-renew-deadline');
  const shards = number('shards', 1, (n) => Number.isInteger(n) && n >= 1 && n <= 256, 'a whole number from 1 to 256');
  if (shards > 1 && !leaderElect) fail('shards', 'more than one shard needs --leader-elect=true (each shard is a Lease)');
  const sharing = get('vault-budget-sharing') ?? 'shared';
  if (sharing !== 'shared' && sharing !== 'static') fail('vault-budget-sharing', `must be shared or static, got "${sharing}"`);
  const floorRate = number('vault-budget-floor', 0.2, (n) => n >= 0 && n <= 1e6, 'a number of requests per second from 0');
  const budgetPeriodMs = duration('vault-budget-period', '1s');
  if (shards > 1 && sharing === 'shared' && budgetPeriodMs >= renewDeadlineMs) fail('vault-budget-period', 'must be shorter than --leader-election-renew-deadline (a share is trusted for that long after its last renewal)');
  const leaseName = get('leader-election-id') ?? 'vault-sync-operator';
  if (!/^[a-z0-9]([-a-z0-9.]{0,200}[a-z0-9])?$/.test(leaseName)) fail('leader-election-id', `"${leaseName}" is not a valid object name`);
  const http = {
    port: number('metrics-port', 8080, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'a port number from 0 to 65535'),
    bindAddress: get('metrics-bind-address') ?? '127.0.0.1',
    tls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    bearerTokenFile,
  };
  const leaderElection = {
    enabled: leaderElect,
    namespace: get('leader-election-namespace') ?? get('operator-namespace') ?? podNamespace() ?? 'vault-sync-system',
    leaseName,
    identity: env.POD_NAME ?? `${hostname()}_${randomBytes(3).toString('hex')}`,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    takeoverMarginMs,
  };
  const resyncIntervalMs = duration('resync-interval', '10m');
  const rateLimit = {
    rate: number('vault-rate-limit', 10, (n) => n > 0, 'a number of requests per second above 0'),
    burst: number('vault-rate-burst', 20, (n) => Number.isInteger(n) && n >= 1, 'a whole number >= 1'),
  };
  // Each shard holder needs one whole request of burst to send anything at all.
  if (shards > 1 && sharing === 'shared' && rateLimit.burst < shards) fail('vault-rate-burst', `must be at least --shards (${shards}) with a shared budget: each shard holder needs one request of burst`);

  return {
    vault: {
      addr: addr.replace(/\/+$/, ''),
      auth,
      namespace: get('vault-namespace'),
      caCert: caPath === undefined ? undefined : readable('vault-cacert', caPath),
      timeoutMs,
      kvMounts: list('vault-kv-mounts', ['secret']),
    },
    rateLimit,
    batchSize: number('vault-batch-size', 5, (n) => Number.isInteger(n) && n >= 1, 'a whole number >= 1'),
    marksMaxWaitRequests: number('vault-marks-max-wait', MARKS_MAX_WAIT_DEFAULT, (n) => Number.isInteger(n) && n >= 0 && n <= 1_000_000, 'a whole number from 0 to 1000000'),
    vaultRetry: {
      retries: number('vault-max-retries', 5, (n) => Number.isInteger(n) && n >= 0 && n <= 100, 'a whole number from 0 to 100'),
      maxDelayMs: duration('vault-retry-max-delay', '30s'),
    },
    largeSecretThresholdBytes,
    maxSecretBytes,
    driftScanMaxBytes,
    maxKeysPerPath: get('max-keys-per-path') === undefined ? undefined : number('max-keys-per-path', 0, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_KEYS_PER_PATH_LIMIT, `a whole number from 1 to ${MAX_KEYS_PER_PATH_LIMIT}`),
    maxSecretsPerSource: number('max-secrets-per-source', DEFAULT_MAX_SECRETS_PER_SOURCE, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_SECRETS_PER_SOURCE_LIMIT, `a whole number from 1 to ${MAX_SECRETS_PER_SOURCE_LIMIT}`),
    watchNamespaces: list('watch-namespaces', []),
    clusterName: get('cluster-name') ?? 'default',
    contentHashInMetadata: bool('content-hash-in-metadata', false),
    workers: number('workers', 4, (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'a whole number from 1 to 64'),
    http,
    leaderElection,
    shards,
    budget: { sharing: sharing as Config['budget']['sharing'], floorRate, periodMs: budgetPeriodMs },
    resyncIntervalMs,
    logLevel,
    operatorNamespace: get('operator-namespace') ?? podNamespace() ?? 'vault-sync-system',
    hashKeySecret: get('hash-key-secret') ?? 'vault-sync-operator-hash-key',
    tenantPathTemplate: template === 'none' ? undefined : template,
    deletePolicy: deletePolicy as Config['deletePolicy'],
    cleanupTimeoutMs,
    dryRun: bool('dry-run', false),
  };
}

function podNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
