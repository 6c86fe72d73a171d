import type { HealthReport } from './health.js';
import { truncate, type DashboardProblems, type RatePoint, type SourceProblem } from './problems.js';

/**
 * The small dashboard at `/` (seed 000: health indicator, memory, totals, error rate, uptime; refreshes
 * every 30 s). Server-rendered HTML without JavaScript, so it works behind a strict Content-Security-Policy
 * and a plain `kubectl port-forward`. Everything shown comes from the health report: names, numbers and
 * times, never a secret value.
 */
export const DASHBOARD_REFRESH_SECONDS = 30;

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

/** "12 s ago" for an ISO time, relative to the render time. */
function ago(iso: string | null, now: Date): string {
  if (!iso) return '—';
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  return `${duration(seconds)} ago`;
}

const number = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 }));

interface Card {
  label: string;
  value: string;
  hint?: string;
  tone?: 'good' | 'warn' | 'bad';
  id: string;
}

function card(c: Card): string {
  return `<div class="card${c.tone ? ` ${c.tone}` : ''}" data-metric="${escapeHtml(c.id)}"><div class="label">${escapeHtml(c.label)}</div><div class="value">${escapeHtml(c.value)}</div>${c.hint ? `<div class="hint">${escapeHtml(c.hint)}</div>` : ''}</div>`;
}

function bar(percent: number, tone: 'good' | 'warn' | 'bad'): string {
  const p = Math.max(0, Math.min(100, percent));
  return `<div class="bar"><div class="fill ${tone}" style="width:${p.toFixed(1)}%"></div></div>`;
}

/** Rows of the not-Ready table shown at most; the rest are counted. */
export const NOT_READY_ROWS = 50;
/** Characters of a message shown in a cell; the full (bounded) message is in the cell's title. */
export const MESSAGE_CELL_CHARS = 200;

export const EMPTY_PROBLEMS: DashboardProblems = { notReady: [], notReadyTotal: 0, refusals: [], rate: { points: [], windowMs: 10 * 60_000, limitPerSecond: 0 } };

const sourceCells = (p: SourceProblem) =>
  `<td class="ns">${escapeHtml(p.namespace)}</td><td class="src">${escapeHtml(p.name)}<span class="kind">${escapeHtml(p.kind)}</span></td>`;
const messageCell = (message: string) => `<td class="msg" title="${escapeHtml(message)}">${escapeHtml(truncate(message, MESSAGE_CELL_CHARS))}</td>`;
const timeCell = (iso: string, now: Date) => `<td class="when" title="${escapeHtml(iso)}">${escapeHtml(ago(iso, now))}</td>`;

function notReadyTable(problems: DashboardProblems, now: Date): string {
  if (problems.notReady.length === 0) return '<p class="empty good-text">Every source is Ready.</p>';
  const rows = problems.notReady
    .map((p) => `<tr>${sourceCells(p)}<td class="reason">${escapeHtml(p.reason)}</td>${messageCell(p.message)}${timeCell(p.since, now)}</tr>`)
    .join('');
  const more = problems.notReadyTotal - problems.notReady.length;
  return `<table class="grid"><thead><tr><th>namespace</th><th>name</th><th>reason</th><th>message</th><th>since</th></tr></thead><tbody>${rows}</tbody></table>${
    more > 0 ? `<p class="muted more">…and ${number(more)} more not Ready</p>` : ''
  }`;
}

function refusalsTable(problems: DashboardProblems, now: Date): string {
  if (problems.refusals.length === 0) return '<p class="empty muted">No refusals since this replica started.</p>';
  const rows = problems.refusals.map((p) => `<tr>${timeCell(p.since, now)}${sourceCells(p)}<td class="reason">${escapeHtml(p.reason)}</td>${messageCell(p.message)}</tr>`).join('');
  return `<table class="grid"><thead><tr><th>when</th><th>namespace</th><th>name</th><th>reason</th><th>message</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/**
 * Vault requests per second over the last window, as inline SVG (no script, no external resource, so the
 * Content-Security-Policy stays `default-src 'none'`): an area under the measured rate, the limit dashed.
 */
export function ratePlot(points: RatePoint[], windowMs: number, limitPerSecond: number, now: Date): string {
  const W = 800;
  const H = 170;
  const left = 34;
  const right = 8;
  const top = 10;
  const bottom = 22;
  const end = now.getTime();
  const start = end - windowMs;
  const shown = points.filter((p) => p.at >= start && p.at <= end + 60_000 && Number.isFinite(p.perSecond));
  const peak = Math.max(0, ...shown.map((p) => p.perSecond));
  const yMax = niceCeiling(Math.max(limitPerSecond, peak, 1) * 1.1);
  const x = (at: number) => left + ((Math.max(start, Math.min(at, end)) - start) / windowMs) * (W - left - right);
  const y = (v: number) => top + (1 - v / yMax) * (H - top - bottom);
  const f = (n: number) => n.toFixed(1);
  const grid = [0, yMax / 2, yMax]
    .map((v) => `<line class="grid" x1="${left}" x2="${W - right}" y1="${f(y(v))}" y2="${f(y(v))}"/><text class="axis" x="${left - 4}" y="${f(y(v) + 4)}" text-anchor="end">${escapeHtml(number(Math.round(v * 10) / 10))}</text>`)
    .join('');
  const minutes = Math.round(windowMs / 60_000);
  const xLabels = [
    `<text class="axis" x="${left}" y="${H - 6}">−${minutes} min</text>`,
    `<text class="axis" x="${f(left + (W - left - right) / 2)}" y="${H - 6}" text-anchor="middle">−${minutes / 2} min</text>`,
    `<text class="axis" x="${W - right}" y="${H - 6}" text-anchor="end">now</text>`,
  ].join('');
  const limit =
    limitPerSecond > 0
      ? `<line class="limit" x1="${left}" x2="${W - right}" y1="${f(y(limitPerSecond))}" y2="${f(y(limitPerSecond))}"/><text class="limit-label" x="${W - right - 2}" y="${f(y(limitPerSecond) - 4)}" text-anchor="end">limit ${escapeHtml(number(limitPerSecond))}/s</text>`
      : '';
  let series = `<text class="axis" x="${W / 2}" y="${f(H / 2)}" text-anchor="middle">no samples yet: the first appear within 10 s</text>`;
  if (shown.length > 0) {
    // A step per interval: the rate is an average over it, not a value at an instant.
    const coords = shown.flatMap((p) => [`${f(x(p.from))},${f(y(p.perSecond))}`, `${f(x(p.at))},${f(y(p.perSecond))}`]);
    const area = `M${f(x(shown[0].from))},${f(y(0))} L${coords.join(' L')} L${f(x(shown[shown.length - 1].at))},${f(y(0))} Z`;
    const last = shown[shown.length - 1];
    series = `<path class="area" d="${area}"/><polyline class="line" points="${coords.join(' ')}"/><circle class="dot" cx="${f(x(last.at))}" cy="${f(y(last.perSecond))}" r="3"/>`;
  }
  return `<svg class="plot" viewBox="0 0 ${W} ${H}" role="img" aria-label="Vault requests per second, last ${minutes} minutes" data-points="${shown.length}">${grid}${limit}${series}${xLabels}</svg>`;
}

/** Under the plot: the peak and the latest interval, in words. */
function rateCaption(points: RatePoint[], windowMs: number, now: Date): string {
  const shown = points.filter((p) => p.at >= now.getTime() - windowMs);
  if (shown.length === 0) return '';
  const rate = (n: number) => escapeHtml(number(Math.round(n * 100) / 100));
  const peak = Math.max(...shown.map((p) => p.perSecond));
  return `<div class="hint">peak ${rate(peak)} req/s · latest ${rate(shown[shown.length - 1].perSecond)} req/s · ${number(shown.length)} samples</div>`;
}

/** A round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at least `n`: axis labels. */
function niceCeiling(n: number): number {
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

export function renderDashboard(report: HealthReport, now: Date = new Date(), problems: DashboardProblems = EMPTY_PROBLEMS): string {
  const r = report;
  const roleText =
    r.status === 'leader' ? `leader${r.leader_election.shard !== null && r.leader_election.shards > 1 ? ` of shard ${r.leader_election.shard}/${r.leader_election.shards}` : ''}`
    : r.status === 'single' ? 'syncing (no leader election)'
    : r.status;
  const statusTone = r.healthy ? (r.ready ? 'good' : 'warn') : 'bad';
  const statusText = r.healthy ? (r.ready ? 'Healthy' : 'Starting') : 'Unhealthy';
  const rateTone = r.rate_limit.utilization_percent >= 90 ? 'bad' : r.rate_limit.utilization_percent >= 70 ? 'warn' : 'good';
  const errorTone = r.error_rate >= 5 ? 'bad' : r.sync_errors > 0 ? 'warn' : 'good';

  const syncRows = Object.entries(r.syncs)
    .map(([result, count]) => `<tr><td>${escapeHtml(result)}</td><td class="num">${number(count)}</td></tr>`)
    .join('');
  const errorRows = Object.entries(r.errors_by_type).length
    ? Object.entries(r.errors_by_type).map(([type, count]) => `<tr><td>${escapeHtml(type)}</td><td class="num">${number(count)}</td></tr>`).join('')
    : '<tr><td colspan="2" class="muted">no errors</td></tr>';
  const checkRows = Object.entries(r.checks)
    .map(([name, c]) => `<tr><td>${escapeHtml(name)}</td><td class="${c.ok ? 'ok' : 'fail'}">${c.ok ? 'ok' : escapeHtml(c.detail ?? 'failed')}</td></tr>`)
    .join('') || '<tr><td colspan="2" class="muted">standby: no checks</td></tr>';

  const cards: Card[] = [
    { id: 'status', label: 'Status', value: statusText, hint: roleText, tone: statusTone },
    { id: 'uptime', label: 'Uptime', value: duration(r.uptime_seconds), hint: `version ${r.version}` },
    { id: 'total_syncs', label: 'Reconciles', value: number(r.total_syncs), hint: `${number(r.syncs.synced ?? 0)} wrote to Vault` },
    { id: 'error_rate', label: 'Error rate', value: `${number(r.error_rate)} %`, hint: `${number(r.sync_errors)} errors, ${number(r.refusals)} refused`, tone: errorTone },
    { id: 'queue_depth', label: 'Queue', value: number(r.queue_depth), hint: `${number(r.in_flight)} in flight`, tone: r.queue_depth > 100 ? 'warn' : undefined },
    { id: 'vault_requests', label: 'Vault requests', value: number(r.vault_requests), hint: `avg wait for a token ${number(r.rate_limit.average_wait_ms)} ms` },
    { id: 'memory', label: 'Memory', value: `${number(r.memory.rss_mb)} MB`, hint: `heap ${number(r.memory.heap_used_mb)} / ${number(r.memory.heap_total_mb)} MB` },
    { id: 'event_loop_lag', label: 'Event-loop lag', value: `${number(r.event_loop_lag_ms)} ms`, hint: `${number(r.active_handles)} active handles`, tone: r.event_loop_lag_ms > 200 ? 'warn' : undefined },
  ];

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${DASHBOARD_REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vault-sync-operator — ${escapeHtml(statusText)}</title>
<style>
  :root { --bg:#0f172a; --panel:#111c33; --line:#24324f; --text:#e2e8f0; --muted:#94a3b8; --good:#22c55e; --warn:#f59e0b; --bad:#ef4444; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; align-items:center; justify-content:space-between; padding:16px 24px; border-bottom:1px solid var(--line); }
  h1 { font-size:18px; margin:0; font-weight:600; }
  .pill { padding:4px 12px; border-radius:999px; font-weight:600; }
  .pill.good { background:rgba(34,197,94,.15); color:var(--good); } .pill.warn { background:rgba(245,158,11,.15); color:var(--warn); } .pill.bad { background:rgba(239,68,68,.15); color:var(--bad); }
  main { padding:20px 24px; display:grid; gap:20px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(132px,1fr)); gap:12px; }
  .card { background:var(--panel); border:1px solid var(--line); border-left:4px solid var(--line); border-radius:8px; padding:12px 14px; }
  .card.good { border-left-color:var(--good); } .card.warn { border-left-color:var(--warn); } .card.bad { border-left-color:var(--bad); }
  .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .value { font-size:24px; font-weight:650; margin-top:2px; }
  .hint { color:var(--muted); font-size:12px; }
  .panels { display:grid; grid-template-columns:repeat(auto-fit,minmax(280px,1fr)); gap:12px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  h2 { font-size:13px; margin:0 0 8px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
  table { width:100%; border-collapse:collapse; } td { padding:3px 0; border-bottom:1px solid var(--line); } td.num { text-align:right; font-variant-numeric:tabular-nums; }
  .ok { color:var(--good); text-align:right; } .fail { color:var(--bad); text-align:right; } .muted { color:var(--muted); }
  .bar { height:10px; background:var(--line); border-radius:5px; overflow:hidden; margin:6px 0; }
  .fill { height:100%; } .fill.good { background:var(--good); } .fill.warn { background:var(--warn); } .fill.bad { background:var(--bad); }
  footer { padding:0 24px 20px; color:var(--muted); font-size:12px; }
  section.attention { border-left:4px solid var(--bad); }
  .count { display:inline-block; min-width:20px; padding:0 6px; margin-left:4px; border-radius:999px; background:var(--line); color:var(--text); text-align:center; }
  .panels.rate { grid-template-columns:minmax(0,2fr) minmax(260px,1fr); } @media (max-width:760px) { .panels.rate { grid-template-columns:1fr; } }
  table.grid { table-layout:auto; } table.grid th { text-align:left; color:var(--muted); font-weight:500; font-size:12px; padding:2px 10px 4px 0; border-bottom:1px solid var(--line); }
  table.grid td { padding:5px 10px 5px 0; vertical-align:top; }
  td.ns { overflow-wrap:break-word; color:var(--muted); } td.src { overflow-wrap:break-word; } td.reason { white-space:nowrap; color:var(--warn); font-weight:600; } td.when { white-space:nowrap; color:var(--muted); }
  td.msg { overflow-wrap:anywhere; color:var(--text); width:50%; }
  .kind { display:inline-block; white-space:nowrap; margin-left:6px; padding:0 5px; border:1px solid var(--line); border-radius:4px; color:var(--muted); font-size:11px; }
  .empty { margin:4px 0; } .good-text { color:var(--good); } .more { margin:6px 0 0; }
  svg.plot { width:100%; height:auto; display:block; }
  svg.plot .grid { stroke:var(--line); stroke-width:1; } svg.plot .axis { fill:var(--muted); font-size:11px; }
  svg.plot .area { fill:rgba(56,189,248,.18); } svg.plot .line { fill:none; stroke:#38bdf8; stroke-width:2; vector-effect:non-scaling-stroke; }
  svg.plot .dot { fill:#38bdf8; } svg.plot .limit { stroke:var(--bad); stroke-dasharray:6 4; stroke-width:1.5; } svg.plot .limit-label { fill:var(--bad); font-size:11px; }
</style>
</head>
<body>
<header><h1>vault-sync-operator</h1><span class="pill ${statusTone}" id="status">${escapeHtml(statusText)} · ${escapeHtml(roleText)}</span></header>
<main>
<div class="cards">${cards.map(card).join('')}</div>
<section id="not-ready" class="${problems.notReadyTotal > 0 ? 'attention' : ''}"><h2>Sources not in sync <span class="count">${number(problems.notReadyTotal)}</span></h2>${notReadyTable(problems, now)}</section>
<section id="refusals"><h2>Last refusals</h2>${refusalsTable(problems, now)}</section>
<div class="panels rate">
<section id="rate-plot"><h2>Vault requests per second, last ${Math.round(problems.rate.windowMs / 60_000)} minutes</h2>${ratePlot(problems.rate.points, problems.rate.windowMs, problems.rate.limitPerSecond, now)}${rateCaption(problems.rate.points, problems.rate.windowMs, now)}</section>
<section id="rate-limit"><h2>Vault rate limit</h2>
${bar(r.rate_limit.utilization_percent, rateTone)}
<table>
<tr><td>used, last minute</td><td class="num">${number(r.rate_limit.used_per_second)} req/s</td></tr>
<tr><td>limit · burst</td><td class="num">${number(r.rate_limit.rate_per_second)} req/s · ${number(r.rate_limit.burst)}</td></tr>
<tr><td>utilization</td><td class="num">${number(r.rate_limit.utilization_percent)} %</td></tr>
<tr><td>average wait for a token</td><td class="num">${number(r.rate_limit.average_wait_ms)} ms</td></tr>
</table></section>
</div>
<div class="panels">
<section id="syncs"><h2>Reconciles by result</h2><table>${syncRows}</table></section>
<section id="errors"><h2>Errors by type</h2><table>${errorRows}</table></section>
<section id="checks"><h2>Readiness and heartbeat</h2><table>${checkRows}
<tr><td>heartbeat</td><td class="${r.heartbeat_healthy ? 'ok' : 'fail'}" title="${escapeHtml(r.heartbeat)}">${escapeHtml(ago(r.heartbeat, now))}</td></tr>
<tr><td>last successful sync</td><td class="num" title="${escapeHtml(r.last_successful_sync ?? '')}">${escapeHtml(ago(r.last_successful_sync, now))}</td></tr>
<tr><td>Vault token TTL</td><td class="num">${r.token_ttl_seconds === null ? '—' : `${number(r.token_ttl_seconds)} s`}</td></tr>
<tr><td>large secrets · drift corrected</td><td class="num">${number(r.large_secrets)} · ${number(r.drift_corrections)}</td></tr>
<tr><td>replica</td><td class="num">${escapeHtml(r.leader_election.identity)}</td></tr>
</table></section>
</div>
</main>
<footer>Rendered ${escapeHtml(now.toISOString())}; refreshes every ${DASHBOARD_REFRESH_SECONDS} s. Also: <a href="metrics" style="color:inherit">/metrics</a> · <a href="health" style="color:inherit">/health</a> · <a href="readyz?verbose" style="color:inherit">/readyz</a></footer>
</body>
</html>
`;
}
