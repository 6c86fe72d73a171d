import http from 'node:http';
import https from 'node:https';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { FINALIZER } from './annotations.js';
import { boundMessage } from './message-bounds.js';
import { secretDataOf, type SlimMeta, type SourceKind } from './objects.js';

/** A Secret is at most 1 MiB of data; its JSON (base64, metadata) stays well under this. */
const MAX_SECRET_RESPONSE_BYTES = 8 * 1024 * 1024;

/** An API answer that is not 2xx, shaped like client-node's errors (`code`) so callers treat both alike. */
export class KubeApiError extends Error {
  constructor(readonly code: number, readonly body?: unknown) {
    super(`HTTP ${code} from the Kubernetes API`);
  }
}

/** The Kubernetes writes and reads the reconciler needs, beyond the watch caches. */
export class ClusterClient {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(private readonly kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
  }

  /** A Secret's raw bytes, read only when a write is due; undefined when it does not exist. */
  async readSecretData(namespace: string, name: string): Promise<ReadonlyMap<string, Uint8Array> | undefined> {
    try {
      const secret = (await this.getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`, MAX_SECRET_RESPONSE_BYTES)) as V1Secret;
      const data = new Map<string, Uint8Array>();
      for (const [key, value] of secretDataOf(secret)) data.set(key, Buffer.from(value, 'base64'));
      return data;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  /** GET a path of the API server with the kubeconfig's credentials and TLS settings; the body parsed by JSON.parse. */
  private async getJson(path: string, maxBytes: number): Promise<unknown> {
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig names no current cluster');
    const base = new URL(server);
    const options: https.RequestOptions = {
      method: 'GET',
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: base.port || undefined,
      path: base.pathname.replace(/\/+$/, '') + path,
      headers: { accept: 'application/json' },
    };
    await this.kubeConfig.applyToHTTPSOptions(options);
    return new Promise((resolve, reject) => {
      const req = (base.protocol === 'https:' ? https : http).request(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            req.destroy(new Error(`the Kubernetes API answer is larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          if (status >= 200 && status < 300 && body !== undefined) resolve(body);
          else reject(new KubeApiError(status, body));
        });
      });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('the Kubernetes API did not answer within 30 s')));
      req.end();
    });
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

  async createEvent(kind: SourceKind, object: Pick<SlimMeta, 'namespace' | 'name' | 'uid'> & Partial<Pick<SlimMeta, 'resourceVersion'>>, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
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
        message: boundMessage(message),
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
