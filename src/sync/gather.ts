// The I/O side of the decision pipeline, in one place: it gathers what decide() (src/sync/verdict.ts) asks for
// (the caches, the record, Secret values, Vault metadata) and calls it again until it has a Verdict. Built by
// one factory for the reconciler, `plan` and DRY_RUN, so all three decide from the same reads.
import { Annotations, FINALIZER } from '../kube/annotations.js';
import { parseSourceKey, type SlimDeployment, type SlimSecret } from '../kube/objects.js';
import { formatPath, type KvPath } from '../vault/path.js';
import type { KvMetadata, RequestContext } from '../vault/port.js';
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
  vault: {
    readMetadata(path: KvPath, context?: RequestContext): Promise<KvMetadata | undefined>;
    listFolder(folder: KvPath, context?: RequestContext): Promise<string[]>;
  };
  /** The KV version of a mount: a read-only pipeline reads no data, so it checks no marks on KV v1. */
  kvVersion(mount: string): Promise<1 | 2>;
  fingerprint: Pick<Fingerprinter, 'entry'>;
  settings: DecisionSettings;
  now?: () => number;
  /**
   * `plan` and DRY_RUN: metadata reads only (no LIST: a read-only token may lack `list`), nothing read on a
   * KV v1 mount (its metadata call would read the data), and drift checked whenever asked.
   */
  readOnly: boolean;
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

  constructor(private readonly deps: GatherDeps) {
    this.now = deps.now ?? Date.now;
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
    if (request.lookup || request.metadata) {
      options.beforeVault?.();
      const views = new Map(known.views ?? []);
      await Promise.all([this.lookUp(request.lookup ?? [], views, context), ...(request.metadata ?? []).map((path) => this.readView(path, views, context))]);
      reads.views = views;
    }
    return reads;
  }

  /** Paths nobody recorded: one LIST per folder with several (read-only: a metadata read each). */
  private async lookUp(paths: readonly KvPath[], views: Map<string, PathView>, context: RequestContext): Promise<void> {
    if (this.deps.readOnly) {
      await Promise.all(paths.map((path) => this.readView(path, views, context)));
      return;
    }
    await Promise.all(
      planLookups(paths).map(async (lookup) => {
        if (lookup.kind === 'read-metadata') return this.readView(lookup.path, views, context);
        const names = new Set(await this.deps.vault.listFolder(lookup.folder, context));
        await Promise.all(lookup.paths.map((path) => (names.has(leafName(path)) ? this.readView(path, views, context) : views.set(formatPath(path), { state: 'absent' }))));
      }),
    );
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
