/**
 * The one error type for Vault calls. Its message carries the operation, path and status only:
 * SDK errors (axios) hold the request body, which holds secret values, so they are never wrapped,
 * logged or kept as `cause`.
 */
export class VaultRequestError extends Error {
  override readonly name = 'VaultRequestError';
  constructor(
    readonly operation: string,
    readonly target: string,
    /** HTTP status, or undefined when no response arrived (connection refused, reset, timeout). */
    readonly statusCode: number | undefined,
    readonly kind: VaultErrorKind,
    detail: string,
    /** Seconds from a Retry-After header, when Vault sent one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`Vault ${operation} ${target} failed: ${detail}`);
  }

  /** Transient failures worth retrying with backoff; everything else needs a change somewhere. */
  get retryable(): boolean {
    return this.kind === 'connection' || this.kind === 'timeout' || this.kind === 'server' || this.kind === 'rate-limited';
  }
}

export type VaultErrorKind =
  | 'connection'
  | 'timeout'
  | 'server' // 5xx
  | 'rate-limited' // 429
  | 'forbidden' // 403: missing policy or an expired token
  | 'not-found'
  | 'cas-mismatch' // the version moved under us: someone else wrote
  | 'bad-request'
  | 'unknown';

const safeVaultMessage = /^[\w\s.,:;'"()/\-=<>]*$/;

/** Turns whatever node-vault/axios threw into a VaultRequestError without copying the request. */
export function toVaultError(operation: string, target: string, error: unknown): VaultRequestError {
  const e = error as { code?: string; response?: { statusCode?: number; body?: { errors?: unknown[] }; headers?: Record<string, string> }; message?: string };
  const status = e?.response?.statusCode;
  if (status === undefined) {
    const code = e?.code ?? 'ERROR';
    const kind: VaultErrorKind = code === 'ECONNABORTED' || code === 'ETIMEDOUT' ? 'timeout' : 'connection';
    return new VaultRequestError(operation, target, undefined, kind, `no response (${code})`);
  }
  // Vault's own error strings describe the request, not its body; keep the first, if it looks plain.
  const first = e.response?.body?.errors?.[0];
  const vaultSays = typeof first === 'string' && first.length < 300 && safeVaultMessage.test(first) ? `: ${first}` : '';
  const kind: VaultErrorKind =
    status === 429 ? 'rate-limited'
    : status >= 500 ? 'server'
    : status === 403 ? 'forbidden'
    : status === 404 ? 'not-found'
    : status === 400 && /check-and-set/.test(vaultSays) ? 'cas-mismatch'
    : status === 400 ? 'bad-request'
    : 'unknown';
  const retryAfter = Number(e.response?.headers?.['retry-after']);
  return new VaultRequestError(operation, target, status, kind, `HTTP ${status}${vaultSays}`, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
}
