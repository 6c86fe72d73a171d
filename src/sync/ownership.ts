import { MarkKeys } from '../vault/mark-keys.js';
import type { SyncSource } from './desired.js';

export const MANAGED_BY = 'vault-sync-operator';

/** The KV v2 custom_metadata that marks a path as written for one source in one cluster. */
export function ownershipMetadata(source: Pick<SyncSource, 'kind' | 'namespace' | 'name' | 'uid'>, clusterName: string): Record<string, string> {
  return {
    [MarkKeys.managedBy]: MANAGED_BY,
    [MarkKeys.cluster]: clusterName,
    [MarkKeys.sourceKind]: source.kind,
    [MarkKeys.sourceNamespace]: source.namespace,
    [MarkKeys.sourceName]: source.name,
    [MarkKeys.sourceUid]: source.uid,
  };
}

export type Ownership = 'ours' | 'unowned' | 'other-source' | 'other-manager';

/**
 * Pure: who owns a path, from its custom_metadata. The uid is not compared: a source deleted with
 * preserve-on-delete and created again under the same name takes its path back.
 */
export function ownershipOf(
  customMetadata: Record<string, string> | undefined,
  source: Pick<SyncSource, 'kind' | 'namespace' | 'name'>,
  clusterName: string,
): Ownership {
  const m = customMetadata ?? {};
  if (m['managed-by'] === undefined) return 'unowned';
  if (m['managed-by'] !== MANAGED_BY) return 'other-manager';
  const same = m.cluster === clusterName && m['source-kind'] === source.kind && m['source-namespace'] === source.namespace && m['source-name'] === source.name;
  return same ? 'ours' : 'other-source';
}

export function describeOwner(customMetadata: Record<string, string> | undefined): string {
  const m = customMetadata ?? {};
  if (m['managed-by'] !== MANAGED_BY) return m['managed-by'] ? `managed by "${m['managed-by']}"` : 'not managed by this operator';
  return `owned by ${m['source-kind']} ${m['source-namespace']}/${m['source-name']} in cluster "${m.cluster}"`;
}
