// Small builders and readers shared by the end-to-end tests.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Deployment, type V1PodSpec } from '@kubernetes/client-node';
import { kubeClients, vaultHttp, waitFor } from './env.js';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function deploymentUsing(namespace: string, name: string, annotations: Record<string, string>, secretNames: string[], extra: Partial<V1PodSpec> = {}): V1Deployment {
  return {
    metadata: { name, namespace, annotations },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: 'example/app:1', envFrom: secretNames.map((s) => ({ secretRef: { name: s } })) }], ...extra },
      },
    },
  };
}

export async function createSecret(namespace: string, name: string, stringData: Record<string, string>, annotations?: Record<string, string>) {
  await kubeClients().core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace, annotations }, stringData } });
}

export type KvRead = { data: Record<string, string>; metadata: { version: number } };

export async function vaultRead(path: string): Promise<KvRead | undefined> {
  const res = await vaultHttp(`secret/data/${path}`);
  return res.status === 200 ? res.json.data : undefined;
}

export async function vaultExists(path: string): Promise<boolean> {
  return (await vaultHttp(`secret/metadata/${path}`)).status === 200;
}

export function waitForVault(path: string, check: (d: KvRead) => boolean = () => true, description = `secret/${path} in Vault`): Promise<KvRead> {
  return waitFor(async () => {
    const d = await vaultRead(path);
    return d && check(d) ? d : undefined;
  }, { timeoutMs: 20000, description });
}

export async function eventsOf(namespace: string, objectName: string, reason?: string) {
  const list = await kubeClients().core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${objectName}` });
  return list.items.filter((e) => !reason || e.reason === reason);
}

export function waitForEvent(namespace: string, objectName: string, reason: string) {
  return waitFor(async () => (await eventsOf(namespace, objectName, reason))[0], { timeoutMs: 20000, description: `a ${reason} Event on ${namespace}/${objectName}` });
}

/** The status of a source's VaultSync record (undefined while there is none). */
export async function vaultSyncStatus(namespace: string, name: string): Promise<any> {
  const custom = kubeClients().kc.makeApiClient(CustomObjectsApi);
  const object = (await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace, plural: 'vaultsyncs', name }).catch(() => undefined)) as any;
  return object?.status;
}

/** The Ready condition of a VaultSync status. */
export const readyCondition = (status: any) => status?.conditions?.find((c: any) => c.type === 'Ready');
