// The operator running with exactly the chart's RBAC and the chart's settings: the chart is rendered and
// server-side applied; the operator gets a TokenRequest token of the chart's ServiceAccount for the
// apiserver, and a second one with the chart's Vault audience for Vault's Kubernetes auth (as the
// projected volume of its pod would); its configuration is the environment of the chart's Deployment.
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { AppsV1Api, CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startSupervisor, type Supervisor } from '../../src/supervisor.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { find, kubectlApply, renderChart, serviceAccountKubeconfig, tokenFor, writeTemp, type KubeObject } from './helpers/ops.js';

const { core, apps } = kubeClients();
const running: Supervisor[] = [];
afterAll(async () => {
  for (const s of running) await s.stop();
});

interface Installed {
  releaseNamespace: string;
  release: string;
  serviceAccount: string;
  objects: KubeObject[];
  kubeConfig: KubeConfig;
  supervisor: Supervisor;
}

/** Renders and applies the chart, then starts the operator as its pod would run, with only the chart's rights. */
async function installAndRun(scope: 'cluster' | 'namespaced', watched: string[]): Promise<Installed> {
  const env = loadTestEnv();
  const releaseNamespace = await freshNamespace(`ops-rbac-${scope}`);
  const release = `rbac-${randomBytes(3).toString('hex')}`;
  const objects = renderChart(release, releaseNamespace, [
    '--set', `vault.address=${env.vaultAddr}`,
    '--set', `rbac.scope=${scope}`,
    '--set', `watchNamespaces={${watched.join(',')}}`,
    '--set', `vault.auth.kubernetes.role=${release}`,
    '--set', 'clusterName=e2e-rbac',
  ]);
  kubectlApply(objects.map((o) => stringify(o)).join('---\n'));
  const deployment = find(objects, 'Deployment');
  const serviceAccount: string = deployment.spec.template.spec.serviceAccountName;
  const audience: string = deployment.spec.template.spec.volumes.find((v: any) => v.name === 'vault-token').projected.sources[0].serviceAccountToken.audience;

  // Vault: a Kubernetes-auth role for this release's ServiceAccount, bound to the chart's token audience.
  const role = await vaultHttp(`auth/kubernetes/role/${release}`, {
    body: { bound_service_account_names: [serviceAccount], bound_service_account_namespaces: [releaseNamespace], audience, token_policies: [env.vaultKubernetesAuth.policy], token_ttl: '1h' },
  });
  expect(role.status).toBe(204);

  // What the pod would have: the apiserver token of its ServiceAccount, and the projected Vault token.
  const { kubeConfig } = await serviceAccountKubeconfig(releaseNamespace, serviceAccount);
  const vaultTokenPath = writeTemp('token', await tokenFor(releaseNamespace, serviceAccount, [audience]));
  const podEnv: NodeJS.ProcessEnv = {};
  for (const e of deployment.spec.template.spec.containers[0].env) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') podEnv[e.name] = `${release}-pod-0`;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') podEnv[e.name] = releaseNamespace;
    else podEnv[e.name] = e.value;
  }
  expect(podEnv.VAULT_KUBERNETES_TOKEN_PATH).toBe('/var/run/secrets/vault-sync/vault-token/token');
  podEnv.VAULT_KUBERNETES_TOKEN_PATH = vaultTokenPath; // the projected volume's mount, here a file
  podEnv.METRICS_PORT = '0'; // tests run side by side
  podEnv.METRICS_BIND_ADDRESS = '127.0.0.1';
  const config = loadConfig([], podEnv);
  expect(config.leaderElection).toMatchObject({ enabled: true, namespace: releaseNamespace, leaseName: `${release}-vault-sync-operator` });

  const supervisor = await startSupervisor(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'), { kubeConfig });
  running.push(supervisor);
  await waitFor(async () => (await fetch(`${supervisor.server!.url}/readyz`)).status === 200 && supervisor.leadership().role === 'leader', {
    timeoutMs: 30_000,
    description: `the operator of release ${release} leading and ready (readyz: ${supervisor.server!.url}/readyz)`,
  });
  return { releaseNamespace, release, serviceAccount, objects, kubeConfig, supervisor };
}

/** An annotated Deployment using a Secret is synced, recorded, reported, and cleaned up on deletion. */
async function expectTheOperatorDoesItsJob(installed: Installed, namespace: string) {
  const path = `${namespace}/web`;
  await createSecret(namespace, 'db', { username: 'app', password: `pw-${randomBytes(4).toString('hex')}` });
  await apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${path}` }, ['db']) });
  const synced = await waitForVault(`${path}/db`);
  expect(Object.keys(synced.data).sort()).toEqual(['password', 'username']);
  const meta = await vaultHttp(`secret/metadata/${path}/db`);
  expect(meta.json.data.custom_metadata).toMatchObject({ 'managed-by': 'vault-sync-operator', cluster: 'e2e-rbac' });

  // The finalizer (patch), the VaultSync record (create, status), an Event (create): all under the chart's RBAC.
  await waitFor(async () => (await apps.readNamespacedDeployment({ namespace, name: 'web' })).metadata?.finalizers?.includes('vault-sync.io/finalizer'), { description: 'the finalizer on the Deployment' });
  const events = await waitFor(async () => (await core.listNamespacedEvent({ namespace })).items.filter((e) => e.reason === 'Synced').length > 0, { description: 'a Synced Event' });
  expect(events).toBe(true);
  // Leader election and the hash key live in the release namespace.
  const lease = await kubeClients().kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: installed.releaseNamespace, name: `${installed.release}-vault-sync-operator` });
  expect(lease.spec?.holderIdentity).toBe(`${installed.release}-pod-0`);
  await core.readNamespacedSecret({ namespace: installed.releaseNamespace, name: `${installed.release}-vault-sync-operator-hash-key` });

  // Deleting the Deployment removes the Vault data, then the finalizer.
  await apps.deleteNamespacedDeployment({ namespace, name: 'web' });
  await waitFor(async () => (await vaultHttp(`secret/metadata/${path}/db`)).status === 404, { description: `secret/${path}/db deleted from Vault` });
  await waitFor(async () => {
    try {
      await apps.readNamespacedDeployment({ namespace, name: 'web' });
      return false;
    } catch (error) {
      return (error as { code?: number }).code === 404;
    }
  }, { description: 'the Deployment gone (finalizer released)' });
}

const statusOf = async (call: () => Promise<unknown>): Promise<number> => {
  try {
    await call();
    return 200;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
};

test('cluster scope: with exactly the chart\'s ClusterRole the operator syncs, records, reports and cleans up', async () => {
  const team = await freshNamespace('ops-rbac-team');
  const installed = await installAndRun('cluster', [team]);
  await expectTheOperatorDoesItsJob(installed, team);
  // The ClusterRole grants the reads across namespaces that a cluster-wide install needs.
  const sa = installed.kubeConfig.makeApiClient(CoreV1Api);
  expect(await statusOf(() => sa.listSecretForAllNamespaces({ limit: 1 }))).toBe(200);
  // ...and nothing it does not need.
  expect(await statusOf(() => sa.listNode())).toBe(403);
  expect(await statusOf(() => sa.createNamespace({ body: { metadata: { name: `${team}-x` } } }))).toBe(403);
});

test('namespaced scope: the operator syncs in its namespace and cannot read Secrets outside its scope', async () => {
  const team = await freshNamespace('ops-rbac-ns-team');
  const other = await freshNamespace('ops-rbac-ns-other');
  await createSecret(other, 'not-yours', { token: 'do-not-read' });
  const installed = await installAndRun('namespaced', [team]);
  await expectTheOperatorDoesItsJob(installed, team);

  const sa = installed.kubeConfig.makeApiClient(CoreV1Api);
  const saApps = installed.kubeConfig.makeApiClient(AppsV1Api);
  expect(await statusOf(() => sa.readNamespacedSecret({ namespace: team, name: 'db' }))).toBe(200);
  expect(await statusOf(() => sa.readNamespacedSecret({ namespace: other, name: 'not-yours' }))).toBe(403);
  expect(await statusOf(() => sa.listNamespacedSecret({ namespace: other }))).toBe(403);
  expect(await statusOf(() => sa.listSecretForAllNamespaces({ limit: 1 }))).toBe(403);
  expect(await statusOf(() => saApps.listNamespacedDeployment({ namespace: other }))).toBe(403);
  expect(await statusOf(() => sa.readNamespace({ name: other }))).toBe(403);
  expect(await statusOf(() => sa.readNamespace({ name: team }))).toBe(200);
  // In its own namespace it reads only its hash-key Secret, no other.
  expect(await statusOf(() => sa.listNamespacedSecret({ namespace: installed.releaseNamespace }))).toBe(403);
});
