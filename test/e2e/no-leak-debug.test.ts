// No value through any debug channel: `DEBUG=*` (a common habit when something looks wrong) turns on every
// `debug`-module logger in the dependencies; node-vault's prints each request body. The operator runs here as
// a real process (node main.js, as in its container) with DEBUG=* and trace logs; a canary value is synced,
// then changed, and neither it nor its base64 or hex forms may appear anywhere on stdout or stderr.
import { randomBytes } from 'node:crypto';
import { freshNamespace, kubeClients, loadTestEnv } from './helpers/env.js';
import { createSecret, deploymentUsing, mergePatch, waitForVault } from './helpers/objects.js';
import { operatorArgs } from './helpers/operator.js';
import { startOperatorProcess, type OperatorProcess } from './helpers/ops.js';

test('with DEBUG=* the operator syncs a secret and its output holds no trace of the value', async () => {
  const canary = `CANARY-${randomBytes(6).toString('hex')}`;
  const changed = `${canary}-2`;
  const forms = [canary, Buffer.from(canary).toString('base64'), Buffer.from(canary).toString('hex')];
  const ns = await freshNamespace('no-leak-debug');
  const { core, apps } = kubeClients();
  let op: OperatorProcess | undefined;
  try {
    op = await startOperatorProcess('no-leak-debug', [...(await operatorArgs([ns])), '--log-level=trace'], {
      KUBECONFIG: loadTestEnv().kubeconfigPath,
      DEBUG: '*',
      DEBUG_DEPTH: '10', // objects printed in full, were any printed
    });
    await createSecret(ns, 'canary', { password: canary });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'app', { 'vault-sync.io/path': `secret/${ns}/app` }, ['canary']) });
    await waitForVault(`${ns}/app/canary`, (d) => d.data.password === canary); // the sync did happen
    await core.patchNamespacedSecret({ namespace: ns, name: 'canary', body: { stringData: { password: changed } } }, mergePatch);
    await waitForVault(`${ns}/app/canary`, (d) => d.data.password === changed);
  } finally {
    op?.kill('SIGTERM');
    await op?.exited;
  }
  const output = op!.logs();
  // Output was captured (trace logs); without node-vault's debug replaced, this test sees the canary in it.
  expect(output).toMatch(/"level":10|"msg"/);
  for (const form of forms) expect({ form, leaked: output.includes(form) }).toEqual({ form, leaked: false });
});
