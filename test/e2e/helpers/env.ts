// Helpers for e2e tests: the environment started by global-setup.ts, clients for it, polling.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { LocalEnvironmentInfo } from '../../../testenv/environment.js';
import { loadKubeConfig } from '../../../src/kube/kube-config.js';

export type TestEnv = LocalEnvironmentInfo;

let cached: TestEnv | undefined;

/** The environment of this run (env.json written by startEnvironment, path exported by globalSetup). */
export function loadTestEnv(): TestEnv {
  if (cached) return cached;
  const path = process.env.VSO_E2E_ENV_JSON;
  if (!path) throw new Error('VSO_E2E_ENV_JSON is not set: run e2e tests through jest --selectProjects e2e (globalSetup starts the environment)');
  cached = JSON.parse(readFileSync(path, 'utf8')) as TestEnv;
  return cached;
}

const serverNames = { openbao: 'OpenBao', vault: 'HashiCorp Vault' } as const;

/**
 * `test`, except on the one Vault server (`VSO_BAO_BIN`: OpenBao by default, or HashiCorp Vault) that lacks
 * a feature the test needs: there the test is excluded by name (jest counts it as skipped) and the reason is
 * printed, so a run against that server says what it did not check. Everywhere else it runs as usual.
 */
export function testExceptOn(product: 'openbao' | 'vault', reason: string): jest.It {
  const server = loadTestEnv().vaultServer;
  if (server.product !== product) return test;
  const excluded = ((name: string, fn?: jest.ProvidesCallback, timeout?: number) => {
    process.stderr.write(`[e2e] NOT RUN on ${serverNames[product]} ${server.version}: "${name}": ${reason}\n`);
    test.skip(name, fn, timeout);
  }) as jest.It;
  return excluded;
}

/** Admin clients for the test apiserver (client-node takes the CA from the kubeconfig). */
export function kubeClients(): { kc: KubeConfig; core: CoreV1Api; apps: AppsV1Api } {
  const kc = loadKubeConfig(loadTestEnv().kubeconfigPath);
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

export interface VaultInit {
  method?: string;
  /** Serialized as JSON unless already a string. */
  body?: unknown;
  /** Defaults to the root token; null sends no token (e.g. for auth/kubernetes/login). */
  token?: string | null;
  headers?: Record<string, string>;
}

/**
 * Raw HTTP call to Vault: `path` is relative to /v1 ("secret/data/x") or absolute ("/v1/sys/health").
 * Never throws on an HTTP error status: tests assert on it. json is null for an empty body.
 */
export async function vaultHttp(path: string, init: VaultInit = {}): Promise<{ status: number; json: any }> {
  const env = loadTestEnv();
  const url = `${env.vaultAddr}${path.startsWith('/') ? path : `/v1/${path}`}`;
  const token = init.token === undefined ? env.vaultRootToken : init.token;
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(token ? { 'X-Vault-Token': token } : {}),
      ...(init.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

/**
 * Creates a uniquely named namespace and returns its name. Use one per test: without a controller-manager,
 * deleted namespaces stay Terminating forever, so names are never reused.
 */
export async function freshNamespace(prefix: string): Promise<string> {
  const suffix = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const base = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '') || 'ns';
  const name = `${base.slice(0, 63 - suffix.length - 1)}-${suffix}`;
  await kubeClients().core.createNamespace({ body: { metadata: { name, labels: { 'vso-e2e': 'true' } } } });
  return name;
}

/**
 * Polls fn until it returns a truthy value (returned). On timeout, fails with the description and the last
 * value or error, so a failing wait says what it was waiting for and what it saw.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 30_000, intervalMs = 200, description }: { timeoutMs?: number; intervalMs?: number; description: string },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      last = await fn();
      lastError = undefined;
      if (last) return last as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastError !== undefined
        ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
        : `last value: ${safeJson(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}; ${seen}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  } catch {
    return String(v);
  }
}
