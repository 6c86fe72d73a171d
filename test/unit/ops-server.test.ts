// The operations server on loopback (a real HTTP server in this process: no cluster, no Vault needed).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Metrics } from '../../src/observability/metrics.js';
import { buildHealthReport, readinessText, snapshotOf, type LeadershipView } from '../../src/observability/health.js';
import { createLogger } from '../../src/observability/logger.js';
import { answerClientError, MAX_CONNECTIONS, SERVER_LIMITS, startOpsServer, type OpsServer } from '../../src/observability/server.js';
import { closedByServer, HOSTILE_REQUESTS, openSocket, rawRequest } from '../e2e/helpers/raw-http.js';

const dir = mkdtempSync(join(tmpdir(), 'vso-ops-server-'));
const metrics = new Metrics();
metrics.syncOperations.labels('Deployment', 'synced').inc(3);
let leadership: LeadershipView = { enabled: false, role: 'single', identity: 'test', shards: 1 };
let vaultOk = true;
const checks = () => [{ name: 'caches-synced', ok: true }, { name: 'vault-authenticated', ok: vaultOk }];

async function serve(extra: { tls?: { certFile: string; keyFile: string }; bearerTokenFile?: string } = {}): Promise<OpsServer> {
  return startOpsServer({
    port: 0,
    bindAddress: '127.0.0.1',
    registry: metrics.registry,
    health: async () =>
      buildHealthReport({
        now: Date.now(), startedAt: Date.now() - 5000, metrics: await snapshotOf(metrics.registry), memory: process.memoryUsage(),
        leadership, checks: checks(), heartbeatMs: Date.now(), resyncIntervalMs: 60_000, rateLimit: { rate: 10, burst: 20, usedPerSecond: 0 }, version: 'test',
      }),
    readiness: () => readinessText(leadership, checks()),
    log: createLogger('silent'),
    ...extra,
  });
}

describe('HTTP endpoints', () => {
  let server: OpsServer;
  beforeAll(async () => (server = await serve()));
  afterAll(() => server.close());
  afterEach(() => {
    vaultOk = true;
    leadership = { enabled: false, role: 'single', identity: 'test', shards: 1 };
  });

  test('/metrics is Prometheus text with the operator\'s metrics and Node process metrics', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await res.text();
    expect(text).toContain('vault_sync_operations_total{kind="Deployment",result="synced"} 3');
    for (const name of ['vault_batch_size_histogram_bucket', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_active_handles_total']) {
      expect(text).toContain(name);
    }
  });

  test('/healthz answers ok whatever Vault does (liveness must not restart pods for a Vault outage)', async () => {
    vaultOk = false;
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  test('/readyz is 503 with the failing check while Vault is not authenticated, 200 once it is', async () => {
    vaultOk = false;
    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain('[-]vault-authenticated');
    vaultOk = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  test('/health is JSON, 200 when healthy and 503 when not', async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ healthy: true, total_syncs: 3, status: 'single' });
    leadership = { ...leadership, role: 'stopping' };
    expect((await fetch(`${server.url}/health`)).status).toBe(503);
  });

  test('/ serves the dashboard with a strict Content-Security-Policy', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await res.text()).toContain('<meta http-equiv="refresh" content="30">');
  });

  test('unknown paths are 404 and writes are 405', async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});

describe('bearer-token protection', () => {
  let server: OpsServer;
  const tokenFile = join(dir, 'token');
  beforeAll(async () => {
    writeFileSync(tokenFile, 's3cret-token\n');
    server = await serve({ bearerTokenFile: tokenFile });
  });
  afterAll(() => server.close());

  test('/metrics, /health and the dashboard need the token; a wrong one is refused', async () => {
    for (const path of ['/metrics', '/health', '/']) {
      const anonymous = await fetch(`${server.url}${path}`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toContain('Bearer');
      expect((await fetch(`${server.url}${path}`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${server.url}${path}`, { headers: { Authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    }
  });

  test('the kubelet\'s probes stay open', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  test('a rotated token file takes effect without a restart', async () => {
    writeFileSync(tokenFile, 'rotated-token\n');
    const later = new Date(Date.now() + 5000);
    utimesSync(tokenFile, later, later); // make sure the mtime moves even on a coarse clock
    expect((await fetch(`${server.url}/metrics`, { headers: { Authorization: 'Bearer s3cret-token' } })).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { Authorization: 'Bearer rotated-token' } })).status).toBe(200);
  });
});

describe('the bearer token fails closed: a blank or unreadable token file refuses every protected request', () => {
  let server: OpsServer;
  const tokenFile = join(dir, 'closed-token');
  const PROTECTED = ['/metrics', '/health', '/', '/dashboard', '/nope'];
  /** The status of each protected path, with each header: answered in full, so one failure shows them all. */
  const statuses = async (headers: Array<string | undefined>) => {
    const seen: Record<string, number[]> = {};
    for (const header of headers) {
      const auth = header === undefined ? '' : `Authorization: ${header}\r\n`;
      seen[header ?? '(none)'] = [];
      for (const path of PROTECTED) seen[header ?? '(none)'].push((await rawRequest(server.port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 'latin1'))).status!);
    }
    return seen;
  };
  const everyone = (status: number, headers: Array<string | undefined>) => Object.fromEntries(headers.map((h) => [h ?? '(none)', PROTECTED.map(() => status)]));
  const probesOpen = async () => [(await fetch(`${server.url}/healthz`)).status, (await fetch(`${server.url}/readyz`)).status];
  const rotate = (content: string) => writeFileSync(tokenFile, content);

  beforeAll(async () => {
    rotate('good-token\n');
    server = await serve({ bearerTokenFile: tokenFile });
  });
  afterAll(() => server.close());
  afterEach(() => rmSync(tokenFile, { recursive: true, force: true }));
  beforeEach(() => rotate('good-token\n'));

  const hostile = [undefined, 'Bearer', 'Bearer ', 'Bearer \u00a0\u00a0', 'Bearer\u00a0\u00a0', 'Bearer \t ', 'Bearer good-token', 'Bearer old-token'];

  test('a token file rotated to a blank line at run time: 503 for every protected path, whatever is sent (even the last good token)', async () => {
    expect((await statuses(['Bearer good-token']))['Bearer good-token']).toEqual(PROTECTED.map((p) => (p === '/nope' ? 404 : 200)));
    rotate('\n');
    expect(await statuses(hostile)).toEqual(everyone(503, hostile));
    expect(await probesOpen()).toEqual([200, 200]);
    // The 503 asks for no credentials (none could be right) and says nothing of the file.
    const answer = await rawRequest(server.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer.text).not.toMatch(/WWW-Authenticate|closed-token|vault_sync/i);
  });

  test('a token file of Unicode spaces is no token: "Bearer <U+00A0><U+00A0>" does not pass', async () => {
    rotate('\u00a0\u00a0\n');
    expect(await statuses(hostile)).toEqual(everyone(503, hostile));
  });

  test('an unreadable token file (gone, or a directory in its place): 503, and the token works again once the file is back', async () => {
    rmSync(tokenFile);
    expect(await statuses(hostile)).toEqual(everyone(503, hostile));
    mkdirSync(tokenFile);
    expect(await statuses(hostile)).toEqual(everyone(503, hostile));
    rmSync(tokenFile, { recursive: true });
    rotate('good-token\n');
    expect((await statuses(['Bearer good-token']))['Bearer good-token']).toEqual(PROTECTED.map((p) => (p === '/nope' ? 404 : 200)));
    expect(await probesOpen()).toEqual([200, 200]);
  });

  test('with a good token, only ASCII space or tab separates the scheme from it', async () => {
    // Headers go as latin1 bytes; U+00A0 is the byte 0xA0, and U+3000 is sent as its UTF-8 bytes, as a client would.
    const ideographicSpace = Buffer.from('\u3000', 'utf8').toString('latin1');
    const refused = ['Bearer\u00a0good-token', 'Bearer \u00a0good-token', 'Bearer good-token\u00a0', `Bearer${ideographicSpace}good-token`, 'Bearergood-token', 'Basic good-token'];
    expect(await statuses(refused)).toEqual(everyone(401, refused));
    const accepted = ['Bearer good-token', 'bearer\tgood-token', 'BEARER  good-token \t'];
    expect(Object.values(await statuses(accepted)).map((s) => s.slice(0, 4))).toEqual(accepted.map(() => [200, 200, 200, 200]));
  });
});

describe('TLS', () => {
  test('serves HTTPS with the given certificate (verified against it as CA)', async () => {
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    const server = await serve({ tls: { certFile, keyFile } });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${server.url}/healthz`, { ca: readFileSync(certFile) }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(body).toBe('ok\n');
      // Plain-text garbage to the TLS port, and a malformed target inside TLS: refused, still serving.
      const garbage = await rawRequest(server.port, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(garbage.status).toBeNull();
      const inside = await new Promise<string>((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca: readFileSync(certFile), servername: 'localhost' }, () => socket.write('GET //[ HTTP/1.1\r\nHost: x\r\n\r\n'));
        let text = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('error', () => resolve(text));
        socket.on('close', () => resolve(text));
      });
      expect(inside).toMatch(/^HTTP\/1\.1 400 /);
      expect((await fetchTls(`${server.url}/healthz`, readFileSync(certFile))).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

function fetchTls(url: string, ca: Buffer): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostile input over raw sockets: answered with a 4xx, never a crash (issue 8)', () => {
  let server: OpsServer;
  const tokenFile = join(dir, 'hostile-token');
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    writeFileSync(tokenFile, 'hostile-token\n');
    process.on('unhandledRejection', onUnhandled);
    server = await serve({ bearerTokenFile: tokenFile });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  });

  test.each(HOSTILE_REQUESTS.map((r) => [r.name, r] as const))('%s', async (_name, request) => {
    const answer = await rawRequest(server.port, request.bytes);
    expect(answer.status).toBe(request.expect);
    if (answer.status !== null && answer.status >= 400) expect(answer.text).not.toMatch(/vault_sync_operations_total|internal error/);
    // Still serving, and nothing escaped as an unhandled rejection.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(unhandled).toEqual([]);
  });

  test('an unparsable target on a protected path is a 400 before the token is even looked at', async () => {
    const answer = await rawRequest(server.port, 'GET //[metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer.status).toBe(400);
    expect(answer.text).not.toContain('WWW-Authenticate');
  });

  test('a half-closed connection gets its answer, then is closed', async () => {
    const socket = await openSocket(server.port);
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.end('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await closedByServer(socket, 5_000)).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    const bad = await rawRequest(server.port, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n', { halfClose: true });
    expect(bad.status).toBe(400);
  });

  test('limits are set: header size, header count, connections, and timeouts checked every second', () => {
    expect(SERVER_LIMITS).toMatchObject({ headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1_000 });
    expect(SERVER_LIMITS.headersTimeout).toBeLessThan(SERVER_LIMITS.requestTimeout);
    expect(MAX_CONNECTIONS).toBeGreaterThan(10);
  });

  test('the clientError answer never throws, whatever state the socket is in', () => {
    const log = createLogger('silent');
    const destroyed = new PassThrough();
    destroyed.destroy();
    expect(() => answerClientError(Object.assign(new Error('x'), { code: 'HPE_INVALID_METHOD' }), destroyed, log)).not.toThrow();
    const throwing = new PassThrough();
    throwing.end = () => {
      throw new Error('boom');
    };
    expect(() => answerClientError(Object.assign(new Error('x'), { code: 'HPE_HEADER_OVERFLOW' }), throwing, log)).not.toThrow();
    expect(throwing.destroyed).toBe(true);
  });
});
