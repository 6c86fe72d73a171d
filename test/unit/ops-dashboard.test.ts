import { DASHBOARD_REFRESH_SECONDS, renderDashboard } from '../../src/observability/dashboard.js';
import { buildHealthReport, snapshotFrom } from '../../src/observability/health.js';

const now = Date.parse('2026-01-01T12:00:00Z');

function report(identity = 'vault-sync-operator-7d9f-abcde') {
  const values = new Map([
    ['vault_sync_operations_total', [
      { value: 40, labels: { kind: 'Deployment', result: 'synced' } },
      { value: 2, labels: { kind: 'Secret', result: 'error' } },
    ]],
    ['vault_sync_errors_total', [{ value: 2, labels: { type: 'vault' } }]],
  ]);
  return buildHealthReport({
    now,
    startedAt: now - 3_723_000,
    metrics: snapshotFrom(values),
    memory: { rss: 120 * 1024 ** 2, heapUsed: 50 * 1024 ** 2, heapTotal: 80 * 1024 ** 2, external: 0, arrayBuffers: 0 },
    leadership: { enabled: true, role: 'leader', identity, shards: 3, shard: 1 },
    checks: [{ name: 'caches-synced', ok: true }, { name: 'vault-authenticated', ok: true }],
    heartbeatMs: now,
    resyncIntervalMs: 600_000,
    rateLimit: { rate: 10, burst: 20, usedPerSecond: 9.5 },
    version: '0.1.0',
  });
}

describe('the dashboard page (seed 000: health, totals, error rate, uptime; refreshes every 30 s)', () => {
  test('refreshes itself every 30 s without JavaScript', () => {
    const html = renderDashboard(report(), new Date(now));
    expect(DASHBOARD_REFRESH_SECONDS).toBe(30);
    expect(html).toContain('<meta http-equiv="refresh" content="30">');
    expect(html).not.toMatch(/<script/i);
  });

  test('shows health, role and shard, syncs, error rate, rate-limit use and queue', () => {
    const html = renderDashboard(report(), new Date(now));
    expect(html).toContain('Healthy · leader of shard 1/3');
    expect(html).toContain('1h 2m'); // uptime 3723 s
    expect(html).toMatch(/data-metric="total_syncs">.*?<div class="value">42</);
    expect(html).toMatch(/data-metric="error_rate">.*?<div class="value">4.76 %</);
    expect(html).toContain('9.5 req/s'); // rate-limit use
    expect(html).toContain('95 %');
    expect(html).toContain('data-metric="queue_depth"');
  });

  test('escapes everything it prints (an identity comes from the environment)', () => {
    const html = renderDashboard(report('<img src=x onerror=alert(1)>'), new Date(now));
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});
