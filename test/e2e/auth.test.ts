// The operator proves itself to Vault the way it does in a cluster: Kubernetes auth with a
// service-account token, which Vault checks against the real apiserver (TokenReview).
import { readFileSync } from 'node:fs';
import { freshNamespace, loadTestEnv, vaultHttp } from './helpers/env.js';
import { runOperator, writeOperatorToken } from './helpers/operator.js';

test('the operator logs in with its service-account token and gets the operator policy', async () => {
  const env = loadTestEnv();
  const tokenPath = await writeOperatorToken();
  // The same login the operator does, checked directly: the token is accepted and maps to the policy.
  const login = await vaultHttp('auth/kubernetes/login', { token: null, body: { role: env.vaultKubernetesAuth.role, jwt: readFileSync(tokenPath, 'utf8') } });
  expect(login.status).toBe(200);
  expect(login.json.auth.policies).toContain(env.vaultKubernetesAuth.policy);

  // ready resolves only after the operator's own Vault client logged in this way.
  const operator = await runOperator([await freshNamespace('auth-ok')]);
  await operator.stop();
});

test('a role Vault does not know stops start-up with a clear error naming the login, not a crash loop', async () => {
  const start = runOperator([await freshNamespace('auth-refused')], ['--vault-kubernetes-role=no-such-role']);
  await expect(start).rejects.toThrow(/Vault login auth\/kubernetes\/login failed: HTTP (400|403)/);
});
