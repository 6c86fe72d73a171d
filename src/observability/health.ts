import type { Registry } from 'prom-client';

/**
 * What the operations endpoints report: liveness (/healthz), readiness (/readyz) and the JSON health
 * document (/health, in the spirit of the monitoring guide of seed 000). Everything is computed from the
 * metrics registry plus a small amount of process state (role, readiness checks, heartbeat), so the sync
 * code needs no hooks for it beyond what it already counts.
 */

/** The control loop's pulse: beats when a reconcile finishes and when a resync finds nothing to do. */
export class Heartbeat {
  private last: number;
  constructor(private readonly now: () => number = Date.now) {
    this.last = now();
  }
  beat(): void {
    this.last = this.now();
  }
  get lastBeatMs(): number {
    return this.last;
  }
}

/** `waiting-out`: holds a Lease taken over from another holder and waits before sending anything (no engine yet). */
export type Role = 'starting' | 'leader' | 'waiting-out' | 'standby' | 'single' | 'stopping';

/** Roles without an engine of their own: nothing to check, nothing to heartbeat. */
const idleRole = (role: Role) => role === 'standby' || role === 'waiting-out';

/** Leader election as the endpoints show it. */
export interface LeadershipView {
  enabled: boolean;
  role: Role;
  identity: string;
  /** The shard this replica syncs (with leader election), when it holds one. */
  shard?: number;
  shards: number;
  lease?: string;
}

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** Sums of the series of one metric, optionally filtered by label values. */
export interface MetricsSnapshot {
  sum(name: string, where?: Record<string, string | string[]>): number;
  /** Undefined when the metric has no series (not registered or never set). */
  value(name: string): number | undefined;
  has(name: string): boolean;
  /** The distinct values of one label across the metric's series. */
  labelValues(name: string, label: string): string[];
}

interface JsonMetric {
  name: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

export async function snapshotOf(registry: Registry): Promise<MetricsSnapshot> {
  const metrics = (await registry.getMetricsAsJSON()) as unknown as JsonMetric[];
  const byName = new Map<string, JsonMetric['values']>();
  for (const metric of metrics) {
    for (const v of metric.values) {
      // Histograms list _bucket/_sum/_count values under their own metricName.
      const name = v.metricName ?? metric.name;
      const list = byName.get(name) ?? [];
      list.push(v);
      byName.set(name, list);
    }
  }
  return snapshotFrom(byName);
}

export function snapshotFrom(byName: Map<string, Array<{ value: number; labels: Record<string, string | number> }>>): MetricsSnapshot {
  const matches = (labels: Record<string, string | number>, where?: Record<string, string | string[]>) =>
    !where ||
    Object.entries(where).every(([k, want]) => (Array.isArray(want) ? want.includes(String(labels[k])) : String(labels[k]) === want));
  return {
    sum(name, where) {
      let total = 0;
      for (const v of byName.get(name) ?? []) if (matches(v.labels, where) && Number.isFinite(v.value)) total += v.value;
      return total;
    },
    value(name) {
      const values = byName.get(name);
      return values && values.length > 0 ? values[0].value : undefined;
    },
    has(name) {
      return byName.has(name);
    },
    labelValues(name, label) {
      const seen = new Set<string>();
      for (const v of byName.get(name) ?? []) if (v.labels[label] !== undefined) seen.add(String(v.labels[label]));
      return [...seen].sort();
    },
  };
}

/** Requests per second of a counter, averaged over a sliding window, from samples taken by the caller. */
export class RateWindow {
  private readonly samples: Array<{ at: number; value: number }> = [];
  constructor(private readonly windowMs = 60_000) {}
  add(at: number, value: number): void {
    this.samples.push({ at, value });
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs) this.samples.shift();
  }
  /** The average over the window: a burst right after start is spread over the whole minute, not shown as a peak. */
  perSecond(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = Math.max(last.at - first.at, this.windowMs) / 1000;
    return last.value >= first.value ? (last.value - first.value) / seconds : 0;
  }
}

export interface HealthInput {
  now: number;
  startedAt: number;
  metrics: MetricsSnapshot;
  memory: NodeJS.MemoryUsage;
  leadership: LeadershipView;
  checks: ReadinessCheck[];
  heartbeatMs: number;
  resyncIntervalMs: number;
  /** Requests per second the limiter allows this replica, and what it used over the last minute. */
  rateLimit: { rate: number; burst: number; usedPerSecond: number };
  queue?: { depth: number; inFlight: number };
  version: string;
}

export interface HealthReport {
  healthy: boolean;
  ready: boolean;
  status: Role;
  version: string;
  uptime_seconds: number;
  memory_usage_mb: number;
  memory: { rss_mb: number; heap_used_mb: number; heap_total_mb: number; external_mb: number };
  event_loop_lag_ms: number;
  active_handles: number;
  total_syncs: number;
  syncs: Record<string, number>;
  sync_errors: number;
  /** Percent of reconciles that ended in an error (seed 000: rotation_errors / total_rotations). */
  error_rate: number;
  errors_by_type: Record<string, number>;
  refusals: number;
  vault_requests: number;
  rate_limit: {
    rate_per_second: number;
    burst: number;
    used_per_second: number;
    utilization_percent: number;
    average_wait_ms: number;
  };
  queue_depth: number;
  in_flight: number;
  large_secrets: number;
  drift_corrections: number;
  token_ttl_seconds: number | null;
  last_successful_sync: string | null;
  heartbeat: string;
  heartbeat_healthy: boolean;
  leader_election: { enabled: boolean; identity: string; shard: number | null; shards: number; lease: string | null };
  checks: Record<string, { ok: boolean; detail?: string }>;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

/** Ready = can serve its role: a standby is ready to take over; a syncing replica needs every check. */
export function isReady(leadership: LeadershipView, checks: ReadinessCheck[]): boolean {
  if (leadership.role === 'stopping' || leadership.role === 'starting') return false;
  if (idleRole(leadership.role)) return true;
  return checks.every((c) => c.ok);
}

/** The heartbeat is healthy unless the loop has been silent for 3x the resync interval. */
export function heartbeatHealthy(now: number, heartbeatMs: number, resyncIntervalMs: number, leadership: LeadershipView): boolean {
  if (idleRole(leadership.role)) return true; // no loop to run
  return now - heartbeatMs <= 3 * resyncIntervalMs;
}

export function buildHealthReport(input: HealthInput): HealthReport {
  const m = input.metrics;
  const syncs: Record<string, number> = {};
  for (const result of ['synced', 'unchanged', 'deleted', 'refused', 'invalid', 'suspended', 'error']) {
    syncs[result] = m.sum('vault_sync_operations_total', { result });
  }
  const total = m.sum('vault_sync_operations_total');
  const errors = syncs.error;
  const errorsByType: Record<string, number> = {};
  // Only the type label is read: labels never carry secret values (see metrics.ts).
  for (const type of m.labelValues('vault_sync_errors_total', 'type')) errorsByType[type] = m.sum('vault_sync_errors_total', { type });
  const waitCount = m.sum('vault_rate_limit_wait_duration_seconds_count');
  const waitSum = m.sum('vault_rate_limit_wait_duration_seconds_sum');
  const lastSync = m.value('vault_sync_last_success_timestamp_seconds');
  const ready = isReady(input.leadership, input.checks);
  const beatOk = heartbeatHealthy(input.now, input.heartbeatMs, input.resyncIntervalMs, input.leadership);
  const rate = input.rateLimit;
  const ttl = m.value('vault_token_ttl_seconds');
  return {
    healthy: beatOk && (ready || input.leadership.role === 'starting'),
    ready,
    status: input.leadership.role,
    version: input.version,
    uptime_seconds: Math.floor((input.now - input.startedAt) / 1000),
    memory_usage_mb: mb(input.memory.heapUsed),
    memory: {
      rss_mb: mb(input.memory.rss),
      heap_used_mb: mb(input.memory.heapUsed),
      heap_total_mb: mb(input.memory.heapTotal),
      external_mb: mb(input.memory.external),
    },
    event_loop_lag_ms: round2((m.value('nodejs_eventloop_lag_seconds') ?? 0) * 1000),
    active_handles: m.sum('nodejs_active_handles_total'),
    total_syncs: total,
    syncs,
    sync_errors: errors,
    error_rate: total > 0 ? round2((errors / total) * 100) : 0,
    errors_by_type: errorsByType,
    refusals: syncs.refused + syncs.invalid,
    vault_requests: m.sum('vault_rate_limit_requests_total'),
    rate_limit: {
      rate_per_second: round2(rate.rate),
      burst: rate.burst,
      used_per_second: round2(rate.usedPerSecond),
      utilization_percent: rate.rate > 0 ? round2(Math.min(100, (rate.usedPerSecond / rate.rate) * 100)) : 0,
      average_wait_ms: waitCount > 0 ? round2((waitSum / waitCount) * 1000) : 0,
    },
    queue_depth: input.queue?.depth ?? m.sum('vault_sync_queue_depth'),
    in_flight: input.queue?.inFlight ?? 0,
    large_secrets: m.sum('vault_large_secret_count'),
    drift_corrections: m.sum('vault_sync_drift_corrections_total'),
    token_ttl_seconds: ttl === undefined ? null : ttl,
    last_successful_sync: lastSync ? new Date(lastSync * 1000).toISOString() : null,
    heartbeat: new Date(input.heartbeatMs).toISOString(),
    heartbeat_healthy: beatOk,
    leader_election: {
      enabled: input.leadership.enabled,
      identity: input.leadership.identity,
      shard: input.leadership.shard ?? null,
      shards: input.leadership.shards,
      lease: input.leadership.lease ?? null,
    },
    checks: Object.fromEntries(input.checks.map((c) => [c.name, c.detail === undefined ? { ok: c.ok } : { ok: c.ok, detail: c.detail }])),
  };
}

/** The /readyz body in the apiserver's style: one line per check, then the verdict. */
export function readinessText(leadership: LeadershipView, checks: ReadinessCheck[]): { ok: boolean; body: string } {
  const ok = isReady(leadership, checks);
  const lines = [`[${idleRole(leadership.role) || leadership.role === 'leader' || leadership.role === 'single' ? '+' : '-'}]role ${leadership.role}`];
  for (const c of checks) lines.push(`[${c.ok ? '+' : '-'}]${c.name} ${c.ok ? 'ok' : `failed${c.detail ? `: ${c.detail}` : ''}`}`);
  if (leadership.role === 'standby') lines.push('standby: ready to take over when the leader goes');
  lines.push(ok ? 'readyz check passed' : 'readyz check failed');
  return { ok, body: lines.join('\n') + '\n' };
}
