import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { renderDashboard } from './dashboard.js';
import type { HealthReport } from './health.js';

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
  /** How often TLS files and the token file are checked for changes (default 30 s). */
  reloadIntervalMs?: number;
}

export interface OpsServer {
  /** e.g. http://127.0.0.1:8080 (the bound address; 0.0.0.0 shown as 127.0.0.1). */
  url: string;
  port: number;
  close(): Promise<void>;
}

const OPEN_PATHS = new Set(['/healthz', '/readyz', '/livez']);

class FileWatch {
  private mtimeMs = -1;
  private content = '';
  constructor(private readonly path: string) {}
  /** The file's content, re-read when its mtime changed; `changed` says whether it did. */
  read(): { content: string; changed: boolean } {
    const mtimeMs = statSync(this.path).mtimeMs;
    if (mtimeMs === this.mtimeMs) return { content: this.content, changed: false };
    this.content = readFileSync(this.path, 'utf8');
    this.mtimeMs = mtimeMs;
    return { content: this.content, changed: true };
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { log } = options;
  const tokenFile = options.bearerTokenFile ? new FileWatch(options.bearerTokenFile) : undefined;
  let tokenDigest: Buffer | undefined;
  const expectedToken = (): Buffer | undefined => {
    if (!tokenFile) return undefined;
    try {
      const { content, changed } = tokenFile.read();
      if (changed || !tokenDigest) tokenDigest = digest(content.trim());
    } catch (error) {
      // Keep the last good token rather than opening the endpoints when the file is briefly missing.
      log.warn({ err: (error as Error).message }, 'cannot re-read the metrics bearer token file; keeping the previous token');
    }
    return tokenDigest ?? digest(`\0unreadable-${Math.random()}`);
  };
  expectedToken();

  const authorized = (req: IncomingMessage): boolean => {
    const expected = expectedToken();
    if (!expected) return true;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    // Compare digests: constant time, and equal lengths whatever was sent.
    return !!match && timingSafeEqual(digest(match[1].trim()), expected);
  };

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const send = (status: number, contentType: string, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    if (!OPEN_PATHS.has(path) && !authorized(req)) {
      send(401, 'text/plain; charset=utf-8', 'unauthorized: send "Authorization: Bearer <token>"\n', { 'WWW-Authenticate': 'Bearer realm="vault-sync-operator"' });
      return;
    }
    try {
      switch (path) {
        case '/healthz':
        case '/livez':
          send(200, 'text/plain; charset=utf-8', 'ok\n');
          return;
        case '/readyz': {
          const { ok, body } = options.readiness();
          send(ok ? 200 : 503, 'text/plain; charset=utf-8', url.searchParams.has('verbose') || !ok ? body : 'ok\n');
          return;
        }
        case '/metrics':
          send(200, options.registry.contentType, await options.registry.metrics());
          return;
        case '/health': {
          const report = await options.health();
          send(report.healthy ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(report, null, 2) + '\n');
          return;
        }
        case '/':
        case '/dashboard': {
          const report = await options.health();
          send(200, 'text/html; charset=utf-8', renderDashboard(report), {
            'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            'X-Frame-Options': 'DENY',
            'Referrer-Policy': 'no-referrer',
          });
          return;
        }
        default:
          send(404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz, /readyz, /health or /\n');
      }
    } catch (error) {
      log.error({ path, err: (error as Error).message }, 'operations endpoint failed');
      if (!res.headersSent) send(500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => void handler(req, res);

  let server: Server;
  let reloadTimer: NodeJS.Timeout | undefined;
  if (options.tls) {
    const cert = new FileWatch(options.tls.certFile);
    const key = new FileWatch(options.tls.keyFile);
    const https = createHttpsServer({ cert: cert.read().content, key: key.read().content, minVersion: 'TLSv1.2' }, listener);
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
    server = createHttpServer(listener);
  }
  server.keepAliveTimeout = 65_000; // longer than Prometheus' idle keep-alive, so scrapes reuse connections
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.bindAddress, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.bindAddress === '0.0.0.0' || options.bindAddress === '::' ? '127.0.0.1' : options.bindAddress.includes(':') ? `[${options.bindAddress}]` : options.bindAddress;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${port}`;
  log.info({ url, tls: !!options.tls, bearerToken: !!tokenFile }, 'operations server listening (/metrics, /healthz, /readyz, /health, /)');
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
