import { Metrics } from '../../src/observability/metrics.js';
import {
  buildHealthReport,
  Heartbeat,
  heartbeatHealthy,
  isReady,
  RateWindow,
  readinessText,
  snapshotOf,
  type HealthInput,
  type LeadershipView,
} from '../../src/observability/health.js';

const single: LeadershipView = { enabled: false, role: 'single', identity: 'pod-a', shards: 1 };
const standby: LeadershipView = { enabled: true, role: 'standby', identity: 'pod-b', shards: 1 };
const minute = 60_000;

async function input(metrics: Metrics, overrides: Partial<HealthInput> = {}): Promise<HealthInput> {
  const now = 1_800_000_000_000;
  return {
    now,
    startedAt: now - 1800_000,
    metrics: await snapshotOf(metrics.registry),
    memory: { rss: 100 * 1024 * 1024, heapUsed: 40 * 1024 * 1024, heapTotal: 64 * 1024 * 1024, external: 1024 * 1024, arrayBuffers: 0 },
    leadership: single,
    checks: [
      { name: 'caches-synced', ok: true },
      { name: 'vault-authenticated', ok: true },
    ],
    heartbeatMs: now - 1000,
    resyncIntervalMs: 10 * minute,
    rateLimit: { rate: 10, burst: 20, usedPerSecond: 2.5 },
    version: '1.2.3',
    ...overrides,
  };
}

describe('/health: the JSON health document in the spirit of seed 000', () => {
  test('totals and error rate are computed like the seed (errors / total, in percent) from the metrics registry', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.syncOperations.labels('Deployment', 'synced').inc(30);
    metrics.syncOperations.labels('Secret', 'unchanged').inc(10);
    metrics.syncOperations.labels('Deployment', 'error').inc(2);
    metrics.errors.labels('vault').inc(2);
    metrics.rateLimitRequests.labels('write').inc(35);
    metrics.rateLimitWait.labels('write').observe(0.1);
    metrics.rateLimitWait.labels('write').observe(0.3);

    const report = buildHealthReport(await input(metrics));

    expect(report).toMatchObject({
      healthy: true,
      ready: true,
      uptime_seconds: 1800,
      total_syncs: 42,
      sync_errors: 2,
      error_rate: 4.76, // 2 / 42, as in the seed's example
      errors_by_type: { vault: 2 },
      vault_requests: 35,
      memory_usage_mb: 40,
      heartbeat_healthy: true,
      version: '1.2.3',
    });
    expect(report.syncs).toMatchObject({ synced: 30, unchanged: 10, error: 2 });
    expect(report.rate_limit).toEqual({ rate_per_second: 10, burst: 20, used_per_second: 2.5, utilization_percent: 25, average_wait_ms: 200 });
  });

  test('no reconcile yet means an error rate of 0, not NaN', async () => {
    const report = buildHealthReport(await input(new Metrics({ processMetrics: false })));
    expect(report.error_rate).toBe(0);
    expect(report.total_syncs).toBe(0);
    expect(report.last_successful_sync).toBeNull();
  });

  test('the heartbeat turns unhealthy only after 3x the resync interval of silence', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const base = await input(metrics);
    const almost = buildHealthReport({ ...base, heartbeatMs: base.now - 3 * base.resyncIntervalMs });
    const stale = buildHealthReport({ ...base, heartbeatMs: base.now - 3 * base.resyncIntervalMs - 1 });
    expect(almost.heartbeat_healthy).toBe(true);
    expect(stale.heartbeat_healthy).toBe(false);
    expect(stale.healthy).toBe(false);
  });

  test('a standby is healthy and ready without any check: it has nothing to sync and must not block a rollout', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const base = await input(metrics, { leadership: standby, checks: [], heartbeatMs: 0 });
    const report = buildHealthReport(base);
    expect(report).toMatchObject({ healthy: true, ready: true, status: 'standby' });
    expect(heartbeatHealthy(base.now, 0, base.resyncIntervalMs, standby)).toBe(true);
  });

  test('a syncing replica is ready only when caches are synced and Vault accepted the login', () => {
    expect(isReady(single, [{ name: 'caches-synced', ok: true }, { name: 'vault-authenticated', ok: false }])).toBe(false);
    expect(isReady(single, [{ name: 'caches-synced', ok: true }, { name: 'vault-authenticated', ok: true }])).toBe(true);
    expect(isReady({ ...single, role: 'stopping' }, [])).toBe(false);
    expect(isReady({ ...single, role: 'starting' }, [])).toBe(false);
  });

  test('/readyz lists each check, in the apiserver style, and says why it fails', () => {
    const failing = readinessText(single, [{ name: 'caches-synced', ok: true }, { name: 'vault-authenticated', ok: false, detail: 'logging in' }]);
    expect(failing.ok).toBe(false);
    expect(failing.body).toBe('[+]role single\n[+]caches-synced ok\n[-]vault-authenticated failed: logging in\nreadyz check failed\n');
    expect(readinessText(standby, []).body).toContain('standby: ready to take over');
  });
});

describe('RateWindow: Vault requests per second over the last minute', () => {
  test('rate over the window, old samples dropped', () => {
    const window = new RateWindow(60_000);
    window.add(0, 0);
    window.add(30_000, 300);
    window.add(60_000, 600);
    expect(window.perSecond()).toBe(10);
    window.add(120_000, 600); // idle for a minute
    expect(window.perSecond()).toBe(0);
  });

  test('a burst shortly after start is averaged over the minute (the limiter allows a burst above the rate)', () => {
    const window = new RateWindow(60_000);
    window.add(0, 0);
    window.add(1000, 18);
    expect(window.perSecond()).toBeCloseTo(0.3);
  });

  test('a counter reset does not show a negative rate', () => {
    const window = new RateWindow();
    window.add(0, 500);
    window.add(5000, 3);
    expect(window.perSecond()).toBe(0);
  });
});

test('Heartbeat records the time of the last beat', () => {
  let now = 1000;
  const heartbeat = new Heartbeat(() => now);
  now = 5000;
  heartbeat.beat();
  expect(heartbeat.lastBeatMs).toBe(5000);
});
