import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { bearerCredential, tokenFromFile, tokenMatcher } from './bearer-token.js';
import { EMPTY_PROBLEMS, renderDashboard } from './dashboard.js';
import type { HealthReport } from './health.js';
import type { DashboardProblems } from './problems.js';
import { parseRequestTarget } from './request-target.js';

/**
 * The operations HTTP server: `/metrics` (Prometheus text), `/healthz` (liveness: the process serves, no
 * dependency checked), `/readyz` (caches synced and Vault authenticated, or standing by), `/health` (JSON
 * health document), `/` (dashboard). Optional TLS (certificate re-read when the files change, as
 * cert-manager rotates them) and an optional bearer token for everything except the two probes, which
 * the kubelet calls without credentials.
 */
export interface OpsServerOptions {
  port: number;
  bindAddress: string;
  tls?: { certFile: string; keyFile: string };
  bearerTokenFile?: string;
  registry: Registry;
  health(): Promise<HealthReport>;
  readiness(): { ok: boolean; body: string };
  log: Logger;
  /** What is wrong, for the dashboard: sources not Ready, the last refusals, the request-rate history. */
  problems?(): DashboardProblems;
  /** How often TLS files are checked for changes (default 30 s); the token file is checked on each request. */
  reloadIntervalMs?: number;
}

export interface OpsServer {
  /** e.g. http://127.0.0.1:8080 (the bound address; 0.0.0.0 shown as 127.0.0.1). */
  url: string;
  port: number;
  close(): Promise<void>;
}

const OPEN_PATHS = new Set(['/healthz', '/readyz', '/livez']);

/**
 * Bounds on what one client can make the server hold. Timeouts are checked every second
 * (connectionsCheckingInterval), so a slow client (slowloris) is cut off within about a second of them.
 */
export const SERVER_LIMITS = {
  /** The whole header block must arrive within this (also the limit for a connection that sends nothing). */
  headersTimeout: 10_000,
  /** The whole request, body included. */
  requestTimeout: 30_000,
  /** Longer than Prometheus' idle keep-alive, so scrapes reuse connections. */
  keepAliveTimeout: 65_000,
  connectionsCheckingInterval: 1_000,
  /** Bytes of request line plus headers; more is a 431. */
  maxHeaderSize: 16 * 1024,
  /** HTTP/1.1 without Host is a 400 (RFC 9112). */
  requireHostHeader: true,
} as const;
export const MAX_HEADERS_COUNT = 100;
export const MAX_CONNECTIONS = 256;

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  ERR_HTTP_HEADERS_TIMEOUT: '408 Request Timeout',
};

/** Writes a one-line answer and closes the connection; a client that never reads is cut off after 1 s. */
function refuse(socket: Duplex, status: string): void {
  try {
    const body = `${status.replace(/^\d+ /, '').toLowerCase()}\n`;
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), 1_000).unref();
  } catch {
    socket.destroy();
  }
}

/**
 * What Node's HTTP parser refused (a malformed request line, bad headers, a header block too large, a
 * timeout): answer with a status when the connection can still take one, then close it. Never throws.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  try {
    log.debug({ code: error.code }, 'operations server: refused a malformed or slow request');
    const responding = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (error.code === 'ECONNRESET' || responding || !socket.writable) socket.destroy();
    else refuse(socket, CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request');
  } catch {
    socket.destroy();
  }
}

class FileWatch {
  private version = '';
  private content = '';
  constructor(private readonly path: string) {}
  /**
   * The file's content, re-read when it changed (mtime, size or inode: a Kubernetes Secret volume swaps a
   * symlink, a rotation within one mtime tick changes the size); `changed` says whether it did. Throws when
   * the file cannot be read, and then reads it afresh next time.
   */
  read(): { content: string; changed: boolean } {
    try {
      const stat = statSync(this.path);
      const version = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
      if (version === this.version) return { content: this.content, changed: false };
      this.content = readFileSync(this.path, 'utf8');
      this.version = version;
      return { content: this.content, changed: true };
    } catch (error) {
      this.version = '';
      throw error;
    }
  }
}

/** A matcher for the token of the file, or why protected requests are refused. */
type TokenState = { usable: true; matches: (credential: string | undefined) => boolean } | { usable: false; problem: string };

/**
 * What the bearer-token file says now. Read on every protected request (a stat, and the file when it
 * changed), so a rotation, a blank file or a missing one takes effect at once. Fails closed: no usable token
 * means no protected request is served (the last good token is not kept: a file emptied or removed on
 * purpose must not leave the old token working).
 */
function bearerTokenState(path: string, log: Logger): () => TokenState {
  const file = new FileWatch(path);
  let state: TokenState = { usable: false, problem: 'not read yet' };
  let lastProblem: string | undefined;
  return () => {
    try {
      const { content, changed } = file.read();
      if (changed || !state.usable) {
        const parsed = tokenFromFile(content);
        state = parsed.ok ? { usable: true, matches: tokenMatcher(parsed.token) } : { usable: false, problem: parsed.reason };
      }
    } catch (error) {
      state = { usable: false, problem: `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    // Logged once per problem, not once per request.
    const problem = state.usable ? undefined : state.problem;
    if (problem !== lastProblem) {
      if (problem) log.error({ problem }, `the metrics bearer token file ${problem}: refusing every protected request (503) until it holds a token`);
      else if (lastProblem) log.info('the metrics bearer token file holds a token again: protected requests are served');
      lastProblem = problem;
    }
    return state;
  };
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { log } = options;
  const tokenState = options.bearerTokenFile ? bearerTokenState(options.bearerTokenFile, log) : undefined;
  tokenState?.();

  /** Undefined: serve. Else the status that refuses the request: 503 without a usable token, 401 for a wrong one. */
  const refusal = (req: IncomingMessage): 401 | 503 | undefined => {
    if (!tokenState) return undefined;
    const state = tokenState();
    if (!state.usable) return 503;
    return state.matches(bearerCredential(req.headers.authorization)) ? undefined : 401;
  };

  const send = (req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const text = 'text/plain; charset=utf-8';

  // The order is the security boundary: method, one Host, then the target parsed without throwing (400/414),
  // then the bearer token (503 without a usable one, 401 for a wrong one), and only then any work. Everything
  // inside one try, so no input can reject the promise.
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    let path = '?';
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(req, res, 405, text, 'method not allowed\n', { Allow: 'GET, HEAD', Connection: 'close' });
        return;
      }
      // RFC 9112 §3.2: more than one Host is a 400 (Node keeps the first and would serve it).
      if ((req.headersDistinct.host?.length ?? 0) > 1) {
        send(req, res, 400, text, 'bad request: more than one Host header\n', { Connection: 'close' });
        return;
      }
      const target = parseRequestTarget(req.url);
      if (!target.ok) {
        send(req, res, target.status, text, `bad request: ${target.reason}\n`, { Connection: 'close' });
        return;
      }
      path = target.path;
      const refused = OPEN_PATHS.has(path) ? undefined : refusal(req);
      if (refused === 503) {
        // The server's own token is missing: no credential can be right, so none is asked for.
        send(req, res, 503, text, 'unavailable: this endpoint needs a bearer token and the server has none it can use\n', { 'Retry-After': '30' });
        return;
      }
      if (refused === 401) {
        send(req, res, 401, text, 'unauthorized: send "Authorization: Bearer <token>"\n', { 'WWW-Authenticate': 'Bearer realm="vault-sync-operator"' });
        return;
      }
      switch (path) {
        case '/healthz':
        case '/livez':
          send(req, res, 200, text, 'ok\n');
          return;
        case '/readyz': {
          const { ok, body } = options.readiness();
          send(req, res, ok ? 200 : 503, text, target.query.has('verbose') || !ok ? body : 'ok\n');
          return;
        }
        case '/metrics':
          send(req, res, 200, options.registry.contentType, await options.registry.metrics());
          return;
        case '/health': {
          const report = await options.health();
          send(req, res, report.healthy ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(report, null, 2) + '\n');
          return;
        }
        case '/':
        case '/dashboard': {
          const report = await options.health();
          send(req, res, 200, 'text/html; charset=utf-8', renderDashboard(report, new Date(), options.problems?.() ?? EMPTY_PROBLEMS), {
            'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            'X-Frame-Options': 'DENY',
            'Referrer-Policy': 'no-referrer',
          });
          return;
        }
        default:
          send(req, res, 404, text, 'not found: try /metrics, /healthz, /readyz, /health or /\n');
      }
    } catch (error) {
      log.error({ path, err: (error as Error).message }, 'operations endpoint failed');
      if (!res.headersSent) send(req, res, 500, text, 'internal error\n');
      else res.destroy();
    }
  };
  // The last line of defence: whatever escapes the handler (a throw while sending the 500) ends this
  // connection, never the process.
  const listener = (req: IncomingMessage, res: ServerResponse) =>
    void handler(req, res).catch((error: unknown) => {
      log.error({ err: (error as Error)?.message }, 'operations request failed; closing its connection');
      res.destroy();
    });

  let server: Server;
  let reloadTimer: NodeJS.Timeout | undefined;
  if (options.tls) {
    const cert = new FileWatch(options.tls.certFile);
    const key = new FileWatch(options.tls.keyFile);
    const https = createHttpsServer({ ...SERVER_LIMITS, cert: cert.read().content, key: key.read().content, minVersion: 'TLSv1.2' }, listener);
    reloadTimer = setInterval(() => {
      try {
        const c = cert.read();
        const k = key.read();
        if (c.changed || k.changed) {
          https.setSecureContext({ cert: c.content, key: k.content, minVersion: 'TLSv1.2' });
          log.info('reloaded the metrics TLS certificate');
        }
      } catch (error) {
        log.warn({ err: (error as Error).message }, 'cannot reload the metrics TLS certificate; keeping the previous one');
      }
    }, options.reloadIntervalMs ?? 30_000);
    reloadTimer.unref();
    server = https;
  } else {
    server = createHttpServer(SERVER_LIMITS, listener);
  }
  server.keepAliveTimeout = SERVER_LIMITS.keepAliveTimeout;
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  server.maxRequestsPerSocket = 1000;
  // Beyond this, new connections are closed at once: a flood costs file descriptors up to here, no more.
  server.maxConnections = MAX_CONNECTIONS;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => answerClientError(error, socket, log));
  // CONNECT (authority-form) and Upgrade requests bypass the request handler: refuse them the same way.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuse(socket, '405 Method Not Allowed'));
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => refuse(socket, '400 Bad Request'));
  // An accept() failure (EMFILE under a flood) is an 'error' on the server: log it, keep listening.
  const onServerError = (error: Error) => log.warn({ err: error.message }, 'operations server: connection not accepted');

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.bindAddress, () => {
      server.off('error', reject);
      server.on('error', onServerError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.bindAddress === '0.0.0.0' || options.bindAddress === '::' ? '127.0.0.1' : options.bindAddress.includes(':') ? `[${options.bindAddress}]` : options.bindAddress;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${port}`;
  log.info({ url, tls: !!options.tls, bearerToken: !!tokenState }, 'operations server listening (/metrics, /healthz, /readyz, /health, /)');
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(reloadTimer);
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
