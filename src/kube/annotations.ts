// The annotation contract, compatible with the original vault-sync-operator (see DESIGN.md).

/** The prefix every annotation of the contract carries; any other key under it is a typo. */
export const ANNOTATION_PREFIX = 'vault-sync.io/';

export const Annotations = {
  /** Required; turns sync on. `secret/my-app` or `secret/data/my-app`. */
  path: 'vault-sync.io/path',
  /** Optional JSON list of {name, keys?, prefix?} merged into one write at `path`. */
  secrets: 'vault-sync.io/secrets',
  /** `"true"` keeps the Vault data when the source goes away. */
  preserveOnDelete: 'vault-sync.io/preserve-on-delete',
  /** A duration (`5m`): also check Vault for out-of-band drift this often. */
  reconcile: 'vault-sync.io/reconcile',
  /** `disabled` turns change detection off: every reconcile writes. */
  rotationCheck: 'vault-sync.io/rotation-check',
  /** `"true"` pauses syncing this source (nothing written, nothing deleted). */
  suspend: 'vault-sync.io/suspend',
  /** Any new value forces one write even when nothing changed. */
  forceSync: 'vault-sync.io/force-sync',
  /** `"true"`: take over paths that carry no ownership marks (a migration); never a path another manager marked. */
  adopt: 'vault-sync.io/adopt',
  /** A JSON object of string keys and values written into each path's custom_metadata beside the marks (KV v2). */
  customMetadata: 'vault-sync.io/custom-metadata',
  /** `Replace` (the default): every change is written; `IfNotExists`: a path is written only when it has no live version. */
  updatePolicy: 'vault-sync.io/update-policy',
} as const;

/** Held on every source the operator has written for, so deletion can clean Vault up first. */
export const FINALIZER = 'vault-sync.io/finalizer';

export function isTrue(value: string | undefined): boolean {
  return value !== undefined && value.trim().toLowerCase() === 'true';
}
