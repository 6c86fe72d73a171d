import { KEYS_PER_PATH_DEFAULTS, type VaultServerKind } from '../config.js';

/**
 * Limits the Vault server sets on one request, and which server sets them. Pure: the answer of `sys/health` in,
 * a decision out; src/vault/stack.ts asks once at start and logs the choice.
 *
 * Why it matters: a path's keys travel in one write. OpenBao's listener refuses a JSON body of more than
 * `max_request_json_strings` strings (default 1,000; each key and each string value counts, and so do
 * `data`, `options`, `cas`): "refused JSON input due to high complexity". HashiCorp Vault has no such count;
 * its listener refuses a JSON object of more than `max_json_object_entry_count` entries (default 10,000, in
 * 1.16.25, 1.18.14, 1.19.9, 1.20.3, 1.21 and later). An operator of either may raise the limit in the
 * listener config, so an explicit --max-keys-per-path wins over the default chosen here.
 */

export type { VaultServerKind } from '../config.js';

export interface DetectedServer {
  kind: VaultServerKind;
  /** The version the server reports (bounded, plain characters only); absent when it said none. */
  version?: string;
  /** What told the kind apart, for the start-up log. */
  evidence: string;
}

// The defaults per server and the ceiling are settings' bounds, owned by the config (src/config.ts).
export { KEYS_PER_PATH_DEFAULTS, MAX_KEYS_PER_PATH_LIMIT } from '../config.js';

/** The server's version as it may appear in a log line: `2.7.2`, `1.21.1+ent`, `2.0.0-rc1`; else undefined. */
function plainVersion(value: unknown): string | undefined {
  return typeof value === 'string' && /^\d{1,4}(\.\d{1,4}){0,3}([-+][A-Za-z0-9.+-]{1,40})?$/.test(value) ? value : undefined;
}

/**
 * Pure: OpenBao or HashiCorp Vault, from the answer of the unauthenticated `GET sys/health`:
 *  1. an `enterprise` field: HashiCorp Vault (it reports it, true or false, in every recent release; OpenBao
 *     removed it and never reports it; checked on OpenBao 2.7.2);
 *  2. a version below 2: HashiCorp Vault (OpenBao's first release was 2.0.0);
 *  3. a version of 2 or more without `enterprise`: OpenBao (HashiCorp Vault 2.x reports `enterprise`).
 * Anything else (no version, not an object) is unknown. The version string alone does not tell them apart:
 * both are 2.x now, and the `build_date`/`commit_date` of sys/seal-status was renamed only in OpenBao 2.6.
 */
export function serverOfHealth(answer: unknown): DetectedServer {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) return { kind: 'unknown', evidence: 'sys/health answered no JSON object' };
  const health = answer as Record<string, unknown>;
  const version = plainVersion(health.version);
  const withVersion = version === undefined ? {} : { version };
  if (typeof health.enterprise === 'boolean') return { kind: 'vault', ...withVersion, evidence: 'sys/health reports "enterprise" (HashiCorp Vault only)' };
  if (version === undefined) return { kind: 'unknown', evidence: 'sys/health reports no version' };
  const major = Number(version.split('.')[0]);
  if (major < 2) return { kind: 'vault', version, evidence: 'version below 2 (OpenBao began at 2.0.0)' };
  return { kind: 'openbao', version, evidence: 'version 2 or later without "enterprise" (OpenBao)' };
}

export interface WriteLimits {
  /** Keys one Vault write (one path) may hold; more is refused before sending (TooManyKeys). */
  maxKeysPerPath: number;
  /** Where the number comes from: the setting, or the default of the detected server. */
  basis: 'setting' | `default for ${VaultServerKind}`;
}

/** Pure: the explicit setting wins; else the default of the detected server (unknown: the conservative one). */
export function chooseWriteLimits(explicitMaxKeysPerPath: number | undefined, server: Pick<DetectedServer, 'kind'>): WriteLimits {
  if (explicitMaxKeysPerPath !== undefined) return { maxKeysPerPath: explicitMaxKeysPerPath, basis: 'setting' };
  return { maxKeysPerPath: KEYS_PER_PATH_DEFAULTS[server.kind], basis: `default for ${server.kind}` };
}

/**
 * Pure: a 400 whose reason says the server refused the request for its size or complexity (a listener limit:
 * OpenBao's "refused JSON input due to high complexity…", "request body too large", HashiCorp Vault's JSON
 * limits "…exceeds…"). Such a write fails the same way on every retry: it is terminal, like a 413.
 */
export function isServerSizeRefusal(vaultSays: string): boolean {
  return /high complexity|too large|too many|exceed/i.test(vaultSays);
}
