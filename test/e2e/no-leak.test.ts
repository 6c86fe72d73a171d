// Nothing leaks: a canary value in Secrets that are synced, refused, conflicting, too large and binary never
// appears in the operator's logs (at trace level), Events, VaultSync objects, metrics, or errors.
import { randomBytes } from 'node:crypto';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshNamespace, kubeClients } from './helpers/env.js';
import { createSecret, deploymentUsing, mergePatch, waitForEvent, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';

test('a canary secret value never appears in logs, Events, VaultSync status, metrics or errors', async () => {
  const canary = `CANARY-${randomBytes(6).toString('hex')}`;
  const forms = [canary, Buffer.from(canary).toString('base64'), Buffer.from(canary).toString('hex')];
  const ns = await freshNamespace('no-leak');
  const logs: string[] = [];
  const { kc, core, apps } = kubeClients();
  const operator = await runOperator([ns], ['--max-secret-size=2Ki', '--large-secret-threshold=1Ki'], (line) => logs.push(line));
  try {
    await createSecret(ns, 'canary', { password: canary });
    await createSecret(ns, 'canary-twin', { password: canary });
    await createSecret(ns, 'canary-big', { blob: canary.repeat(200) });
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'canary-binary' }, data: { raw: Buffer.concat([Buffer.from([0xff]), Buffer.from(canary)]).toString('base64') } } });
    const create = (name: string, annotations: Record<string, string>, secrets: string[] = []) =>
      apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, name, annotations, secrets) });
    await create('synced', { 'vault-sync.io/path': `secret/${ns}/synced` }, ['canary', 'canary-binary']);
    await create('conflict', { 'vault-sync.io/path': `secret/${ns}/conflict`, 'vault-sync.io/secrets': '[{"name":"canary"},{"name":"canary-twin"}]' });
    await create('too-big', { 'vault-sync.io/path': `secret/${ns}/too-big`, 'vault-sync.io/secrets': '[{"name":"canary-big"}]' });
    await create('outside', { 'vault-sync.io/path': 'secret/elsewhere/x' }, ['canary']);

    await waitForVault(`${ns}/synced/canary`, (d) => d.data.password === canary); // the value does reach Vault
    await waitForEvent(ns, 'conflict', 'SyncFailed');
    await waitForEvent(ns, 'too-big', 'SyncFailed');
    await waitForEvent(ns, 'outside', 'Refused');
    await core.patchNamespacedSecret({ namespace: ns, name: 'canary', body: { stringData: { password: `${canary}-2` } } }, mergePatch);
    await waitForVault(`${ns}/synced/canary`, (d) => d.data.password === `${canary}-2`);

    const events = JSON.stringify((await core.listNamespacedEvent({ namespace: ns })).items);
    const records = JSON.stringify(await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace: ns, plural: 'vaultsyncs' }));
    const metrics = await operator.metrics.registry.metrics();
    const logText = logs.join('');
    expect(logText.length).toBeGreaterThan(0);
    expect(events).toContain('would be written by both Secret');
    for (const [where, text] of Object.entries({ logs: logText, events, records, metrics })) {
      for (const form of forms) expect({ where, leaked: text.includes(form) }).toEqual({ where, leaked: false });
    }
  } finally {
    await operator.stop();
  }
});
