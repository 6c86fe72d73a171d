import type { KubeConfig } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export type ChangeType = 'add' | 'update' | 'delete';

interface KubeObject {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
}

export interface ReflectorOptions<T extends KubeObject, S> {
  /** For logs and metrics: `deployments`, `secrets`. */
  name: string;
  /**
   * Lists one page of the collection (`limit` items from `continueToken`): items, the list's resourceVersion
   * to watch from, and the token of the next page. Paged so that a relist never holds every object (for
   * Secrets: every value) at once: each page is slimmed before the next is fetched.
   */
  list(page: { limit: number; continueToken?: string }): Promise<{ items: T[]; resourceVersion: string; continueToken?: string }>;
  /** Objects per page (default 100). */
  pageSize?: number;
  /** The watch URL path, e.g. `/api/v1/secrets` or `/apis/apps/v1/namespaces/ns/deployments`. */
  watchPath: string;
  /** The slim form kept in memory; for Secrets this drops the values (only a keyed hash stays). */
  transform(object: T): S;
  onChange(type: ChangeType, current: S, previous: S | undefined): void;
  /** A watch that delivers nothing (not even a bookmark) for this long is presumed dead and restarted. */
  silenceTimeoutMs?: number;
  log: Logger;
  onError?(error: unknown): void;
}

/**
 * List + watch into an in-memory store of slim objects. Unlike client-node's informer it keeps only
 * what `transform` returns, relists on 410 Gone, restarts itself after any error (with backoff), and
 * restarts a watch that went silent.
 */
export class Reflector<T extends KubeObject, S> {
  private readonly store = new Map<string, S>();
  private resourceVersion = '';
  private stopped = false;
  private abort?: AbortController;
  private silenceTimer?: NodeJS.Timeout;
  private failures = 0;
  private syncedResolve!: () => void;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));
  private hasSynced = false;
  /** Full lists done so far (1 after start; more after 410 Gone or errors). */
  lists = 0;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly options: ReflectorOptions<T, S>,
  ) {}

  get isSynced(): boolean {
    return this.hasSynced;
  }

  get(namespace: string, name: string): S | undefined {
    return this.store.get(`${namespace}/${name}`);
  }

  values(): IterableIterator<S> {
    return this.store.values();
  }

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.silenceTimer);
    this.abort?.abort();
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const seen = new Set<string>();
      let resourceVersion = '';
      let continueToken: string | undefined;
      do {
        const page = await this.options.list({ limit: this.options.pageSize ?? 100, continueToken });
        resourceVersion ||= page.resourceVersion; // every page of one list is the same snapshot
        for (const item of page.items) {
          const key = keyOf(item);
          seen.add(key);
          this.apply('add', key, item);
        }
        continueToken = page.continueToken || undefined;
      } while (continueToken);
      this.lists += 1;
      for (const [key, old] of [...this.store.entries()]) {
        if (!seen.has(key)) {
          this.store.delete(key);
          this.options.onChange('delete', old, old);
        }
      }
      this.resourceVersion = resourceVersion;
      this.failures = 0;
      if (!this.hasSynced) {
        this.hasSynced = true;
        this.syncedResolve();
      }
      await this.watch();
    } catch (error) {
      this.retryLater(error, 'list');
    }
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    const watcher = new Watch(this.kubeConfig);
    let finished = false;
    const finish = (error: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(this.silenceTimer);
      this.abort?.abort(); // close the stream whatever ended it (error event, silence)
      if (this.stopped) return;
      if (isGone(error)) {
        this.options.log.info({ reflector: this.options.name }, 'watch expired (410 Gone); relisting');
        void this.relist();
      } else if (error) {
        this.retryLater(error, 'watch');
      } else {
        void this.watch(); // server closed the watch normally (timeoutSeconds): continue from the last version
      }
    };
    this.armSilenceTimer(() => finish(undefined));
    try {
      this.abort = await watcher.watch(
        this.options.watchPath,
        { allowWatchBookmarks: true, resourceVersion: this.resourceVersion, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
        (phase, object) => {
          this.armSilenceTimer(() => finish(undefined));
          if (phase === 'ERROR') {
            finish(object?.code === 410 ? { statusCode: 410 } : new Error(`watch error: ${object?.message ?? 'unknown'}`));
            return;
          }
          const version = object?.metadata?.resourceVersion;
          if (version) this.resourceVersion = version;
          if (phase === 'BOOKMARK') return;
          const key = keyOf(object);
          if (phase === 'DELETED') {
            const old = this.store.get(key);
            this.store.delete(key);
            this.options.onChange('delete', old ?? this.options.transform(object), old);
          } else {
            this.apply(phase === 'ADDED' ? 'add' : 'update', key, object);
          }
        },
        (error) => finish(error),
      );
    } catch (error) {
      finish(error);
    }
  }

  private apply(type: ChangeType, key: string, object: T): void {
    const slim = this.options.transform(object);
    const previous = this.store.get(key);
    this.store.set(key, slim);
    this.options.onChange(previous ? 'update' : type, slim, previous);
  }

  private armSilenceTimer(onSilence: () => void): void {
    clearTimeout(this.silenceTimer);
    const timeoutMs = this.options.silenceTimeoutMs ?? 180_000;
    this.silenceTimer = setTimeout(() => {
      this.options.log.warn({ reflector: this.options.name, silentForMs: timeoutMs }, 'watch went silent; restarting it');
      this.abort?.abort();
      onSilence();
    }, timeoutMs);
    this.silenceTimer.unref();
  }

  private retryLater(error: unknown, during: string): void {
    if (this.stopped) return;
    this.failures += 1;
    const delayMs = Math.min(30_000, 500 * 2 ** Math.min(this.failures - 1, 6)) * (0.8 + Math.random() * 0.4);
    this.options.log.warn({ reflector: this.options.name, during, err: describeKubeError(error), retryInMs: Math.round(delayMs) }, 'list/watch failed; restarting');
    this.options.onError?.(error);
    setTimeout(() => void this.relist(), delayMs).unref();
  }
}

function keyOf(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

function isGone(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: number } | undefined;
  return e?.statusCode === 410 || e?.code === 410;
}

/** A short description of a Kubernetes client error, without request bodies. */
export function describeKubeError(error: unknown): string {
  const e = error as { code?: number | string; statusCode?: number; message?: string; body?: unknown } | undefined;
  const status = e?.code ?? e?.statusCode;
  let reason = '';
  try {
    const body = typeof e?.body === 'string' ? JSON.parse(e.body) : e?.body;
    if (body && typeof body === 'object' && 'message' in body) reason = String((body as { message: unknown }).message);
  } catch {
    /* not JSON */
  }
  const message = reason || (e?.message ?? String(error)).split('\n')[0].slice(0, 300);
  return status !== undefined ? `${status}: ${message}` : message;
}
