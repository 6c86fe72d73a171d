import { DASHBOARD_REFRESH_SECONDS, MESSAGE_CELL_CHARS, NOT_READY_ROWS, ratePlot, renderDashboard } from '../../src/observability/dashboard.js';
import { MAX_MESSAGE_CHARS, ProblemTracker, RateHistory, REFUSALS_KEPT, type DashboardProblems } from '../../src/observability/problems.js';
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

const HOSTILE = '<script>alert(1)</script>"\'&';
const condition = (status: 'True' | 'False', reason: string, message: string, lastTransitionTime = '2026-01-01T11:55:00Z') => ({ status, reason, message, lastTransitionTime });
const ref = (namespace: string, name: string) => ({ kind: 'Deployment', namespace, name });

function problemsFrom(tracker: ProblemTracker, history = new RateHistory()): DashboardProblems {
  const { rows, total } = tracker.notReadySources(NOT_READY_ROWS);
  return { notReady: rows, notReadyTotal: total, refusals: tracker.lastRefusals(), rate: { points: history.points(), windowMs: history.windowMs, limitPerSecond: 10 } };
}

describe('what is wrong: sources not Ready, the last refusals, the request rate (issue 10)', () => {
  test('empty states say so in words', () => {
    const html = renderDashboard(report(), new Date(now), problemsFrom(new ProblemTracker()));
    expect(html).toContain('Every source is Ready.');
    expect(html).toContain('No refusals since this replica started.');
    expect(html).toContain('no samples yet');
    expect(html).toContain('data-points="0"');
  });

  test('a refused source is a row of the not-Ready table and a refusal; once Ready it leaves the table, the refusal stays', () => {
    const tracker = new ProblemTracker(() => now);
    tracker.onCondition('Deployment/team-a/web', ref('team-a', 'web'), condition('False', 'OutsideTenantPrefix', 'path "secret/other/x" is outside "secret/team-a/"'), 'written');
    let html = renderDashboard(report(), new Date(now), problemsFrom(tracker));
    expect(html).toMatch(/<section id="not-ready"[^>]*><h2>Sources not in sync <span class="count">1<\/span>/);
    expect(html).toContain('<td class="ns">team-a</td><td class="src">web<span class="kind">Deployment</span>');
    expect(html).toContain('OutsideTenantPrefix');
    expect(html).toContain('path &quot;secret/other/x&quot; is outside &quot;secret/team-a/&quot;');
    expect(html).toContain('5m 0s ago'); // since the condition's lastTransitionTime
    expect(tracker.lastRefusals()).toHaveLength(1);
    tracker.onCondition('Deployment/team-a/web', ref('team-a', 'web'), condition('True', 'Synced', '1 path(s) written'), 'written');
    html = renderDashboard(report(), new Date(now), problemsFrom(tracker));
    expect(html).toContain('Every source is Ready.');
    expect(html).toMatch(/id="refusals">[\s\S]*OutsideTenantPrefix/);
  });

  test('everything a tenant controls is escaped: names, reasons and messages', () => {
    const tracker = new ProblemTracker(() => now);
    tracker.onCondition('k', ref(`ns${HOSTILE}`, `name${HOSTILE}`), condition('False', `Reason${HOSTILE}`, `message ${HOSTILE}`), 'written');
    const html = renderDashboard(report(), new Date(now), problemsFrom(tracker));
    expect(html).not.toContain('<script>');
    expect(html).not.toMatch(/"\'&[^a#]/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;');
  });

  test('long messages are cut in the cell (full text, itself bounded, in the title); long tables end with "…and N more"', () => {
    const tracker = new ProblemTracker(() => now);
    const names = Array.from({ length: 10_000 }, (_, i) => `missing-secret-${i}`).join(', ');
    tracker.onCondition('big', ref('team-a', 'big'), condition('False', 'MissingSecret', names), 'written');
    const [row] = tracker.notReadySources(1).rows;
    expect(row.message.length).toBe(MAX_MESSAGE_CHARS);
    expect(row.message.endsWith('…')).toBe(true);
    for (let i = 0; i < NOT_READY_ROWS + 7; i++) tracker.onCondition(`k${i}`, ref('team-b', `app-${i}`), condition('False', 'Refused', 'x'), 'written');
    const html = renderDashboard(report(), new Date(now), problemsFrom(tracker));
    const cell = /<td class="msg" title="(missing-secret[^"]*)">([^<]*)<\/td>/.exec(html)!;
    expect(cell[2].length).toBe(MESSAGE_CELL_CHARS);
    expect(cell[1].length).toBe(MAX_MESSAGE_CHARS);
    expect((html.match(/<tr><td class="ns">/g) ?? []).length).toBe(NOT_READY_ROWS); // refusal rows start with their time
    expect(html).toContain(`…and 8 more not Ready`);
    expect(html).toContain(`<span class="count">${NOT_READY_ROWS + 8}</span>`);
  });

  test('the refusal ring keeps the last 20, newest first, and records a repeated refusal once', () => {
    let clock = now;
    const tracker = new ProblemTracker(() => clock);
    for (let i = 0; i < 30; i++) {
      clock += 1000;
      tracker.onCondition(`k${i}`, ref('team-a', `app-${i}`), condition('False', 'Refused', `refusal ${i}`), 'written');
      tracker.onCondition(`k${i}`, ref('team-a', `app-${i}`), condition('False', 'Refused', `refusal ${i}`), 'written'); // a resync says it again
    }
    const refusals = tracker.lastRefusals();
    expect(refusals.map((r) => r.message)).toEqual(Array.from({ length: REFUSALS_KEPT }, (_, i) => `refusal ${29 - i}`));
    expect(Date.parse(refusals[0].since)).toBe(clock);
    // Suspended is a state, not a refusal; conditions found at start are not new refusals either.
    tracker.onCondition('s', ref('team-a', 's'), condition('False', 'Suspended', 'vault-sync.io/suspend is "true"'), 'written');
    tracker.onCondition('l', ref('team-a', 'l'), condition('False', 'Refused', 'loaded'), 'loaded');
    expect(tracker.lastRefusals()[0].message).toBe('refusal 29');
    expect(tracker.notReadySources(100).rows.map((r) => r.name)).toEqual(expect.arrayContaining(['s', 'l']));
    tracker.onDeleted('s');
    tracker.reset();
    expect(tracker.notReadySources(100).total).toBe(0);
  });

  test('the rate plot: requests per second from counter samples, bounded to the window, drawn as inline SVG', () => {
    const history = new RateHistory(10 * 60_000, 240);
    const start = now - 15 * 60_000;
    // 15 minutes of samples every 5 s, 4 requests per second, plus extra samples 100 ms apart (skipped).
    for (let t = start, total = 0; t <= now; t += 5000, total += 20) {
      history.add(t, total);
      history.add(t + 100, total);
    }
    const points = history.points();
    expect(points.length).toBeLessThanOrEqual(240);
    expect(points.length).toBeGreaterThanOrEqual(119);
    expect(points.every((p) => p.perSecond === 4)).toBe(true);
    expect(points[0].at).toBeGreaterThan(now - 10 * 60_000);
    // A counter reset (restarted limiter) is 0, not a negative rate.
    history.add(now + 5000, 0);
    expect(history.points().at(-1)!.perSecond).toBe(0);
    const svg = ratePlot(points, 10 * 60_000, 10, new Date(now));
    expect(svg).toMatch(/^<svg class="plot"/);
    expect(svg).toContain(`data-points="${points.length}"`);
    expect(svg).toContain('<polyline class="line"');
    expect(svg).toContain('limit 10/s');
    const html = renderDashboard(report(), new Date(now), { notReady: [], notReadyTotal: 0, refusals: [], rate: { points, windowMs: 10 * 60_000, limitPerSecond: 10 } });
    expect(html).toContain(`peak 4 req/s · latest 4 req/s · ${points.length} samples`);
    expect(svg).not.toMatch(/NaN|Infinity/);
  });
});
