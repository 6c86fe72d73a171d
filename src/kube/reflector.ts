import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { IncomingMessage } from 'node:http';
import { KubeHttpError, readListPage, requestListPage, watchStream, type WatchEvent } from './kube-http.js';

export type ChangeType = 'add' | 'update' | 'delete';

interface KubeObject {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
}

/**
 * How many objects to ask per page. Our own memory does not depend on it (a page is streamed item by item,
 * see ListSplitter); the apiserver builds each page whole, and every page is a round trip. So: the first page
 * asks `initial`; each next page asks what would weigh `targetBytes` at the bytes per object of the pages read
 * so far (a page is asked for while the one before it streams: the second page asks `initial` too), within
 * [min, max].
 */
export interface PageSizing {
  initial: number;
  min: number;
  max: number;
  targetBytes: number;
}

export const DEFAULT_PAGE_SIZING: PageSizing = { initial: 500, min: 10, max: 2000, targetBytes: 8 * 1024 * 1024 };

/** Pure: the limit of the next page after `items` objects weighing `bytes` in all. */
export function nextPageLimit(sizing: PageSizing, items: number, bytes: number): number {
  if (items === 0 || bytes === 0) return sizing.initial;
  const fitting = Math.floor(sizing.targetBytes / (bytes / items));
  return Math.max(sizing.min, Math.min(sizing.max, fitting));
}

export interface ReflectorOptions<T extends KubeObject, S> {
  /** For logs and metrics: `deployments`, `secrets`. */
  name: string;
  /** The collection's URL path, listed and watched, e.g. `/api/v1/secrets`, `/apis/apps/v1/namespaces/ns/deployments`. */
  path: string;
  pageSizing?: PageSizing;
  /** The slim form kept in memory; for Secrets this drops the values (only a keyed hash stays). */
  transform(object: T): S;
  onChange(type: ChangeType, current: S, previous: S | undefined): void;
  /** A watch that delivers nothing (not even a bookmark) for this long is presumed dead and restarted. */
  silenceTimeoutMs?: number;
  log: Logger;
  onError?(error: unknown): void;
}

/**
 * List + watch into an in-memory store of slim objects. Unlike client-node's informer it keeps only what
 * `transform` returns, streams each page of the list (memory: one object, not one page), relists only on
 * 410 Gone (a failed watch resumes from its last resourceVersion, with backoff), and restarts a watch that
 * went silent. Its requests go through the KubeConfig's agent: with a PooledKubeConfig, two kept-alive
 * connections carry every page (the next one is asked for while one streams) and then the watch.
 */
export class Reflector<T extends KubeObject, S> {
  /**
   * By namespace, then name: no `namespace/name` key string per object (at 100,000 Secrets that string was an
   * eighth of the cache), and each namespace's name is held once.
   */
  private readonly store = new Map<string, Map<string, S>>();
  private objects = 0;
  private resourceVersion = '';
  private stopped = false;
  private abort?: AbortController;
  private silenceTimer?: NodeJS.Timeout;
  private wakeUp?: () => void;
  private failures = 0;
  private syncedResolve!: () => void;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));
  private hasSynced = false;
  /** Full lists done so far (1 after start; one more after each 410 Gone). */
  lists = 0;
  /** Pages fetched so far, over all lists. */
  pages = 0;
  /** Watch requests made so far. */
  watches = 0;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly options: ReflectorOptions<T, S>,
  ) {}

  get isSynced(): boolean {
    return this.hasSynced;
  }

  get(namespace: string, name: string): S | undefined {
    return this.store.get(namespace)?.get(name);
  }

  /** Objects in the cache. */
  get size(): number {
    return this.objects;
  }

  *values(): IterableIterator<S> {
    for (const names of this.store.values()) yield* names.values();
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.silenceTimer);
    this.abort?.abort();
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    let mustList = true;
    while (!this.stopped) {
      const phase = mustList ? 'list' : 'watch';
      try {
        if (mustList) {
          await this.list();
          mustList = false;
          this.failures = 0;
        }
        const startedAt = Date.now();
        const end = await this.watch();
        // A normal end (the server's timeoutSeconds, or silence): resume from the last version at once;
        // but a server that ends watches as soon as they start is a failure, or this would spin.
        if (end === 'server' && Date.now() - startedAt < 1000 && !this.stopped) await this.backoff(new Error('watch ended at once'), 'watch');
        else this.failures = 0;
      } catch (error) {
        if (this.stopped) return;
        if (isGone(error) && phase === 'watch') {
          this.options.log.info({ reflector: this.options.name }, 'watch expired (410 Gone); relisting');
          mustList = true;
          continue;
        }
        await this.backoff(error, phase); // a list starts over; a watch resumes from its last version
      }
    }
  }

  private async list(): Promise<void> {
    const abort = (this.abort = new AbortController());
    const sizing = this.options.pageSizing ?? DEFAULT_PAGE_SIZING;
    // Only a relist can find objects that are gone: the first list starts from an empty cache.
    const seen = this.objects > 0 ? new Map<string, Set<string>>() : undefined;
    const onItem = (item: unknown) => {
      const [namespace, name] = keyOf(item as T);
      if (seen) setOf(seen, namespace).add(name);
      this.apply('add', namespace, name, item as T);
    };
    let resourceVersion = '';
    let items = 0;
    let bytes = 0;
    const ask = (continueToken?: string) => {
      this.pages += 1;
      return requestListPage(this.kubeConfig, this.options.path, { limit: nextPageLimit(sizing, items, bytes), continueToken }, abort.signal);
    };
    // The apiserver builds a page whole before its first byte (~60 µs per Secret): the next page is asked for as
    // soon as this one's continue token is in (it comes before the items), so that it is built while this one
    // streams. At most two requests, read in order; a second kept-alive connection carries the other.
    let next: Promise<IncomingMessage> | undefined = ask();
    try {
      while (next && !this.stopped) {
        const response = await next;
        next = undefined;
        const page = await readListPage(response, onItem, (token) => {
          if (this.stopped) return;
          next = ask(token);
          next.catch(() => {}); // its failure is met where it is awaited
        });
        items += page.items;
        bytes += page.bytes;
        resourceVersion ||= page.resourceVersion; // every page of one list is the same snapshot
        if (page.continueToken && !next && !this.stopped) next = ask(page.continueToken); // a head without the token
      }
    } finally {
      void next?.then((unread) => unread.destroy(), () => {}); // stopped, or this page failed: not read
    }
    if (this.stopped) return;
    this.lists += 1;
    if (seen) {
      for (const [namespace, names] of [...this.store.entries()]) {
        for (const [name, old] of [...names.entries()]) {
          if (seen.get(namespace)?.has(name)) continue;
          this.remove(namespace, name);
          this.options.onChange('delete', old, old);
        }
      }
    }
    this.resourceVersion = resourceVersion;
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.syncedResolve();
    }
  }

  /** How a watch ended without an error: the server closed it, or it went silent. */
  private async watch(): Promise<'server' | 'silence'> {
    let end: 'server' | 'silence' = 'server';
    if (this.stopped) return end;
    const abort = (this.abort = new AbortController());
    this.watches += 1;
    const armSilenceTimer = () => {
      clearTimeout(this.silenceTimer);
      const timeoutMs = this.options.silenceTimeoutMs ?? 180_000;
      this.silenceTimer = setTimeout(() => {
        this.options.log.warn({ reflector: this.options.name, silentForMs: timeoutMs }, 'watch went silent; restarting it');
        end = 'silence';
        abort.abort(); // ends watchStream normally: the loop resumes from the last version
      }, timeoutMs);
      this.silenceTimer.unref();
    };
    armSilenceTimer();
    try {
      await watchStream(
        this.kubeConfig,
        this.options.path,
        { allowWatchBookmarks: true, resourceVersion: this.resourceVersion, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
        (event) => {
          armSilenceTimer();
          this.handle(event);
        },
        abort.signal,
      );
    } finally {
      clearTimeout(this.silenceTimer);
      abort.abort();
    }
    return end;
  }

  private handle({ type, object }: WatchEvent): void {
    if (type === 'ERROR') {
      throw object?.code === 410 ? new KubeHttpError(410, 'watch expired') : new Error(`watch error: ${String(object?.message ?? 'unknown').slice(0, 300)}`);
    }
    const version = object?.metadata?.resourceVersion;
    if (type !== 'BOOKMARK') {
      const [namespace, name] = keyOf(object as T);
      if (type === 'DELETED') {
        const old = this.get(namespace, name);
        this.remove(namespace, name);
        this.options.onChange('delete', old ?? this.options.transform(object as T), old);
      } else {
        this.apply(type === 'ADDED' ? 'add' : 'update', namespace, name, object as T);
      }
    }
    if (version) this.resourceVersion = version; // after the change is in the store
  }

  private apply(type: ChangeType, namespace: string, name: string, object: T): void {
    const slim = this.options.transform(object);
    let names = this.store.get(namespace);
    if (!names) this.store.set(namespace, (names = new Map()));
    const previous = names.get(name);
    names.set(name, slim);
    if (!previous) this.objects += 1;
    this.options.onChange(previous ? 'update' : type, slim, previous);
  }

  private remove(namespace: string, name: string): void {
    const names = this.store.get(namespace);
    if (!names?.delete(name)) return;
    this.objects -= 1;
    if (names.size === 0) this.store.delete(namespace);
  }

  private async backoff(error: unknown, during: string): Promise<void> {
    this.failures += 1;
    const delayMs = Math.min(30_000, 500 * 2 ** Math.min(this.failures - 1, 6)) * (0.8 + Math.random() * 0.4);
    this.options.log.warn({ reflector: this.options.name, during, err: describeKubeError(error), retryInMs: Math.round(delayMs) }, 'list/watch failed; retrying');
    this.options.onError?.(error);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      timer.unref();
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = undefined;
  }
}

function keyOf(object: KubeObject): [namespace: string, name: string] {
  return [object.metadata?.namespace ?? '', object.metadata?.name ?? ''];
}

function setOf(sets: Map<string, Set<string>>, key: string): Set<string> {
  let set = sets.get(key);
  if (!set) sets.set(key, (set = new Set()));
  return set;
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
