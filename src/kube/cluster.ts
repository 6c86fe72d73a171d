import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { FINALIZER } from './annotations.js';
import type { SlimMeta, SourceKind } from './objects.js';

/** The Kubernetes writes and reads the reconciler needs, beyond the watch caches. */
export class ClusterClient {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
  }

  /** A Secret's raw bytes, read only when a write is due; undefined when it does not exist. */
  async readSecretData(namespace: string, name: string): Promise<Record<string, Uint8Array> | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      const data: Record<string, Uint8Array> = {};
      for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, 'base64');
      return data;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  /** True while a namespace is being deleted (or is gone). Unknown (no permission) counts as active. */
  async namespaceIsTerminating(namespace: string): Promise<boolean> {
    try {
      const ns = await this.core.readNamespace({ name: namespace });
      return ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp !== undefined;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === 404) return true;
      if (code === 403) return false;
      throw error;
    }
  }

  async addFinalizer(kind: SourceKind, object: SlimMeta): Promise<void> {
    if (object.finalizers.includes(FINALIZER)) return;
    await this.patchFinalizers(kind, object, [...object.finalizers, FINALIZER]);
  }

  async removeFinalizer(kind: SourceKind, object: SlimMeta): Promise<void> {
    if (!object.finalizers.includes(FINALIZER)) return;
    await this.patchFinalizers(kind, object, object.finalizers.filter((f) => f !== FINALIZER));
  }

  /** A merge patch that carries the resourceVersion, so a concurrent change makes it fail (409) and retry. */
  private async patchFinalizers(kind: SourceKind, object: SlimMeta, finalizers: string[]): Promise<void> {
    const body = { metadata: { finalizers, resourceVersion: object.resourceVersion } };
    const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const request = { namespace: object.namespace, name: object.name, body };
    if (kind === 'Deployment') await this.apps.patchNamespacedDeployment(request, options);
    else await this.core.patchNamespacedSecret(request, options);
  }

  async createEvent(kind: SourceKind, object: SlimMeta, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: object.namespace,
      body: {
        metadata: { generateName: `${object.name}.`, namespace: object.namespace },
        involvedObject: {
          apiVersion: kind === 'Deployment' ? 'apps/v1' : 'v1',
          kind,
          namespace: object.namespace,
          name: object.name,
          uid: object.uid,
          resourceVersion: object.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: 'vault-sync-operator' },
        reportingComponent: 'vault-sync.io/operator',
        reportingInstance: process.env.HOSTNAME ?? 'vault-sync-operator',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}
