import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/**
 * The HMAC key of content hashes, kept in a Secret of the operator's namespace so that hashes recorded
 * before a restart (VaultSync status, Vault custom_metadata) still compare equal after it. Created with 32
 * random bytes on first start; when two replicas race, the loser reads the winner's key.
 */
export async function loadOrCreateHashKey(kubeConfig: KubeConfig, namespace: string, name: string): Promise<Buffer> {
  const existing = await readHashKey(kubeConfig, namespace, name);
  if (existing) return existing;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  try {
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'vault-sync-operator', 'app.kubernetes.io/component': 'hash-key' } },
        type: 'Opaque',
        data: { key: randomBytes(32).toString('base64') },
      },
    });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
  }
  const created = await readHashKey(kubeConfig, namespace, name);
  if (!created) throw new Error(`Secret ${namespace}/${name} vanished right after it was created`);
  return created;
}

/** The key, read only (`plan` writes nothing); undefined when the operator has not created it yet. */
export async function readHashKey(kubeConfig: KubeConfig, namespace: string, name: string): Promise<Buffer | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  let secret;
  try {
    secret = await core.readNamespacedSecret({ namespace, name });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
  const key = secret.data?.key;
  if (!key) throw new Error(`Secret ${namespace}/${name} has no "key" entry; delete it to have a new key generated`);
  return Buffer.from(key, 'base64');
}
