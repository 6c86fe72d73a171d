// A fault-injecting HTTP(S) proxy on loopback in front of the real OpenBao: it records every request that
// reaches it (the operator's requests as Vault would see them, answered by Vault or by the proxy), and on
// demand adds latency, answers 429 with Retry-After, 500 or 503, resets connections (before forwarding, or after
// Vault answered: the write landed, the answer is lost), or stops listening altogether (Vault down) and starts
// again on the same port.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { readFileSync, statSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  /** performance.now() when the request line and headers arrived. */
  at: number;
  /** Date.now() at the same moment: comparable with times other processes on this machine write (Lease renewTime, logs). */
  wallAt: number;
  method: string;
  path: string;
  /** What the proxy did with it. */
  outcome: 'forwarded' | '429' | '500' | '503' | 'reset' | 'reset-after-forward' | 'answered';
  /** Vault's status code, when the request was forwarded and Vault answered. */
  status?: number;
  /** What `inspect` said about the request body (e.g. which test value a write carried). */
  note?: string;
}

/** A fault applies to the next `count` matching requests, or to a `ratio` of them (0..1), or both. */
export interface FaultRule {
  count?: number;
  ratio?: number;
}

export interface Faults {
  latencyMs?: number;
  tooManyRequests?: FaultRule & { retryAfterSeconds?: number };
  serverError?: FaultRule;
  /** 503 (Vault sealed, standby, or behind a load balancer with no healthy node), optionally with Retry-After. */
  unavailable?: FaultRule & { retryAfterSeconds?: number };
  reset?: FaultRule;
  /** Forwards the request, lets Vault answer, then resets the client's connection: the request took effect, its answer is lost. */
  resetAfterForward?: FaultRule;
  /** A canned Vault answer (e.g. a 400 whose error string echoes the request) instead of forwarding. */
  answer?: FaultRule & { status: number; errors: string[] };
  /** Which requests the faults apply to (default: all but /v1/sys/health). */
  match?: (method: string, path: string) => boolean;
}

export interface FaultProxy {
  url: string;
  readonly requests: RecordedRequest[];
  setFaults(faults: Faults): void;
  /** Vault "stops": the listener closes and open connections are destroyed (ECONNREFUSED / ECONNRESET). */
  stop(): Promise<void>;
  /** Vault "starts again" on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  upstream: string;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Deterministic faults in tests that want them. */
  random?: () => number;
  /**
   * The loopback address the proxy connects to Vault from (any 127.x.y.z): Vault's audit log records it as
   * the request's remote_address, so requests seen by Vault can be told apart per proxy.
   */
  localAddress?: string;
  /** Looks at each request's body; what it returns is kept as the request's `note`. */
  inspect?: (method: string, path: string, body: Buffer) => string | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const random = options.random ?? Math.random;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  let faults: Faults = {};
  const remaining = { tooManyRequests: 0, serverError: 0, unavailable: 0, reset: 0, resetAfterForward: 0, answer: 0 };

  const applies = (rule: FaultRule | undefined, key: keyof typeof remaining): boolean => {
    if (!rule) return false;
    if (remaining[key] > 0) {
      remaining[key]--;
      return true;
    }
    return rule.ratio !== undefined && random() < rule.ratio;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const entry: RecordedRequest = { at: performance.now(), wallAt: Date.now(), method: req.method ?? 'GET', path: req.url ?? '/', outcome: 'forwarded' };
    requests.push(entry);
    const body: Buffer[] = [];
    for await (const chunk of req) body.push(chunk as Buffer);
    if (options.inspect) entry.note = options.inspect(entry.method, entry.path, Buffer.concat(body));
    const f = faults;
    const faulty = (f.match ?? ((_m: string, p: string) => !p.startsWith('/v1/sys/health')))(entry.method, entry.path);
    if (faulty && f.latencyMs) await sleep(f.latencyMs);
    if (faulty && applies(f.reset, 'reset')) {
      entry.outcome = 'reset';
      req.socket.destroy();
      return;
    }
    if (faulty && applies(f.tooManyRequests, 'tooManyRequests')) {
      entry.outcome = '429';
      const retryAfter = f.tooManyRequests?.retryAfterSeconds;
      res.writeHead(429, { 'content-type': 'application/json', ...(retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {}) });
      res.end(JSON.stringify({ errors: [`request path "${entry.path}": rate limit quota exceeded`] }));
      return;
    }
    if (faulty && f.answer && applies(f.answer, 'answer')) {
      entry.outcome = 'answered';
      res.writeHead(f.answer.status, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: f.answer.errors }));
      return;
    }
    if (faulty && applies(f.serverError, 'serverError')) {
      entry.outcome = '500';
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: ['internal error'] }));
      return;
    }
    if (faulty && applies(f.unavailable, 'unavailable')) {
      entry.outcome = '503';
      const retryAfter = f.unavailable?.retryAfterSeconds;
      res.writeHead(503, { 'content-type': 'application/json', ...(retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {}) });
      res.end(JSON.stringify({ errors: ['Vault is sealed'] }));
      return;
    }
    const loseAnswer = faulty && applies(f.resetAfterForward, 'resetAfterForward');
    const headers = { ...req.headers, host: upstream.host };
    delete headers['transfer-encoding'];
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: entry.method, path: entry.path, headers: { ...headers, 'content-length': String(Buffer.concat(body).length) }, agent },
      (upstreamRes) => {
        entry.status = upstreamRes.statusCode;
        if (loseAnswer) {
          // Vault has applied the request: read its answer to the end, then drop the client's connection.
          entry.outcome = 'reset-after-forward';
          upstreamRes.resume();
          upstreamRes.once('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on('error', () => req.socket.destroy());
    forward.end(Buffer.concat(body));
  };

  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, (req, res) => void handle(req, res))
    : http.createServer((req, res) => void handle(req, res));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  const unlisten = async () => {
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    setFaults(next) {
      faults = next;
      remaining.tooManyRequests = next.tooManyRequests?.count ?? 0;
      remaining.serverError = next.serverError?.count ?? 0;
      remaining.unavailable = next.unavailable?.count ?? 0;
      remaining.reset = next.reset?.count ?? 0;
      remaining.resetAfterForward = next.resetAfterForward?.count ?? 0;
      remaining.answer = next.answer?.count ?? 0;
    },
    stop: unlisten,
    start: listen,
    async close() {
      if (server.listening) await unlisten();
      agent.destroy();
    },
  };
}

/** The most requests that started in any window [t, t + windowMs) with t >= from (ms, performance.now()). */
export function maxInAnyWindow(times: number[], windowMs = 1000, from = -Infinity): number {
  const sorted = times.filter((t) => t >= from).sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j] < sorted[i] + windowMs) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

/**
 * Token-bucket conformance of observed request times: for every span [t_i, t_j], the requests in it must
 * not exceed burst + rate x (t_j - t_i + clockToleranceMs): the tolerance is how far the clock that took
 * the times may have shifted one request against another (a server that queued requests while the machine
 * was busy stamps them together). Returns the worst excess
 * (<= 0 means conforming) and where it was.
 */
export function tokenBucketExcess(times: number[], rate: number, burst: number, clockToleranceMs = 0): { excess: number; at?: { from: number; to: number; count: number } } {
  const sorted = [...times].sort((a, b) => a - b);
  let worst = -Infinity;
  let at: { from: number; to: number; count: number } | undefined;
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i; j < sorted.length; j++) {
      const count = j - i + 1;
      const allowed = burst + (rate * (sorted[j] - sorted[i] + clockToleranceMs)) / 1000;
      if (count - allowed > worst) {
        worst = count - allowed;
        at = { from: sorted[i], to: sorted[j], count };
      }
    }
  }
  return { excess: sorted.length === 0 ? 0 : worst, at };
}

/**
 * The requests in OpenBao's file audit log whose path matches, logged after byte offset `from`, with their
 * times (ms since the epoch, OpenBao's clock): Vault's own view of the request rate, with no measurement in
 * the operator's process.
 */
export function auditRequests(auditLogPath: string, from: number, matches: (path: string) => boolean): Array<{ path: string; at: number }> {
  const text = readFileSync(auditLogPath).subarray(from).toString('utf8');
  const requests: Array<{ path: string; at: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"type":"request"')) continue;
    let entry: { time?: string; type?: string; request?: { path?: string } };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a line still being written
    }
    if (entry.type !== 'request' || !entry.time || !entry.request?.path || !matches(entry.request.path)) continue;
    // RFC 3339 with nanoseconds: keep the sub-millisecond digits Date.parse drops.
    const match = /\.(\d+)Z$/.exec(entry.time);
    const fraction = match ? Number(`0.${match[1]}`) * 1000 : 0;
    requests.push({ path: entry.request.path, at: Date.parse(entry.time.replace(/\.\d+Z$/, 'Z')) + fraction });
  }
  return requests;
}

export function auditRequestTimes(auditLogPath: string, from: number, matches: (path: string) => boolean): number[] {
  return auditRequests(auditLogPath, from, matches).map((r) => r.at);
}

/** The current end of the audit log, to pass as `from` later. */
export function auditLogMark(auditLogPath: string): number {
  return statSync(auditLogPath).size;
}
