// /readyz follows the Vault token: ready while the operator holds a usable token, not ready (naming the
// check) once it expired and cannot be renewed; /healthz stays 200 whatever Vault does.
import { freshNamespace, vaultHttp, waitFor } from './helpers/env.js';
import { runSupervised } from './helpers/supervised.js';

test('readiness drops when the Vault token expires without renewal, liveness does not', async () => {
  const created = await vaultHttp('auth/token/create', { body: { policies: ['vault-sync-operator'], ttl: '4s', renewable: false, no_parent: true } });
  expect(created.status).toBe(200);
  const supervisor = await runSupervised([await freshNamespace('readiness')], ['--vault-auth-method=token', `--vault-token=${created.json.auth.client_token}`]);
  try {
    const url = supervisor.server!.url;
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { timeoutMs: 20000, description: '/readyz 200 with a fresh token' });
    const notReady = await waitFor(async () => {
      const res = await fetch(`${url}/readyz`);
      return res.status === 503 ? await res.text() : undefined;
    }, { timeoutMs: 20000, description: '/readyz 503 after the token expired' });
    expect(notReady).toContain('vault-authenticated');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  } finally {
    await supervisor.stop();
  }
});
