import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import { parseRetryAfter, VaultTransportError } from './errors.js';
import { VaultPathGrammar } from './path-grammar.js';

/**
 * The HTTP transport under node-vault, plugged in through node-vault's `request-promise` option (node-vault
 * calls `config['request-promise'].defaults(rpDefaults)` and then the returned function once per request).
 *
 * Why our own transport instead of node-vault's built-in axios instance:
 *  - node-vault turns an error response into `{ statusCode, body }` and drops the headers, so a 429's
 *    Retry-After would be lost; here every non-2xx response becomes a VaultTransportError that keeps the
 *    status, Retry-After and Vault's error strings, and nothing of the request;
 *  - axios errors carry the request config, body included (secret values): they must never exist;
 *  - large payloads are streamed (see `streamBody`) instead of being serialized into one string and copied
 *    into one buffer;
 *  - one keep-alive agent per client, with the CA bundle, and one deadline per request.
 */
export interface TransportConfig {
  /** Vault's address (`https://vault:8200`, as configured): scheme, host and port are taken from it once. */
  address: string;
  /** PEM CA bundle that signed Vault's certificate. */
  caCert?: string;
  /** Deadline of one request, from sending to the last byte of the response. */
  timeoutMs: number;
}

/** What node-vault passes per request (request-promise's option names). */
export interface TransportRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  /** The JSON body (request-promise's `json` option); `true` when there is none. */
  json?: unknown;
  timeout?: number;
  /** Ours, passed through node-vault's requestOptions: serialize the body piece by piece. */
  streamBody?: boolean;
  /** Ours: send no X-Vault-Token (logins: a revoked token must not get in the way of getting a new one). */
  noToken?: boolean;
  /** Ours: a KV LIST, sent as GET with the fixed query `?list=true` (never built from input). */
  listQuery?: boolean;
  /** Ours: `sys/health` with the fixed query that makes a standby answer 200 like the active node. */
  healthQuery?: boolean;
  /** Ours: with listQuery, one page of a detailed listing (`&limit=…&after=…`); `after` is a canonical leaf name. */
  listPage?: ListPage;
  /** Ours: a recursive SCAN (OpenBao), sent as GET with the fixed query `?scan=true` (never built from input). */
  scanQuery?: boolean;
  /** Ours: read at most this many bytes of the answer (an unpaged SCAN); past it the request is aborted. */
  maxResponseBytes?: number;
  /** Ours: called once when the request has been written to the socket (or failed before that). */
  onSent?: () => void;
}

export interface TransportResponse {
  statusCode: number;
  body: any;
  headers: http.IncomingHttpHeaders;
  request: { path: string };
}

export type Send = (request: TransportRequest) => Promise<TransportResponse>;

/** Any node that serves requests answers 200 with its health (a standby forwards them to the active node). */
const HEALTH_QUERY = '?standbyok=true&perfstandbyok=true';

/** Bigger than any Vault error document; only a read of a large secret gets near it. */
const MAX_RESPONSE_BYTES = 512 * 1024 * 1024;
/** Slice size when streaming a long string value. */
const STREAM_SLICE_CHARS = 64 * 1024;

/**
 * Why a request path (below the address) is not in canonical form, or undefined when it is: `/`-separated
 * segments of the path grammar's characters only, no `.`/`..` segment, no empty segment, no `%`, `\`, `?`
 * or `#`. Vault paths are built by path.ts kvApiPath and always pass; this is the last line of defence.
 */
export function requestPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'does not start with "/"';
  const segments = path.slice(1).split('/');
  if (segments.some((s) => s === '')) return 'has an empty segment';
  if (segments.some((s) => s === '.' || s === '..')) return 'has a "." or ".." segment';
  if (!segments.every((s) => REQUEST_SEGMENT.test(s))) return 'has a character outside [A-Za-z0-9._-] (no %, \\, ?, # or non-ASCII)';
  return undefined;
}
const REQUEST_SEGMENT = new RegExp(VaultPathGrammar.segmentPattern);

/** A page of a KV LIST: how many names, and the name to start after. */
export interface ListPage {
  limit: number;
  after?: string;
}

/** The fixed page query, or undefined when its values are not a whole limit and a canonical name. */
export function pageQuery(page: ListPage): string | undefined {
  if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > 10_000) return undefined;
  if (page.after !== undefined && !REQUEST_SEGMENT.test(page.after.endsWith('/') ? page.after.slice(0, -1) : page.after)) return undefined;
  return `&limit=${page.limit}${page.after !== undefined ? `&after=${encodeURIComponent(page.after)}` : ''}`;
}

export class VaultTransport {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent: https.Agent;
  private readonly secure: boolean;
  private readonly hostname: string;
  private readonly port: number;
  /** The address as node-vault prefixes it to every path (one trailing `/` removed). */
  private readonly uriPrefix: string;
  /** A path prefix of the address itself (Vault behind a reverse proxy at /vault); usually empty. */
  private readonly basePath: string;

  constructor(private readonly config: TransportConfig) {
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, ...(config.caCert ? { ca: config.caCert } : {}) });
    // Parsed once, at start, from configuration; request paths are never given to a URL parser.
    const address = new URL(config.address);
    if (address.protocol !== 'http:' && address.protocol !== 'https:') throw new RangeError(`the Vault address must be http:// or https://, got ${address.protocol}`);
    this.secure = address.protocol === 'https:';
    this.hostname = address.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = address.port ? Number(address.port) : this.secure ? 443 : 80;
    this.uriPrefix = config.address.replace(/\/$/, '');
    this.basePath = address.pathname.replace(/\/+$/, '');
    if (this.basePath !== '' && requestPathProblem(this.basePath)) throw new RangeError('the Vault address has a path that is not in canonical form');
  }

  /** node-vault's `request-promise` option. */
  asRequestPromise(): { defaults(defaults: unknown): Send } {
    return { defaults: () => (request) => this.send(request) };
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  send(request: TransportRequest): Promise<TransportResponse> {
    return new Promise<TransportResponse>((resolve, reject) => {
      // The path is sent verbatim: no URL parser may rewrite it (`\` into `/`, `..` collapsed, `%2e` decoded).
      const below = request.uri.startsWith(this.uriPrefix + '/') ? request.uri.slice(this.uriPrefix.length) : undefined;
      if (below === undefined || requestPathProblem(below) !== undefined) {
        reject(new VaultTransportError(undefined, 'ENONCANONICALPATH'));
        return;
      }
      const page = request.listQuery && request.listPage ? pageQuery(request.listPage) : '';
      if (page === undefined) {
        reject(new VaultTransportError(undefined, 'ENONCANONICALPATH'));
        return;
      }
      const path = this.basePath + below + (request.listQuery ? `?list=true${page}` : request.scanQuery ? '?scan=true' : request.healthQuery ? HEALTH_QUERY : '');
      const maxBytes = responseCap(request.maxResponseBytes);
      const secure = this.secure;
      const hasBody = request.json !== undefined && typeof request.json === 'object' && request.json !== null;
      const streamed = hasBody && request.streamBody === true;
      const body = hasBody && !streamed ? Buffer.from([...jsonPieces(request.json)].join('')) : undefined;
      const headers: Record<string, string | number> = { ...request.headers, accept: 'application/json' };
      if (request.noToken) delete headers['X-Vault-Token'];
      if (hasBody) headers['content-type'] = 'application/json';
      if (body) headers['content-length'] = body.length;
      if (streamed) headers['transfer-encoding'] = 'chunked';

      let settled = false;
      let sentReported = false;
      const reportSent = () => {
        if (sentReported) return;
        sentReported = true;
        request.onSent?.();
      };
      const fail = (error: VaultTransportError) => {
        reportSent();
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        reject(error);
      };
      const req = (secure ? https : http).request({ hostname: this.hostname, port: this.port, path, method: request.method, headers, agent: secure ? this.httpsAgent : this.httpAgent });
      req.on('finish', reportSent); // the whole request is with the kernel
      const timeoutMs = request.timeout ?? this.config.timeoutMs;
      // One deadline for the whole exchange (a socket idle timeout would let a trickling response run forever).
      const deadline = setTimeout(() => {
        fail(new VaultTransportError(undefined, 'ETIMEDOUT'));
        req.destroy();
      }, timeoutMs);
      // Only the code leaves: Node's error message may name the host, never the body, but keep it uniform.
      req.on('error', (error: NodeJS.ErrnoException) => fail(new VaultTransportError(undefined, safeCode(error.code))));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            fail(new VaultTransportError(res.statusCode, 'ERESPONSETOOLARGE'));
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (error: NodeJS.ErrnoException) => fail(new VaultTransportError(undefined, safeCode(error.code))));
        res.on('aborted', () => fail(new VaultTransportError(undefined, 'ECONNRESET')));
        res.on('end', () => {
          if (settled) return;
          const status = res.statusCode ?? 0;
          const text = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
          let parsed: any;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined; // a proxy's HTML error page, say: the status says enough
          }
          if (status === 200 || status === 204) {
            settled = true;
            clearTimeout(deadline);
            resolve({ statusCode: status, body: parsed, headers: res.headers, request: { path } });
            return;
          }
          // KV v2 answers an endpoint it does not have with a 404 whose only text is a warning ("Invalid path for a
          // versioned K/V secrets engine"): kept as its error, so that it can be told from an empty folder's 404.
          const strings = (list: unknown): string[] => (Array.isArray(list) ? list.filter((e: unknown): e is string => typeof e === 'string') : []);
          const errors = strings(parsed?.errors).length > 0 ? strings(parsed?.errors) : strings(parsed?.warnings);
          fail(new VaultTransportError(status, undefined, errors, parseRetryAfter(res.headers['retry-after'])));
        });
      });

      if (streamed) {
        // A large body is "sent" once its first piece is out: Vault has the request; the rest is upload time.
        streamJson(req, request.json, reportSent).then(
          () => req.end(),
          () => {
            fail(new VaultTransportError(undefined, 'EPIPE'));
            req.destroy();
          },
        );
      } else {
        req.end(body);
      }
    });
  }
}

/** The byte cap of one answer: the caller's, when it is a whole number below the transport's own bound. */
function responseCap(requested: number | undefined): number {
  return requested !== undefined && Number.isSafeInteger(requested) && requested > 0 ? Math.min(requested, MAX_RESPONSE_BYTES) : MAX_RESPONSE_BYTES;
}

function safeCode(code: string | undefined): string {
  return typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'ERROR';
}

/**
 * Writes `value` as JSON to the request piece by piece, honouring backpressure: no string or buffer of the
 * whole body is ever built, long strings go out in slices. Equal to JSON.stringify(value) byte for byte,
 * except that a Map is written as the JSON object of its entries (JSON.stringify writes `{}`).
 */
export async function streamJson(out: NodeJS.WritableStream, value: unknown, onFirstWritten?: () => void): Promise<void> {
  let first = true;
  for (const piece of jsonPieces(value)) {
    const written = first && onFirstWritten ? out.write(piece, () => onFirstWritten()) : out.write(piece);
    first = false;
    if (!written) await once(out as unknown as NodeJS.EventEmitter, 'drain');
  }
}

export function* jsonPieces(value: unknown): Generator<string> {
  if (typeof value === 'string') {
    yield* stringPieces(value);
  } else if (value === null || typeof value !== 'object') {
    yield JSON.stringify(value) ?? 'null';
  } else if (value instanceof Map) {
    // Key-value data keyed by user input travels as a Map: `__proto__` is a key like any other.
    yield* objectPieces(value.entries());
  } else if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ',';
      yield* jsonPieces(value[i] === undefined ? null : value[i]);
    }
    yield ']';
  } else {
    yield* objectPieces(Object.entries(value as Record<string, unknown>));
  }
}

function* objectPieces(entries: Iterable<[unknown, unknown]>): Generator<string> {
  yield '{';
  let first = true;
  for (const [key, item] of entries) {
    if (item === undefined || typeof item === 'function') continue;
    yield `${first ? '' : ','}${JSON.stringify(String(key))}:`;
    first = false;
    yield* jsonPieces(item);
  }
  yield '}';
}

/** A JSON string literal in slices; a slice never ends between the two halves of a surrogate pair. */
function* stringPieces(text: string): Generator<string> {
  if (text.length <= STREAM_SLICE_CHARS) {
    yield JSON.stringify(text);
    return;
  }
  yield '"';
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + STREAM_SLICE_CHARS);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    const quoted = JSON.stringify(text.slice(start, end));
    yield quoted.slice(1, -1);
    start = end;
  }
  yield '"';
}
