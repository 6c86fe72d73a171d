// DRY_RUN is built by the same factory as the reconciler's decisions (ADR 0007), so it knows each mount's KV
// version: on a KV v1 mount, where the ownership marks live in the data and a "metadata" read would return the
// data, it reads nothing in Vault and says the ownership is unchecked. OpenBao's audit log is the judge.
import { randomBytes } from 'node:crypto';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startOperator, type RunningOperator } from '../../src/operator.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing } from './helpers/objects.js';
import { auditMark, requestsSince } from './helpers/vault-audit.js';

const { kc, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);

test('DRY_RUN of a source on a KV v1 mount plans without a single read of that mount (its marks live in the data)', async () => {
  const env = loadTestEnv();
  const suffix = randomBytes(3).toString('hex');
  const kv1 = `kv1-dry-${suffix}`;
  const ns = await freshNamespace('dry-kv1');
  expect((await vaultHttp(`sys/mounts/${kv1}`, { body: { type: 'kv', options: { version: '1' } } })).status).toBe(204);
  // Something is already there: a data read would return it.
  expect((await vaultHttp(`${kv1}/${ns}/web/db`, { body: { by: 'hand' } })).status).toBe(204);
  const policy = `path "${kv1}/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n`;
  expect((await vaultHttp(`sys/policies/acl/dry-${suffix}`, { method: 'PUT', body: { policy } })).status).toBe(204);
  const created = await vaultHttp('auth/token/create', { body: { policies: [env.vaultKubernetesAuth.policy, `dry-${suffix}`], display_name: `dry-${suffix}`, ttl: '1h' } });
  const token = created.json?.auth?.client_token as string;
  const config = loadConfig(
    [`--vault-addr=${env.vaultAddr}`, '--vault-auth-method=token', `--vault-token=${token}`, `--watch-namespaces=${ns}`, '--cluster-name=e2e', `--vault-kv-mounts=secret,${kv1}`, `--tenant-path-template=${kv1}/{namespace}/`, '--dry-run=true'],
    { KUBECONFIG: env.kubeconfigPath },
  );
  process.env.KUBECONFIG = env.kubeconfigPath;
  await createSecret(ns, 'db', { password: 'dry-kv1-value' });
  const mark = auditMark();
  const operator: RunningOperator = startOperator(config, createLogger(process.env.VSO_TEST_LOG_LEVEL ?? 'warn'));
  try {
    await operator.ready;
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'web', { 'vault-sync.io/path': `${kv1}/${ns}/web` }, ['db']) });
    const planned = await waitFor(
      async () => {
        const object = (await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace: ns, plural: 'vaultsyncs', name: 'deployment-web' }).catch(() => undefined)) as
          | { status?: { conditions?: Array<{ type: string; reason?: string; message?: string }> } }
          | undefined;
        return object?.status?.conditions?.find((c) => c.type === 'Planned');
      },
      { description: 'the Planned condition of web' },
    );
    expect(planned).toMatchObject({ reason: 'ChangesPending', message: `not synced yet; would update ${kv1}/${ns}/web/db` });
    const mine = requestsSince(mark).filter((r) => r.displayName === `token-dry-${suffix}`);
    expect(mine.map((r) => r.path)).toContain(`sys/internal/ui/mounts/${kv1}`); // the filter sees this operator's requests
    expect(mine.filter((r) => r.path.startsWith(`${kv1}/`))).toEqual([]);
  } finally {
    await operator.stop();
  }
});
