// The I/O side of the decision pipeline, in one place: it gathers what decide() (src/sync/verdict.ts) asks for
// (the caches, the record, Secret values, Vault metadata) and calls it again until it has a Verdict. Built by
// one factory for the reconciler, `plan` and DRY_RUN, so all three decide from the same reads.
import { Annotations, FINALIZER } from '../kube/annotations.js';
import { parseSourceKey, type SlimDeployment, type SlimSecret } from '../kube/objects.js';
import { formatPath, type KvPath } from '../vault/path.js';
import { listingCovers } from '../vault/detailed-listing.js';
import type { ScanRefusal } from '../vault/detailed-scan.js';
import { relativeTo } from './drift-root.js';
import { DriftScans } from './drift-scans.js';
import type { RequestContext, VaultPort } from '../vault/port.js';
import { permits } from '../vault/scope.js';
import { scopeOf } from '../vault/tenancy.js';
import type { Fingerprinter } from './fingerprint.js';
import type { SyncState } from './state-store.js';
import { decide, type DecisionInput, type DecisionSettings, type PolicyGrant, type ReadRequest, type Reads, type Verdict } from './verdict.js';
import { leafName, planLookups, type PathView } from './write-policy.js';

/** The caches the decisions read (the operator's reflectors). */
export interface SourceLookup {
  deployment(namespace: string, name: string): SlimDeployment | undefined;
  secret(namespace: string, name: string): SlimSecret | undefined;
  /** VaultSyncPolicy grants currently in force (path prefixes, and prefixes where unmarked paths may be adopted). */
  tenancyGrants(): readonly PolicyGrant[];
}

export interface GatherDeps {
  sources: SourceLookup;
  state: {
    get(sourceKey: string): Promise<SyncState | undefined>;
    /** The record as the API server has it now (not the cached copy). */
    refresh?(sourceKey: string): Promise<SyncState | undefined>;
  };
  cluster: {
    readSecretData(namespace: string, name: string): Promise<ReadonlyMap<string, Uint8Array> | undefined>;
    namespaceIsTerminating(namespace: string): Promise<boolean>;
  };
  vault: Pick<VaultPort, 'readMetadata' | 'listFolder' | 'listDetailedMetadata' | 'scanDetailedMetadata'>;
  /** The KV version of a mount: a read-only pipeline reads no data, so it checks no marks on KV v1. */
  kvVersion(mount: string): Promise<1 | 2>;
  fingerprint: Pick<Fingerprinter, 'entry'>;
  settings: DecisionSettings;
  now?: () => number;
  /**
   * `plan` and DRY_RUN: metadata reads and detailed listings only (no plain LIST; a detailed listing refused with
   * 403 falls back to metadata reads), nothing read on a KV v1 mount (its metadata call would read the data), and
   * drift checked whenever asked.
   */
  readOnly: boolean;
  /**
   * Drift checks by one shared scan per root (OpenBao's SCAN): the byte cap of one scan's answer
   * (--vault-drift-scan-max-bytes). Absent or 0: no scans, one listing per folder as before.
   */
  driftScanMaxBytes?: number;
  /** Told when a scan is refused in a way that changes what the operator does (the operator logs and counts it). */
  onDriftScanRefused?: (root: KvPath, why: ScanRefusal) => void;
}

export interface GatherOptions {
  /** Read the record from the API server, not the cache (after a version conflict). */
  fresh?: boolean;
  /** Called once before the first Vault request (the work queue's slot hand-back). */
  beforeVault?: () => void;
  /**
   * The Secrets the source reads, told before their values are read: the Secret→source index must know them
   * by then, or a change made while the values are read (before the verdict is carried out) enqueues nothing
   * and the older value stays in Vault until the next resync.
   */
  readsSecrets?: (namespace: string, secretNames: readonly string[]) => void;
}

/** Stages of one decision: drift, values, lookups and ownership reads; more means a bug, not a slow source. */
const MAX_STAGES = 6;

export class DecisionPipeline {
  private readonly now: () => number;
  /** The shared scans of drift roots (I/O side: decide() only says which root and since when). */
  private readonly scans: DriftScans | undefined;

  constructor(private readonly deps: GatherDeps) {
    this.now = deps.now ?? Date.now;
    this.scans = (deps.driftScanMaxBytes ?? 0) > 0 ? new DriftScans({ now: this.now, ...(deps.onDriftScanRefused ? { onRefused: deps.onDriftScanRefused } : {}) }) : undefined;
  }

  get settings(): DecisionSettings {
    return this.deps.settings;
  }

  /**
   * The verdict for a source, with the input it was decided from and the context its Vault requests carry:
   * the source, and the grant of its namespace as the same grants snapshot gives it (the port refuses the rest).
   */
  async verdict(key: string, options: GatherOptions = {}): Promise<{ verdict: Verdict; input: DecisionInput; context: RequestContext }> {
    let input = await this.initial(key, options.fresh === true);
    const context: RequestContext = { source: key, scope: scopeOf(parseSourceKey(key).namespace, this.deps.settings, input.grants) };
    for (let stage = 0; stage < MAX_STAGES; stage++) {
      const decision = decide(input);
      if (decision.type !== 'read') return { verdict: decision, input, context };
      input = { ...input, reads: await this.read(decision, input.reads, options, context) };
    }
    throw new Error(`the decision for ${key} asked for more than ${MAX_STAGES} stages of reads`);
  }

  /**
   * A source being finalized (deleted, or its path annotation removed, with our finalizer), with the paths its
   * record names inside its scope: what a cleanup that cannot reach Vault leaves behind. Undefined otherwise.
   */
  finalizing(key: string): { object: SlimDeployment | SlimSecret; why: string; recorded(): Promise<KvPath[]> } | undefined {
    const { kind, namespace, name } = parseSourceKey(key);
    const object = kind === 'Deployment' ? this.deps.sources.deployment(namespace, name) : this.deps.sources.secret(namespace, name);
    if (!object || !object.finalizers.includes(FINALIZER) || (!object.deletionTimestamp && Annotations.path in object.annotations)) return undefined;
    const scope = scopeOf(namespace, this.deps.settings, this.deps.sources.tenancyGrants());
    return {
      object,
      why: object.deletionTimestamp ? 'source deleted' : `the ${Annotations.path} annotation was removed`,
      recorded: async () => ((await this.deps.state.get(key))?.entries ?? []).map((e) => e.path).filter((path) => permits(scope, path)),
    };
  }

  /** What the caches and the record say: stage 0 of every decision. */
  private async initial(key: string, fresh: boolean): Promise<DecisionInput> {
    const { kind, namespace, name } = parseSourceKey(key);
    const { sources } = this.deps;
    const object = kind === 'Deployment' ? sources.deployment(namespace, name) : sources.secret(namespace, name);
    const record = fresh && this.deps.state.refresh ? await this.deps.state.refresh(key) : await this.deps.state.get(key);
    // The cache's hash of each Secret, taken once (at the first stage, before any value is read) and kept for
    // every later stage: the record's input fingerprint must never be newer than the values written with it.
    // Read live, a change that reached the cache between the API read of the values and the last stage was
    // recorded as synced with the older value, and the source then looked unchanged for good.
    const hashes = new Map<string, string | undefined>();
    const cachedSecretHash = (secretName: string) => {
      if (!hashes.has(secretName)) hashes.set(secretName, sources.secret(namespace, secretName)?.dataHash);
      return hashes.get(secretName);
    };
    return {
      key,
      object,
      record,
      grants: sources.tenancyGrants(),
      cachedSecretHash,
      hashEntry: (entry) => this.deps.fingerprint.entry(entry),
      now: this.now(),
      settings: this.deps.settings,
      driftNow: this.deps.readOnly,
      ...(this.scans ? { driftScanUsable: (root: KvPath) => this.scans!.usable(root) } : {}),
      reads: {},
    };
  }

  private async read(request: ReadRequest, known: Reads, options: GatherOptions, context: RequestContext): Promise<Reads> {
    const reads: Reads = { ...known };
    if (request.values) {
      const { namespace, secretNames } = request.values;
      options.readsSecrets?.(namespace, secretNames);
      reads.namespaceTerminating = await this.deps.cluster.namespaceIsTerminating(namespace);
      if (!reads.namespaceTerminating) {
        const values = new Map<string, ReadonlyMap<string, Uint8Array> | undefined>();
        // Only Secrets the cache knows: an absent one costs no API read. Values come from the API, never a cache.
        for (const secretName of secretNames) values.set(secretName, this.deps.sources.secret(namespace, secretName) ? await this.deps.cluster.readSecretData(namespace, secretName) : undefined);
        reads.values = values;
      }
    }
    if (request.kvVersions) {
      options.beforeVault?.(); // a mount's first lookup is a Vault request
      const versions = new Map(known.kvVersions ?? []);
      for (const mount of request.kvVersions) versions.set(mount, await this.deps.kvVersion(mount));
      reads.kvVersions = versions;
    }
    if (request.lookup || request.metadata || request.drift) {
      options.beforeVault?.();
      const views = new Map(known.views ?? []);
      const changeReads = [...(request.lookup ?? []), ...(request.metadata ?? [])];
      const lookups = new Set((request.lookup ?? []).map(formatPath));
      await Promise.all([this.readFolders(changeReads, lookups, views, context), this.readDrift(request.drift ?? [], request.driftScan, views, { ...context, drift: true })]);
      reads.views = views;
    }
    return reads;
  }

  /**
   * A drift check: the paths below its root from the root's shared scan (taken at or after the check fell due),
   * the rest (or all, where no scan can be had) folder by folder. Only drift checks share a scan: change traffic
   * (lookups before writes, ownership before deletes) reads Vault itself, in readFolders.
   */
  private async readDrift(paths: readonly KvPath[], scan: ReadRequest['driftScan'], views: Map<string, PathView>, context: RequestContext): Promise<void> {
    const maxBytes = this.deps.driftScanMaxBytes ?? 0;
    let rest = paths;
    // The root comes from the source's own scope (drift-root.ts); checked again here, as the port would.
    if (scan && this.scans && permits(context.scope, scan.root)) {
      const below = paths.filter((path) => relativeTo(scan.root, path) !== undefined);
      const entries = below.length > 0 ? await this.scans.below(scan.root, scan.dueAt, (root) => this.deps.vault.scanDetailedMetadata(root, context, { maxBytes })) : undefined;
      if (entries) {
        for (const path of below) {
          const metadata = entries.get(relativeTo(scan.root, path)!);
          views.set(formatPath(path), metadata ? { state: 'present', metadata } : { state: 'absent' });
        }
        rest = paths.filter((path) => relativeTo(scan.root, path) === undefined);
      }
    }
    await this.readFolders(rest, new Set(), views, context);
  }

  /**
   * What Vault holds at these paths, by folder (planLookups): a folder with several paths is ONE detailed listing
   * where the server has one (OpenBao >= 2.2), whatever the number of paths; a folder with one path, a path right
   * below the mount, and every path where the server has no such listing or the token may not use it (403: a
   * read-only `plan` token may lack `list`) are read one by one, except unrecorded paths (`lookups`) outside
   * `plan`, which keep the one plain LIST of their folder and read only the names found there.
   */
  private async readFolders(paths: readonly KvPath[], lookups: ReadonlySet<string>, views: Map<string, PathView>, context: RequestContext): Promise<void> {
    await Promise.all(
      planLookups(paths).map(async (group) => {
        if (group.kind === 'read-metadata') return this.readView(group.path, views, context);
        if (this.deps.readOnly && (await this.deps.kvVersion(group.folder.mount)) === 1) return Promise.all(group.paths.map((path) => this.readView(path, views, context)));
        const through = group.paths.map(leafName).reduce((a, b) => (b > a ? b : a));
        const listing = await this.deps.vault.listDetailedMetadata(group.folder, context, { through });
        if (!('refused' in listing)) {
          await Promise.all(
            group.paths.map((path) => {
              const metadata = listing.entries.get(leafName(path));
              if (metadata) return views.set(formatPath(path), { state: 'present', metadata });
              // A name past where the listing stopped (its page bound) is not known either way: read it.
              return listingCovers(listing, leafName(path)) ? views.set(formatPath(path), { state: 'absent' }) : this.readView(path, views, context);
            }),
          );
          return;
        }
        const unrecorded = group.paths.filter((path) => lookups.has(formatPath(path)));
        const others = group.paths.filter((path) => !lookups.has(formatPath(path)));
        await Promise.all([this.lookUpByPlainList(group.folder, unrecorded, views, context), ...others.map((path) => this.readView(path, views, context))]);
      }),
    );
  }

  /** Paths nobody recorded, in one folder, where no detailed listing can be had: one LIST, then a metadata read of each name found (read-only: a read each). */
  private async lookUpByPlainList(folder: KvPath, paths: readonly KvPath[], views: Map<string, PathView>, context: RequestContext): Promise<void> {
    if (paths.length < 2 || this.deps.readOnly) {
      await Promise.all(paths.map((path) => this.readView(path, views, context)));
      return;
    }
    const names = new Set(await this.deps.vault.listFolder(folder, context));
    await Promise.all(paths.map((path) => (names.has(leafName(path)) ? this.readView(path, views, context) : views.set(formatPath(path), { state: 'absent' }))));
  }

  private async readView(path: KvPath, views: Map<string, PathView>, context: RequestContext): Promise<void> {
    if (this.deps.readOnly && (await this.deps.kvVersion(path.mount)) === 1) {
      views.set(formatPath(path), { state: 'unchecked' });
      return;
    }
    const metadata = await this.deps.vault.readMetadata(path, context);
    views.set(formatPath(path), metadata ? { state: 'present', metadata } : { state: 'absent' });
  }
}

/** The one factory: the reconciler's pipeline (readOnly false) and the one `plan` and DRY_RUN print (readOnly true). */
export function createDecisionPipeline(deps: GatherDeps): DecisionPipeline {
  return new DecisionPipeline(deps);
}
