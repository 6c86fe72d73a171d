import type { V1Deployment, V1PodSpec, V1Secret } from '@kubernetes/client-node';
import { Annotations, FINALIZER } from './annotations.js';

/** What the operator keeps of any watched object. */
export interface SlimMeta {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  annotations: Record<string, string>;
  finalizers: string[];
  deletionTimestamp?: string;
}

export interface SlimDeployment extends SlimMeta {
  kind: 'Deployment';
  /** Kept only for Deployments that are annotated or still hold our finalizer. */
  podSpec?: V1PodSpec;
}

/** A Secret without its values: a keyed hash of the data stands in for them. */
export interface SlimSecret extends SlimMeta {
  kind: 'Secret';
  dataHash: string;
}

function slimMeta(object: V1Deployment | V1Secret): SlimMeta {
  const m = object.metadata ?? {};
  return {
    namespace: m.namespace ?? '',
    name: m.name ?? '',
    uid: m.uid ?? '',
    resourceVersion: m.resourceVersion ?? '',
    annotations: m.annotations ?? {},
    finalizers: m.finalizers ?? [],
    deletionTimestamp: m.deletionTimestamp ? new Date(m.deletionTimestamp as unknown as string).toISOString() : undefined,
  };
}

export function isManaged(meta: SlimMeta): boolean {
  return Annotations.path in meta.annotations || meta.finalizers.includes(FINALIZER);
}

export function slimDeployment(object: V1Deployment): SlimDeployment {
  const meta = slimMeta(object);
  return { kind: 'Deployment', ...meta, podSpec: isManaged(meta) ? object.spec?.template?.spec : undefined };
}

/**
 * A Secret's `data` (base64 text per key) as a Map: key names are user input, and `__proto__`,
 * `constructor` and friends must be keys like any other, never object properties.
 * Own enumerable properties only: a `data` parsed by JSON.parse holds `__proto__` as an own property.
 */
export function secretDataOf(object: Pick<V1Secret, 'data'>): Map<string, string> {
  return new Map(Object.entries(object.data ?? {}));
}

export function slimSecret(object: V1Secret, hashData: (data: ReadonlyMap<string, string>) => string): SlimSecret {
  return { kind: 'Secret', ...slimMeta(object), dataHash: hashData(secretDataOf(object)) };
}

export type SourceKind = 'Deployment' | 'Secret';

export function sourceKey(kind: SourceKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export function parseSourceKey(key: string): { kind: SourceKind; namespace: string; name: string } {
  const [kind, namespace, name] = key.split('/');
  return { kind: kind as SourceKind, namespace, name };
}
