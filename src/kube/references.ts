import type { V1PodSpec, V1Container, V1EphemeralContainer } from '@kubernetes/client-node';

/** A Secret that a pod template uses, and whether the pod could start without it. */
export interface SecretReference {
  name: string;
  /** True only when every use of this Secret is marked `optional: true`. */
  optional: boolean;
}

/**
 * Every Secret a pod template references, by name, sorted and de-duplicated:
 * env `secretKeyRef`, `envFrom.secretRef` of containers, initContainers and ephemeralContainers,
 * `volumes[].secret` and projected volume secret sources. imagePullSecrets are not application
 * data and are not included.
 */
export function referencedSecrets(spec: V1PodSpec | undefined): SecretReference[] {
  const uses = new Map<string, boolean>(); // name -> optional (so far)
  const note = (name: string | undefined, optional: boolean | undefined) => {
    if (!name) return;
    const isOptional = optional === true;
    const previous = uses.get(name);
    // A Secret is optional only if no use of it requires it.
    uses.set(name, previous === undefined ? isOptional : previous && isOptional);
  };

  const containers: Array<V1Container | V1EphemeralContainer> = [
    ...(spec?.initContainers ?? []),
    ...(spec?.containers ?? []),
    ...(spec?.ephemeralContainers ?? []),
  ];
  for (const container of containers) {
    for (const env of container.env ?? []) {
      const ref = env.valueFrom?.secretKeyRef;
      if (ref) note(ref.name, ref.optional);
    }
    for (const source of container.envFrom ?? []) {
      if (source.secretRef) note(source.secretRef.name, source.secretRef.optional);
    }
  }
  for (const volume of spec?.volumes ?? []) {
    if (volume.secret) note(volume.secret.secretName, volume.secret.optional);
    for (const source of volume.projected?.sources ?? []) {
      if (source.secret) note(source.secret.name, source.secret.optional);
    }
  }

  return [...uses.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, optional]) => ({ name, optional }));
}
