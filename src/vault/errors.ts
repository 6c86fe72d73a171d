import { isServerSizeRefusal } from './server-limits.js';

/**
 * The one error type for Vault calls. Its message carries the operation, path and status only:
 * SDK and socket errors can hold the request body, which holds secret values, so they are never wrapped,
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

  /**
   * An earlier attempt of this request was sent and got no answer (a reset, a timeout): a write may have
   * landed although this, the last attempt's, answer says otherwise (a 503, a check-and-set mismatch).
   */
  earlierAttemptUnanswered = false;

  /** Transient failures worth retrying with backoff; everything else needs a change somewhere. */
  get retryable(): boolean {
    return isRetryableKind(this.kind);
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
  | 'too-large' // above the configured maximum; 413 from Vault, or a 400 refusing the body's size or complexity
  | 'stopped' // the operator is shutting down
  | 'fenced' // not sent: this replica does not hold its Lease now (another may write)
  | 'tls' // certificate not trusted / wrong name / not TLS: a configuration problem, not retried
  | 'outside-scope' // refused by the port before sending: the path is outside the scope the request carries (a caller bug)
  | 'unknown';

export function isRetryableKind(kind: VaultErrorKind): boolean {
  return kind === 'connection' || kind === 'timeout' || kind === 'server' || kind === 'rate-limited';
}

/**
 * What the HTTP transport (transport.ts) rejects with: the status, Retry-After and Vault's own error
 * strings of a response, or the socket error code when no response came. Never the request.
 */
export class VaultTransportError extends Error {
  override readonly name = 'VaultTransportError';
  constructor(
    readonly statusCode: number | undefined,
    /** Node's error code (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...) when no response arrived. */
    readonly code: string | undefined,
    readonly vaultErrors: readonly string[] = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(statusCode === undefined ? `no response (${code ?? 'ERROR'})` : `HTTP ${statusCode}`);
  }
}

// Vault's error strings describe the request ("permission denied", "check-and-set parameter did not match"),
// not its body. Keep the first one if it is short and plain; anything else is dropped, not trimmed.
const safeVaultMessage = /^[\w\s.,:;'"()/\-=<>*[\]]*$/;

function plainVaultMessage(errors: readonly unknown[] | undefined): string {
  const first = errors?.[0];
  if (typeof first !== 'string') return '';
  const text = first.replace(/\s+/g, ' ').trim(); // "1 error occurred:\n\t* permission denied\n\n"
  return text.length > 0 && text.length < 300 && safeVaultMessage.test(text) ? `: ${text}` : '';
}

export function kindOfStatus(status: number, vaultSays = ''): VaultErrorKind {
  return status === 429 ? 'rate-limited'
    : status === 413 ? 'too-large'
    : status >= 500 ? 'server'
    : status === 403 ? 'forbidden'
    : status === 404 ? 'not-found'
    : status === 400 && /check-and-set/.test(vaultSays) ? 'cas-mismatch'
    : status === 400 && isServerSizeRefusal(vaultSays) ? 'too-large'
    : status === 400 ? 'bad-request'
    : 'unknown';
}

/** Turns whatever the transport, node-vault or Bottleneck threw into a VaultRequestError without copying the request. */
export function toVaultError(operation: string, target: string, error: unknown): VaultRequestError {
  if (error instanceof VaultRequestError) return error;
  if (error instanceof VaultTransportError) {
    // An answer longer than the caller's cap was cut off: the same request would be cut again, so never retried.
    if (error.code === 'ERESPONSETOOLARGE') return new VaultRequestError(operation, target, error.statusCode, 'too-large', 'the answer was longer than the bytes this request may read; not read');
    if (error.statusCode === undefined) {
      const code = error.code ?? 'ERROR';
      // A request path the transport refused to send: no retry can fix it.
      if (code === 'ENONCANONICALPATH') return new VaultRequestError(operation, target, undefined, 'bad-request', 'the request path is not in canonical form; not sent');
      const kind: VaultErrorKind = code === 'ETIMEDOUT' || code === 'ECONNABORTED' ? 'timeout' : isTlsCode(code) ? 'tls' : 'connection';
      const hint = kind === 'tls' ? '; check --vault-addr and --vault-cacert' : '';
      return new VaultRequestError(operation, target, undefined, kind, `no response (${code})${hint}`);
    }
    const vaultSays = plainVaultMessage(error.vaultErrors);
    const kind = kindOfStatus(error.statusCode, vaultSays);
    return new VaultRequestError(operation, target, error.statusCode, kind, answerDetail(error.statusCode, vaultSays, kind), error.retryAfterSeconds);
  }
  // Shapes of other clients (node-vault's own ApiResponseError, axios); only status and code are read.
  const e = error as { code?: string; response?: { statusCode?: number; status?: number; body?: { errors?: unknown[] }; headers?: Record<string, string> } };
  const status = e?.response?.statusCode ?? e?.response?.status;
  if (typeof status !== 'number') {
    const code = typeof e?.code === 'string' && /^[A-Z_]+$/.test(e.code) ? e.code : 'ERROR';
    const kind: VaultErrorKind = code === 'ECONNABORTED' || code === 'ETIMEDOUT' ? 'timeout' : 'connection';
    return new VaultRequestError(operation, target, undefined, kind, `no response (${code})`);
  }
  const vaultSays = plainVaultMessage(e.response?.body?.errors);
  const retryAfter = parseRetryAfter(e.response?.headers?.['retry-after']);
  const kind = kindOfStatus(status, vaultSays);
  return new VaultRequestError(operation, target, status, kind, answerDetail(status, vaultSays, kind), retryAfter);
}

/**
 * `HTTP 400: <Vault's reason>`; a refusal for size or complexity also says what can change it, since a retry
 * of the same write cannot.
 */
function answerDetail(status: number, vaultSays: string, kind: VaultErrorKind): string {
  const hint = kind === 'too-large' ? ' (a server limit on one request: fewer or smaller keys at this path, or a higher limit in the server listener config and --max-keys-per-path)' : '';
  return `HTTP ${status}${vaultSays}${hint}`;
}

/** Node's TLS verification and handshake failures: retrying cannot fix them. */
export function isTlsCode(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|^ERR_TLS_|^ERR_SSL_|^EPROTO$/.test(code);
}

/** Retry-After as seconds (delta-seconds or an HTTP date); undefined when absent or unusable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text.trim())) {
    const seconds = Number(text);
    return seconds > 0 ? seconds : undefined;
  }
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  const seconds = (at - now) / 1000;
  return seconds > 0 ? seconds : undefined;
}
