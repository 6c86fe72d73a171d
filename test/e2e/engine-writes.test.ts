// Vault writes per change, counted in OpenBao's audit log: by default a change is the check-and-set data
// write alone; with the content hash in custom_metadata (opt-in) also the metadata write (docs/adr/0003).
import { freshNamespace, kubeClients, vaultHttp, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, mergePatch, waitForVault } from './helpers/objects.js';
import { runOperator } from './helpers/operator.js';
import { auditMark, isDataRead, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

const { core, apps } = kubeClients();

async function writesForOneChange(extraArgs: string[]) {
  const ns = await freshNamespace('writes');
  const operator = await runOperator([ns], extraArgs);
  try {
    await createSecret(ns, 'db', { password: 'one' });
    await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, 'app', { 'vault-sync.io/path': `secret/${ns}/app` }, ['db']) });
    await waitForVault(`${ns}/app/db`);
    // The first sync is over when its marks (and, opted in, the content hash) have landed too: they go after the
    // data, below it in the fair line, and a marks write counted after the mark would be the first sync's.
    const hashToo = extraArgs.includes('--content-hash-in-metadata=true');
    await waitFor(async () => {
      const marks = (await vaultHttp(`secret/metadata/${ns}/app/db`)).json?.data?.custom_metadata;
      return marks?.['managed-by'] === 'vault-sync-operator' && (!hashToo || marks?.['content-hash'] !== undefined);
    }, { timeoutMs: 20_000, description: `the first sync's marks on secret/${ns}/app/db` });
    const mark = auditMark();
    await core.patchNamespacedSecret({ namespace: ns, name: 'db', body: { stringData: { password: 'two' } } }, mergePatch);
    await waitForVault(`${ns}/app/db`, (d) => d.data.password === 'two');
    const requests = kvRequestsSince(mark, ns);
    const metadata = (await vaultHttp(`secret/metadata/${ns}/app/db`)).json.data.custom_metadata;
    return { ns, writes: requests.filter(isWrite).map((r) => r.path), reads: requests.filter((r) => !isWrite(r)).length, dataReads: requests.filter(isDataRead).length, metadata };
  } finally {
    await operator.stop();
  }
}

test('CONTENT_HASH_IN_METADATA=true: a change is two writes (data with check-and-set, then the metadata with the new content hash), no read', async () => {
  const { ns, writes, reads, metadata } = await writesForOneChange(['--content-hash-in-metadata=true']);
  expect(writes).toEqual([`secret/data/${ns}/app/db`, `secret/metadata/${ns}/app/db`]);
  expect(reads).toBe(0);
  expect(metadata['content-hash']).toMatch(/^hmac-sha256:/);
});

test('default: a change is exactly one Vault write and no read; ownership marks stay', async () => {
  const { ns, writes, reads, metadata } = await writesForOneChange([]);
  expect(writes).toEqual([`secret/data/${ns}/app/db`]);
  expect(reads).toBe(0);
  expect(metadata['content-hash']).toBeUndefined();
  expect(metadata).toMatchObject({ 'managed-by': 'vault-sync-operator', 'source-kind': 'Deployment', 'source-name': 'app' });
});
