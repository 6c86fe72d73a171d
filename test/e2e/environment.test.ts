// The e2e environment itself: a real apiserver, a real Vault KV v2, and Vault's Kubernetes auth doing a real
// TokenReview against that apiserver. If this file fails, every other e2e result is meaningless.
import { serviceAccountToken } from '../../testenv/environment.js';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp } from './helpers/env.js';

describe('e2e environment', () => {
  const env = loadTestEnv();

  test('the apiserver stores and returns a ConfigMap', async () => {
    const { core } = kubeClients();
    const namespace = await freshNamespace('env-check');
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'probe' }, data: { hello: 'world' } } });
    const cm = await core.readNamespacedConfigMap({ namespace, name: 'probe' });
    expect(cm.data).toEqual({ hello: 'world' });
  });

  test('Vault KV v2 at secret/ writes and reads over HTTP', async () => {
    const path = `env-check/${Date.now()}`;
    const w = await vaultHttp(`secret/data/${path}`, { body: { data: { user: 'alice', password: 's3cret' } } });
    expect(w.status).toBe(200);
    expect(w.json.data.version).toBe(1);
    const r = await vaultHttp(`secret/data/${path}`);
    expect(r.status).toBe(200);
    expect(r.json.data.data).toEqual({ user: 'alice', password: 's3cret' });
  });

  test('Kubernetes auth: a TokenRequest token of the operator service account logs in with the operator policy', async () => {
    const { role, serviceAccount, policy, mount } = env.vaultKubernetesAuth;
    const jwt = await serviceAccountToken(env.kubeconfigPath, serviceAccount.namespace, serviceAccount.name, 600);
    const login = await vaultHttp(`auth/${mount}/login`, { token: null, body: { role, jwt } });
    expect(login.status).toBe(200);
    expect(login.json.auth.policies).toContain(policy);
    expect(login.json.auth.metadata.service_account_name).toBe(serviceAccount.name);

    // The token works within the policy (KV data) and not outside it (policy admin).
    const token = login.json.auth.client_token as string;
    const write = await vaultHttp('secret/data/env-check/with-operator-token', { token, body: { data: { a: '1' } } });
    expect(write.status).toBe(200);
    const forbidden = await vaultHttp('sys/policies/acl/anything', { token, method: 'PUT', body: { policy: '' } });
    expect(forbidden.status).toBe(403);
  });

  test('Kubernetes auth refuses a garbage JWT and a token of another service account', async () => {
    const { role, mount } = env.vaultKubernetesAuth;
    const garbage = await vaultHttp(`auth/${mount}/login`, { token: null, body: { role, jwt: 'not-a-jwt' } });
    expect([400, 403]).toContain(garbage.status);
    expect(garbage.json.auth ?? null).toBeNull();

    // A genuine token, but of a service account the role is not bound to.
    const namespace = await freshNamespace('env-check-sa');
    await kubeClients().core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'intruder' } } });
    const jwt = await serviceAccountToken(env.kubeconfigPath, namespace, 'intruder', 600);
    const other = await vaultHttp(`auth/${mount}/login`, { token: null, body: { role, jwt } });
    expect(other.status).toBe(403);
    expect(other.json.auth ?? null).toBeNull();
  });
});
