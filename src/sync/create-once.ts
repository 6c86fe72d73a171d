// Pure: vault-sync.io/update-policy IfNotExists ("create once", PushSecret's updatePolicy IfNotExists). A path is
// written only when it has no live version: the seed of a generated credential that Vault-side rotation then
// owns. A path with a live version is kept as it is, and new versions made in Vault are not drift.
import type { VaultView, WriteDecision } from './write-policy.js';

export const KEPT_CREATE_ONCE = 'kept: create-once (update-policy IfNotExists: a path with a live version is not written again)';

export type CreateOnce = { action: 'write'; decision: WriteDecision } | { action: 'keep'; version: number; why: string };

/**
 * What IfNotExists makes of a write decision (decideWrite, which has already checked ownership): a new path, a
 * path whose latest version was deleted or destroyed, and our own landed write are written; a live version is
 * kept if ours, refused if anyone else's (an unmarked path is never adopted over its live version).
 */
export function createOnce(decision: WriteDecision, vault: VaultView): CreateOnce {
  const live = vault.state === 'present' && !vault.metadata.currentVersionDeleted;
  switch (decision.action) {
    case 'create':
    case 'recover':
    case 'refuse':
    case 'lookup':
      return { action: 'write', decision };
    case 'update':
      if (vault.state === 'present' && !live) return { action: 'write', decision };
      return { action: 'keep', version: vault.state === 'present' ? vault.metadata.currentVersion : decision.cas, why: KEPT_CREATE_ONCE };
    case 'adopt':
      if (!live) return { action: 'write', decision };
      return { action: 'write', decision: { action: 'refuse', reason: 'it has a live version that this source did not write (update-policy IfNotExists never writes over one)' } };
  }
}
