import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Annotations, FINALIZER, isTrue } from '../kube/annotations.js';
import type { ClusterClient } from '../kube/cluster.js';
import { describeKubeError } from '../kube/reflector.js';
import { parseSourceKey, type SlimDeployment, type SlimSecret, type SourceKind } from '../kube/objects.js';
import { VaultRequestError } from '../vault/errors.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { VaultPort } from '../vault/port.js';
import { deriveTargets, materialize, secretNamesOf, type DesiredEntry, type SyncSource, type Target } from './desired.js';
import type { Fingerprinter } from './fingerprint.js';
import { describeOwner, ownershipMetadata, ownershipOf } from './ownership.js';
import { planSync, type SyncedEntry } from './plan.js';
import type { SecretIndex } from './secret-index.js';
import type { SyncStateStore } from './state-store.js';

export interface SourceLookup {
  deployment(namespace: string, name: string): SlimDeployment | undefined;
  secret(namespace: string, name: string): SlimSecret | undefined;
}

export interface ReconcilerDeps {
  sources: SourceLookup;
  cluster: ClusterClient;
  vault: VaultPort;
  state: SyncStateStore;
  index: SecretIndex;
  fingerprint: Fingerprinter;
  log: Logger;
  clusterName: string;
  kvMounts: readonly string[];
  maxSecretBytes: number;
}

export type ReconcileOutcome = 'synced' | 'unchanged' | 'deleted' | 'refused' | 'invalid' | 'suspended' | 'ignored';

/** A problem that a retry will not fix: reported once, not retried until the source changes. */
class Refusal extends Error {}

/**
 * reconcile(key): the one place that orchestrates I/O. Reads the caches, decides with pure functions
 * (desired → plan), then does the Vault and Kubernetes writes the plan asks for. Level-triggered: it
 * looks at the current state of the world, never at the event that queued the key.
 */
export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileOutcome> {
    const { kind, namespace, name } = parseSourceKey(key);
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name) : this.deps.sources.secret(namespace, name);
    if (!object) {
      // Gone without our finalizer (or after it was removed): nothing left to do for it.
      this.deps.index.forget(key);
      await this.deps.state.delete(key);
      return 'ignored';
    }
    const source: SyncSource = {
      kind,
      namespace,
      name,
      uid: object.uid,
      annotations: object.annotations,
      podSpec: object.kind === 'Deployment' ? object.podSpec : undefined,
    };
    const annotated = Annotations.path in object.annotations;
    const holdsFinalizer = object.finalizers.includes(FINALIZER);

    if (object.deletionTimestamp || !annotated) {
      if (!holdsFinalizer) return 'ignored';
      const why = object.deletionTimestamp ? 'deleted' : `the ${Annotations.path} annotation was removed`;
      await this.cleanUp(key, source, why);
      await this.deps.cluster.removeFinalizer(kind, object);
      this.deps.index.forget(key);
      await this.deps.state.delete(key);
      return 'deleted';
    }

    if (isTrue(object.annotations[Annotations.suspend])) return 'suspended';

    await this.deps.cluster.addFinalizer(kind, object);

    const derived = deriveTargets(source, { allowedMounts: this.deps.kvMounts });
    if (!derived.ok) {
      this.deps.index.forget(key);
      await this.event(source, 'Warning', derived.problem.code === 'InvalidPath' ? 'Refused' : 'SyncFailed', derived.problem.message);
      return 'invalid';
    }
    const targets = derived.targets;
    const secretNames = secretNamesOf(targets);
    this.deps.index.set(key, namespace, secretNames);

    const changeDetection = object.annotations[Annotations.rotationCheck]?.trim().toLowerCase() !== 'disabled';
    const inputFingerprint = this.inputFingerprint(targets, namespace, secretNames, object.annotations[Annotations.forceSync]);
    const previous = await this.deps.state.get(key);
    if (changeDetection && previous?.inputFingerprint === inputFingerprint) return 'unchanged';

    // Something the output depends on changed: read the values now (only now) and decide per path.
    const values = new Map<string, Record<string, Uint8Array> | undefined>();
    for (const secretName of secretNames) values.set(secretName, await this.deps.cluster.readSecretData(namespace, secretName));
    const materialized = materialize(targets, values, { maxEntryBytes: this.deps.maxSecretBytes });
    if (!materialized.ok) {
      await this.event(source, 'Warning', 'SyncFailed', materialized.problems.map((p) => p.message).join('; '));
      return 'invalid';
    }

    const desired = materialized.entries.map((entry) => ({ entry, hash: this.deps.fingerprint.entry(entry) }));
    const force = previous !== undefined && object.annotations[Annotations.forceSync] !== undefined && !previous.inputFingerprint.endsWith(object.annotations[Annotations.forceSync]);
    const operations = planSync(desired, previous?.entries ?? [], { changeDetection, force });

    const synced: SyncedEntry[] = [];
    const written: string[] = [];
    const refusals: string[] = [];
    for (const op of operations) {
      if (op.type === 'unchanged') {
        synced.push(previous!.entries.find((e) => formatPath(e.path) === formatPath(op.path))!);
      } else if (op.type === 'write') {
        const before = previous?.entries.find((e) => formatPath(e.path) === formatPath(op.entry.path));
        try {
          const version = await this.writeOwned(source, op.entry, before);
          synced.push({ path: op.entry.path, hash: op.hash, version });
          written.push(formatPath(op.entry.path));
        } catch (error) {
          if (!(error instanceof Refusal)) throw error;
          refusals.push(error.message);
        }
      } else {
        await this.deleteOwned(source, op.path);
      }
    }
    if (refusals.length > 0) {
      await this.event(source, 'Warning', 'Refused', refusals.join('; '));
    }
    await this.deps.state.set(key, {
      inputFingerprint: refusals.length > 0 ? 'incomplete' : inputFingerprint,
      entries: synced,
      lastSyncTime: new Date().toISOString(),
    });
    if (written.length > 0) {
      this.deps.log.info({ source: key, paths: written }, 'synced to Vault');
      await this.event(source, 'Normal', 'Synced', `wrote ${written.length} path(s) to Vault: ${written.join(', ')}`);
    }
    return refusals.length > 0 ? 'refused' : written.length > 0 ? 'synced' : 'unchanged';
  }

  /**
   * Writes one path, only if it is ours. With a known version the write is check-and-set on it, so a
   * concurrent out-of-band write is noticed; a new path is claimed (ownership metadata) before data lands.
   */
  private async writeOwned(source: SyncSource, entry: DesiredEntry, before: SyncedEntry | undefined): Promise<number> {
    const { vault } = this.deps;
    const marks = { ...ownershipMetadata(source, this.deps.clusterName), ...(entry.binaryKeys.length ? { 'base64-keys': entry.binaryKeys.join(',') } : {}) };
    if (before?.version !== undefined) {
      try {
        return (await vault.writeData(entry.path, entry.data, { cas: before.version })).version;
      } catch (error) {
        if (!(error instanceof VaultRequestError && error.kind === 'cas-mismatch')) throw error;
        // Someone else wrote a version since ours: find out who owns the path now.
      }
    }
    const metadata = await vault.readMetadata(entry.path);
    const owner = ownershipOf(metadata?.customMetadata, source, this.deps.clusterName);
    if (metadata && owner !== 'ours') {
      throw new Refusal(`refusing to overwrite ${formatPath(entry.path)}: it is ${describeOwner(metadata.customMetadata)}`);
    }
    if (!metadata || metadata.customMetadata['source-uid'] !== source.uid || metadata.customMetadata['base64-keys'] !== marks['base64-keys']) {
      await vault.writeMetadata(entry.path, marks);
    }
    return (await vault.writeData(entry.path, entry.data, { cas: metadata?.currentVersion ?? 0 })).version;
  }

  /** Deletes every version of a path, only if it is ours. */
  private async deleteOwned(source: SyncSource, path: KvPath): Promise<boolean> {
    const metadata = await this.deps.vault.readMetadata(path);
    if (!metadata) return false;
    if (ownershipOf(metadata.customMetadata, source, this.deps.clusterName) !== 'ours') {
      await this.event(source, 'Warning', 'Refused', `not deleting ${formatPath(path)}: it is ${describeOwner(metadata.customMetadata)}`);
      return false;
    }
    await this.deps.vault.deleteAll(path);
    return true;
  }

  /** The source is going away (or no longer annotated): remove its Vault data unless told to keep it. */
  private async cleanUp(key: string, source: SyncSource, why: string): Promise<void> {
    if (isTrue(source.annotations[Annotations.preserveOnDelete])) {
      await this.event(source, 'Normal', 'Preserved', `${why}; Vault data kept (${Annotations.preserveOnDelete}: "true")`);
      return;
    }
    const paths = new Map<string, KvPath>();
    for (const entry of (await this.deps.state.get(key))?.entries ?? []) paths.set(formatPath(entry.path), entry.path);
    // After a restart the state may be empty: the annotations still say where this source wrote.
    const derived = deriveTargets(source, { allowedMounts: this.deps.kvMounts });
    if (derived.ok) for (const target of derived.targets) paths.set(formatPath(target.path), target.path);
    const deleted: string[] = [];
    for (const path of paths.values()) if (await this.deleteOwned(source, path)) deleted.push(formatPath(path));
    await this.event(source, 'Normal', 'Deleted', `${why}; deleted ${deleted.length} path(s) from Vault${deleted.length ? ': ' + deleted.join(', ') : ''}`);
  }

  /** Hash of every input of the desired state; the force-sync token is appended so a new one is visible. */
  private inputFingerprint(targets: Target[], namespace: string, secretNames: string[], forceToken: string | undefined): string {
    const hash = createHash('sha256');
    hash.update(JSON.stringify(targets));
    for (const secretName of secretNames) {
      hash.update(`\0${secretName}\0${this.deps.sources.secret(namespace, secretName)?.dataHash ?? 'absent'}`);
    }
    return hash.digest('hex') + (forceToken !== undefined ? `:${forceToken}` : '');
  }

  private async event(source: SyncSource, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const log = type === 'Warning' ? this.deps.log.warn.bind(this.deps.log) : this.deps.log.debug.bind(this.deps.log);
    log({ source: `${source.kind}/${source.namespace}/${source.name}`, reason }, message);
    const object = source.kind === 'Deployment' ? this.deps.sources.deployment(source.namespace, source.name) : this.deps.sources.secret(source.namespace, source.name);
    if (!object) return;
    try {
      await this.deps.cluster.createEvent(source.kind as SourceKind, object, type, reason, message);
    } catch (error) {
      this.deps.log.warn({ source: `${source.kind}/${source.namespace}/${source.name}`, reason, err: describeKubeError(error) }, 'could not record an Event');
    }
  }
}
