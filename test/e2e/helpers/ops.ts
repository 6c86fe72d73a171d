// Helpers for the operations tests (ops-*.test.ts): the chart, tools installed by .ci/run, operator
// processes, service-account credentials.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { binaryPaths } from '../../../testenv/binaries.js';
import { buildOperator } from './build.js';
import { loadTestEnv, waitFor } from './env.js';
import { loadKubeConfig } from '../../../src/kube/kube-config.js';

export const repoRoot = resolve(process.cwd());
export const chartDir = join(repoRoot, 'helm', 'vault-sync-operator');

/**
 * A tool the project's scripts install (.ci/run: apt-get install prometheus chromium). Missing = the test
 * fails and says how to get it: never a silent skip.
 */
export function requireTool(path: string, howToInstall: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`${path} is missing: ${howToInstall} (.ci/run installs it)`);
  }
}

export const tools = {
  helm: () => requireTool(binaryPaths().helm, 'bash scripts/testenv/build-binaries.sh all'),
  kubectl: () => requireTool(binaryPaths().kubectl, 'bash scripts/testenv/build-binaries.sh all'),
  promtool: () => requireTool('/usr/bin/promtool', 'apt-get install -y prometheus'),
  prometheus: () => requireTool('/usr/bin/prometheus', 'apt-get install -y prometheus'),
  chromium: () => requireTool('/usr/bin/chromium', 'apt-get install -y chromium'),
};

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): RunResult {
  const r = spawnSync(command, args, { encoding: 'utf8', input: options.input, env: options.env ?? process.env, cwd: options.cwd ?? repoRoot, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  // helm warns on stderr about the crds/ link to ../../crds (it follows it, which is the point).
  const stderr = r.stderr.split('\n').filter((l) => !l.includes('found symbolic link in path')).join('\n').trim();
  return { status: r.status, stdout: r.stdout, stderr };
}

export function runOk(command: string, args: string[], options: Parameters<typeof run>[2] = {}): string {
  const r = run(command, args, options);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${r.stderr}\n${r.stdout}`.slice(0, 8000));
  return r.stdout;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

/** `helm template` of the chart with --set / --set-json arguments, parsed. */
export function renderChart(release: string, namespace: string, args: string[], options: { includeCrds?: boolean } = {}): KubeObject[] {
  const out = runOk(tools.helm(), ['template', release, chartDir, '--namespace', namespace, ...(options.includeCrds ? ['--include-crds'] : []), ...args]);
  return parseYamlDocs(out);
}

export function parseYamlDocs(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`invalid YAML: ${d.errors[0].message}`);
      return d.toJS() as KubeObject | null;
    })
    .filter((o): o is KubeObject => !!o && typeof o === 'object' && 'kind' in o);
}

export function find(objects: KubeObject[], kind: string, name?: string, namespace?: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name) && (namespace === undefined || o.metadata.namespace === namespace));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''}${namespace ? ` in ${namespace}` : ''} among: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** Server-side apply with the admin kubeconfig of the test environment. */
export function kubectlApply(manifests: string, extra: string[] = []): string {
  return runOk(tools.kubectl(), ['--kubeconfig', loadTestEnv().kubeconfigPath, 'apply', '--server-side', '--force-conflicts', '-f', '-', ...extra], { input: manifests });
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolvePort(port));
    });
  });
}

/** A TokenRequest token for a ServiceAccount, with the given audiences (default: the apiserver's). */
export async function tokenFor(namespace: string, name: string, audiences: string[] = [], expirationSeconds = 3600): Promise<string> {
  const kc = loadKubeConfig(loadTestEnv().kubeconfigPath);
  const r = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences, expirationSeconds } } });
  if (!r.status?.token) throw new Error(`no token for ${namespace}/${name}`);
  return r.status.token;
}

/** A kubeconfig file that authenticates as the ServiceAccount (as the in-cluster config of its pod would). */
export async function serviceAccountKubeconfig(namespace: string, name: string): Promise<{ path: string; kubeConfig: KubeConfig }> {
  const env = loadTestEnv();
  const token = await tokenFor(namespace, name);
  const dir = mkdtempSync(join(tmpdir(), 'vso-sa-kubeconfig-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: env.apiServerUrl, 'certificate-authority': env.caCertPath } }],
      users: [{ name: `${namespace}-${name}`, user: { token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: `${namespace}-${name}`, namespace } }],
      'current-context': 'e2e',
    }),
    { mode: 0o600 },
  );
  const kubeConfig = loadKubeConfig(path);
  return { path, kubeConfig };
}

export function writeTemp(name: string, content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'vso-ops-')), name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

export interface OperatorProcess {
  name: string;
  proc: ChildProcess;
  url: string;
  logPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  health(): Promise<any>;
  metricsText(): Promise<string>;
  /** Sum of a metric's samples in /metrics whose labels contain every given `k="v"`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  logs(): string;
  kill(signal: NodeJS.Signals): void;
}

/** Runs the operator as a real process (`node main.js`, as in its container), logging to a file. */
export async function startOperatorProcess(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<OperatorProcess> {
  const port = await freePort();
  const logPath = join(mkdtempSync(join(tmpdir(), `vso-${name}-`)), 'operator.log');
  const log = createWriteStream(logPath);
  const proc = spawn(process.execPath, [buildOperator(), `--metrics-port=${port}`, '--metrics-bind-address=127.0.0.1', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, POD_NAME: name, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const metricsText = async () => (await fetch(`${url}/metrics`)).text();
  const op: OperatorProcess = {
    name,
    proc,
    url,
    logPath,
    exited,
    health: async () => (await fetch(`${url}/health`)).json(),
    metricsText,
    metric: async (metric, labels = {}) => sumMetric(await metricsText(), metric, labels),
    logs: () => readFileSync(logPath, 'utf8'),
    kill: (signal) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`operator ${name} exited with ${proc.exitCode}: ${op.logs().slice(-2000)}`);
      return (await fetch(`${url}/healthz`)).ok;
    },
    { timeoutMs: 20_000, description: `operator process ${name} serving ${url}/healthz` },
  );
  return op;
}

export function sumMetric(text: string, metric: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== metric) continue;
    if (!Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) continue;
    total += Number(m[3]);
  }
  return total;
}
