// A real Prometheus (Debian's) scraping the operator's /metrics on loopback over TLS with the bearer token,
// with the shipped alert rules loaded; every query of the shipped Grafana dashboard runs against it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Supervisor } from '../../src/supervisor.js';
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { freePort, repoRoot, tools } from './helpers/ops.js';
import { runSupervised, selfSignedCertificate, tokenFile } from './helpers/supervised.js';

let supervisor: Supervisor;
let prometheus: ChildProcess | undefined;
let prometheusUrl: string;
let namespace: string;
const dir = mkdtempSync(join(tmpdir(), 'vso-prometheus-'));

interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function query(expr: string): Promise<QueryResult> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as QueryResult;
}

async function api(path: string): Promise<any> {
  return (await fetch(`${prometheusUrl}${path}`)).json();
}

beforeAll(async () => {
  const binary = tools.prometheus(); // fails loudly when missing
  namespace = await freshNamespace('ops-prometheus');
  const tls = selfSignedCertificate();
  const token = tokenFile('scrape-token-e2e');
  supervisor = await runSupervised([namespace], [`--metrics-tls-cert-file=${tls.certFile}`, `--metrics-tls-key-file=${tls.keyFile}`, `--metrics-bearer-token-file=${token}`]);
  const target = new URL(supervisor.server!.url).host;
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(join(repoRoot, 'deploy', 'monitoring', 'prometheus-rules.yaml'))}]`,
      'scrape_configs:',
      '  - job_name: vault-sync-operator',
      '    scheme: https',
      `    tls_config: { ca_file: ${JSON.stringify(tls.certFile)}, server_name: "127.0.0.1" }`,
      `    authorization: { type: Bearer, credentials_file: ${JSON.stringify(token)} }`,
      `    static_configs: [{ targets: [${JSON.stringify(target)}] }]`,
      // The same target without the token: the operator must refuse it.
      '  - job_name: no-token',
      '    scheme: https',
      `    tls_config: { ca_file: ${JSON.stringify(tls.certFile)}, server_name: "127.0.0.1" }`,
      `    static_configs: [{ targets: [${JSON.stringify(target)}] }]`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(binary, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  prometheus.stderr!.on('data', (chunk) => (stderr += chunk));
  await waitFor(
    async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited ${prometheus!.exitCode}: ${stderr.slice(-2000)}`);
      return (await fetch(`${prometheusUrl}/-/ready`)).ok;
    },
    { timeoutMs: 30_000, description: 'Prometheus ready' },
  );
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus!.once('exit', r));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await supervisor?.stop();
});

test('Prometheus scrapes /metrics over TLS with the bearer token; without the token it is refused', async () => {
  const { apps } = kubeClients();
  await createSecret(namespace, 'db', { password: 'prom-e2e' });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db']) });
  await waitForVault(`${namespace}/web/db`);

  const targets = await waitFor(
    async () => {
      const body = await api('/api/v1/targets');
      const active = body.data.activeTargets as Array<{ labels: { job: string }; health: string; lastError: string }>;
      return active.length === 2 && active.every((t) => t.health !== 'unknown') ? active : undefined;
    },
    { timeoutMs: 20_000, description: 'both targets scraped once' },
  );
  const byJob = Object.fromEntries(targets.map((t) => [t.labels.job, t]));
  expect(byJob['vault-sync-operator']).toMatchObject({ health: 'up', lastError: '' });
  expect(byJob['no-token'].health).toBe('down');
  expect(byJob['no-token'].lastError).toContain('401');

  // The operator's metrics (the performance guide's names included) and Node's process metrics arrive.
  const synced = await waitFor(async () => {
    const r = await query('sum(vault_sync_operations_total{job="vault-sync-operator", result="synced"})');
    return Number(r.data?.result[0]?.value[1] ?? 0) >= 1;
  }, { timeoutMs: 20_000, description: 'vault_sync_operations_total{result="synced"} >= 1 in Prometheus' });
  expect(synced).toBe(true);
  for (const name of ['vault_rate_limit_requests_total', 'vault_rate_limit_wait_duration_seconds_count', 'vault_batch_operations_total', 'vault_batch_size_histogram_count', 'vault_batch_duration_seconds_count', 'vault_large_secret_count', 'vault_memory_optimization_applied_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_active_handles_total']) {
    const r = await query(`${name}{job="vault-sync-operator"}`);
    expect({ name, found: (r.data?.result.length ?? 0) > 0 }).toEqual({ name, found: true });
  }
  expect(Number((await query('sum(vault_rate_limit_requests_total{job="vault-sync-operator"})')).data!.result[0].value[1])).toBeGreaterThan(0);
});

test('the shipped alert rules load and evaluate without errors; none fires for a healthy operator', async () => {
  const groups = await waitFor(
    async () => {
      const body = await api('/api/v1/rules');
      const all = body.data.groups as Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; state?: string; lastEvaluation: string }> }>;
      const rules = all.flatMap((g) => g.rules);
      return rules.length > 0 && rules.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
    },
    { timeoutMs: 20_000, description: 'every rule evaluated once' },
  );
  const rules = groups.flatMap((g) => g.rules);
  const fileRules = (readFileSync(join(repoRoot, 'deploy', 'monitoring', 'prometheus-rules.yaml'), 'utf8').match(/- alert: /g) ?? []).length;
  expect(rules).toHaveLength(fileRules);
  expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
  // `no-token` is down on purpose but its job name is not the operator's; the operator's own alerts stay quiet.
  // (The process alerts are left out: the operator runs inside the test runner here, whose memory and event
  // loop are the test runner's.)
  const processAlerts = ['VaultSyncHighMemory', 'VaultSyncEventLoopLag'];
  expect(rules.filter((r) => (r.state === 'firing' || r.state === 'pending') && !processAlerts.includes(r.name)).map((r) => r.name)).toEqual([]);
});

test('every query of the shipped Grafana dashboard runs against the real Prometheus', async () => {
  const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'monitoring', 'grafana-dashboard.json'), 'utf8'));
  const exprs: string[] = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
  const variables: string[] = dashboard.templating.list.filter((v: any) => v.type === 'query').map((v: any) => v.definition.replace(/^label_values\((.*), \w+\)$/, '$1'));
  const failures: string[] = [];
  let withData = 0;
  // rate() needs two samples in its window: wait for a few scrapes (Prometheus applies new targets after ~5 s).
  await waitFor(async () => Number((await query('count_over_time(up{job="vault-sync-operator"}[1m])')).data?.result[0]?.value[1] ?? 0) >= 4, {
    timeoutMs: 20_000,
    description: 'four scrapes of the operator',
  });
  for (const expr of [...exprs, ...variables]) {
    const promql = expr.replace(/\$__rate_interval/g, '1m').replace(/\$job/g, 'vault-sync-operator').replace(/\$instance/g, '.*');
    const r = await query(promql);
    if (r.status !== 'success') failures.push(`${promql}: ${r.error}`);
    else if ((r.data?.result.length ?? 0) > 0) withData++;
  }
  expect(failures).toEqual([]);
  // Most queries have data after one sync; the rest show series that need more traffic (errors, retries, drift) or leader election.
  process.stderr.write(`[ops-prometheus] ${withData} of ${exprs.length + variables.length} dashboard queries return data\n`);
  expect(withData).toBeGreaterThan((exprs.length + variables.length) / 2);
});
