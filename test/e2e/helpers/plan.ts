// Helpers for the plan tests: a read-only Kubernetes identity, a read-only Vault token, and `plan` run as the
// real binary (`node main.js plan`) with them.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { PlanReport } from '../../../src/plan/report.js';
import { buildOperator } from './build.js';
import { kubeClients, loadTestEnv, vaultHttp } from './env.js';
import { serviceAccountKubeconfig } from './ops.js';

/**
 * A ServiceAccount bound to a ClusterRole with only get/list/watch on what plan reads: every write it might
 * attempt (a finalizer, a VaultSync, an Event, the hash key) is forbidden by the apiserver.
 */
export async function readOnlyKubeconfig(namespace: string): Promise<string> {
  const { kc, core } = kubeClients();
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const name = `plan-readonly-${randomBytes(3).toString('hex')}`;
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name, namespace } } });
  const read = ['get', 'list', 'watch'];
  await rbac.createClusterRole({
    body: {
      metadata: { name },
      rules: [
        { apiGroups: ['apps'], resources: ['deployments'], verbs: read },
        { apiGroups: [''], resources: ['secrets'], verbs: read },
        { apiGroups: ['vault-sync.io'], resources: ['vaultsyncs', 'vaultsyncpolicies'], verbs: read },
      ],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  });
  return (await serviceAccountKubeconfig(namespace, name)).path;
}

/** A Vault token whose only grant is `read` on secret/metadata/* (plus Vault's default policy: lookup-self). */
export async function metadataReadOnlyToken(): Promise<string> {
  const policy = `plan-metadata-read-${randomBytes(3).toString('hex')}`;
  const put = await vaultHttp(`sys/policies/acl/${policy}`, { method: 'PUT', body: { policy: 'path "secret/metadata/*" {\n  capabilities = ["read"]\n}\n' } });
  if (put.status !== 204) throw new Error(`could not write the Vault policy ${policy}: HTTP ${put.status}`);
  const token = await vaultHttp('auth/token/create', { body: { policies: [policy], ttl: '1h' } });
  const id = token.json?.auth?.client_token;
  if (typeof id !== 'string') throw new Error(`no token with policy ${policy}: HTTP ${token.status}`);
  return id;
}

export interface PlanRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Parsed stdout when run with --output json. */
  report?: PlanReport;
}

/** Runs `node main.js plan ...` as a separate process, with only the environment given (no admin credentials). */
export function runPlan(args: string[], env: Record<string, string>): Promise<PlanRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [buildOperator(), 'plan', ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : null) : 0;
        if (error && code === null) return reject(new Error(`plan did not finish: ${error.message}\n${stderr}`));
        let report: PlanReport | undefined;
        if (args.includes('--output=json')) {
          try {
            report = JSON.parse(stdout) as PlanReport;
          } catch {
            return reject(new Error(`plan --output=json printed no JSON (exit ${code}):\n${stdout}\n${stderr}`));
          }
        }
        resolve({ code, stdout, stderr, report });
      },
    );
  });
}

/** The environment plan runs with: the read-only identities, one namespace, the e2e cluster name. */
export function planEnv(kubeconfigPath: string, vaultToken: string, namespaces: string[]): Record<string, string> {
  return {
    KUBECONFIG: kubeconfigPath,
    VAULT_ADDR: loadTestEnv().vaultAddr,
    VAULT_TOKEN: vaultToken,
    WATCH_NAMESPACES: namespaces.join(','),
    CLUSTER_NAME: 'e2e',
  };
}

export function sourceOf(report: PlanReport, kind: string, name: string) {
  const found = report.sources.find((s) => s.kind === kind && s.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the plan: ${report.sources.map((s) => `${s.kind}/${s.name}`).join(', ')}`);
  return found;
}
