// The operations server on loopback (a real HTTP server in this process: no cluster, no Vault needed).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../../src/observability/metrics.js';
import { buildHealthReport, readinessText, snapshotOf, type LeadershipView } from '../../src/observability/health.js';
import { createLogger } from '../../src/observability/logger.js';
import { startOpsServer, type OpsServer } from '../../src/observability/server.js';

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
    } finally {
      await server.close();
    }
  });
});
