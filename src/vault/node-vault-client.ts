import nodeVault from 'node-vault';
import type { Logger } from 'pino';
import { loginRequest, type VaultAuthConfig } from './auth.js';
import { toVaultError, VaultRequestError } from './errors.js';
import { LimiterStoppedError, Priority, type VaultRateLimiter } from './limiter.js';
import type { VaultMetrics } from './metrics.js';
import { formatPath, kvApiPath, NonCanonicalPathError, quoteForMessage, type KvApi, type KvPath } from './path.js';
import type { KvMetadata, RequestContext, WriteResult } from './port.js';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryPolicy } from './retry.js';
import { VaultTransport } from './transport.js';

export interface VaultConnectionConfig {
  addr: string;
  /** Vault Enterprise / OpenBao namespace, sent as X-Vault-Namespace. */
  namespace?: string;
  /** PEM CA bundle for a Vault with a private CA. */
  caCert?: string;
  timeoutMs: number;
}

export interface NodeVaultClientOptions {
  connection: VaultConnectionConfig;
  auth: VaultAuthConfig;
  limiter: VaultRateLimiter;
  log: Logger;
  metrics?: VaultMetrics;
  retry?: RetryPolicy;
  /** Renew the token when this fraction of its TTL has passed (default 2/3). */
  renewAtFraction?: number;
}

/** Per-operation hooks (the batcher's), with the request's context (which source it is for). */
export interface RequestHooks extends Pick<RequestContext, 'source'> {
  /** The operation's first request got its rate-limit token and is being sent. */
  onStart?(): void;
}

export interface WriteOptions extends RequestHooks {
  cas?: number;
  /** Stream the body (the memory-aware path for large secrets); counted in vault_memory_optimization_applied_total. */
  stream?: boolean;
}

/** KV v1 has no metadata endpoint: the ownership marks ride in the data under this key (as External Secrets does). */
export const KV1_METADATA_KEY = 'custom_metadata';

/** Operations of the auth level (see pipeline.ts `Level`): they skip the batcher and go first in the limiter. */
const AUTH_OPERATIONS: ReadonlySet<string> = new Set(['login', 'renew', 'token-lookup', 'mount-lookup']);

/**
 * node-vault's debug channel, replaced: it would print write bodies (values) and the request options of
 * every call. Nothing of it is worth a risk; our own logs say which request failed and why.
 */
function silentDebug(): void {}

/** Options every request passes to node-vault, which hands them to the transport: `onSent` tells the limiter the request left. */
interface PerRequest {
  onSent(): void;
}
type Send<T> = (perRequest: PerRequest) => Promise<T>;

/**
 * The one adapter over node-vault (only this file imports it). Every request (login, renewal, lookup, mount
 * detection, read, write, delete) takes a token from the shared limiter, each retry again; transient
 * failures are retried with backoff (retry.ts); a 403 on a logged-in token triggers one re-login and one
 * more try; errors leave as VaultRequestError and never carry a request body.
 *
 * node-vault sends through our transport (transport.ts, plugged in via its `request-promise` option): that
 * is how a 429's Retry-After reaches the retry policy, and how large bodies are streamed.
 *
 * It is not the port: it checks no scope. Only the pipeline (pipeline.ts, which enforces each request's
 * scope) calls its KV methods.
 */
export class NodeVaultClient {
  private readonly client: nodeVault.client;
  private readonly transport: VaultTransport;
  private readonly limiter: VaultRateLimiter;
  private readonly log: Logger;
  private readonly metrics?: VaultMetrics;
  private readonly auth: VaultAuthConfig;
  private readonly retry: RetryPolicy;
  private readonly renewAtFraction: number;

  private loggedIn = false;
  private loginInFlight?: Promise<void>;
  /** Bumped at each login, so that many requests failing with 403 at once cause one re-login, not many. */
  private tokenGeneration = 0;
  /** performance.now() at which the token expires; undefined = does not expire. */
  private tokenExpiresAt?: number;
  /** TTL granted by the last login, to tell a renewal that still helps from one capped by the max TTL. */
  private loginTtlSeconds = 0;
  private renewTimer?: NodeJS.Timeout;
  private accessor?: string;
  private closed = false;
  private readonly kvVersions = new Map<string, Promise<1 | 2>>();
  /** KV v1 only: the marks last read or written per path, so a data write keeps them without a read. */
  private readonly kv1Marks = new Map<string, Record<string, string>>();

  constructor(options: NodeVaultClientOptions) {
    this.limiter = options.limiter;
    this.log = options.log;
    this.metrics = options.metrics;
    this.auth = options.auth;
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.renewAtFraction = options.renewAtFraction ?? 2 / 3;
    this.transport = new VaultTransport({ address: options.connection.addr, caCert: options.connection.caCert, timeoutMs: options.connection.timeoutMs });
    this.client = nodeVault({
      apiVersion: 'v1',
      endpoint: options.connection.addr,
      namespace: options.connection.namespace,
      token: options.auth.method === 'token' ? options.auth.token : '',
      requestOptions: { timeout: options.connection.timeoutMs },
      'request-promise': this.transport.asRequestPromise(),
      // node-vault logs every request body (secret values) through the `debug` module when DEBUG names it
      // (DEBUG=node-vault, DEBUG=*): this replaces that channel, whatever DEBUG says. It keeps nothing.
      debug: silentDebug,
    });
    this.metrics?.tokenTtlFrom(() => (this.tokenExpiresAt === undefined ? 0 : (this.tokenExpiresAt - performance.now()) / 1000));
  }

  /**
   * Logs in (login methods) or checks the static token with a lookup; schedules renewal when the token
   * expires. Concurrent callers share one login. Rejects with a VaultRequestError naming the login.
   */
  login(): Promise<void> {
    if (this.closed) return Promise.reject(new VaultRequestError('login', 'auth', undefined, 'stopped', 'the client is closed'));
    this.loginInFlight ??= this.doLogin().finally(() => {
      this.loginInFlight = undefined;
    });
    return this.loginInFlight;
  }

  private async doLogin(): Promise<void> {
    const request = await loginRequest(this.auth).catch((error: NodeJS.ErrnoException) => {
      // The token or secret_id file: say which and why, not its content.
      throw new VaultRequestError('login', `auth/${'mount' in this.auth ? this.auth.mount : 'token'}`, undefined, 'bad-request', `cannot read the credential file (${error.code ?? 'error'})`);
    });
    try {
      if (!request) {
        const result = await this.request('token-lookup', 'auth/token/lookup-self', (o) => this.client.read('auth/token/lookup-self', o), { priority: Priority.auth });
        const ttl = Number(result?.data?.ttl ?? 0);
        this.accessor = typeof result?.data?.accessor === 'string' ? result.data.accessor : undefined;
        this.tokenAcquired(ttl, Boolean(result?.data?.renewable));
        this.log.info({ method: 'token', policies: result?.data?.policies, ttlSeconds: ttl }, 'Vault token accepted');
      } else {
        const result = await this.request('login', request.path, (o) => this.client.write(request.path, request.body, { ...o, noToken: true }), { priority: Priority.auth });
        const token = result?.auth?.client_token;
        if (typeof token !== 'string') throw new VaultRequestError('login', request.path, 200, 'unknown', 'the response holds no client token');
        this.client.token = token;
        this.accessor = typeof result.auth.accessor === 'string' ? result.auth.accessor : undefined;
        const ttl = Number(result.auth.lease_duration ?? 0);
        this.loginTtlSeconds = ttl;
        this.tokenAcquired(ttl, Boolean(result.auth.renewable));
        this.log.info({ method: this.auth.method, policies: result.auth.policies, ttlSeconds: ttl }, 'logged in to Vault');
      }
      this.metrics?.auth('login', 'success');
    } catch (error) {
      this.metrics?.auth('login', 'failure');
      throw error;
    }
  }

  /** A usable token right now: logged in (or the static token accepted) and not past its expiry. */
  get authenticated(): boolean {
    return this.loggedIn && (this.tokenExpiresAt === undefined || this.tokenExpiresAt > performance.now());
  }

  /** The accessor of the current token (not a secret: it can look the token up or revoke it, not use it). */
  get tokenAccessor(): string | undefined {
    return this.accessor;
  }

  /** Seconds the current token has left; undefined when it does not expire. */
  get tokenTtlSeconds(): number | undefined {
    return this.tokenExpiresAt === undefined ? undefined : Math.max(0, (this.tokenExpiresAt - performance.now()) / 1000);
  }

  private tokenAcquired(ttlSeconds: number, renewable: boolean): void {
    this.loggedIn = true;
    this.tokenGeneration++;
    this.tokenExpiresAt = ttlSeconds > 0 ? performance.now() + ttlSeconds * 1000 : undefined;
    this.scheduleRenewal(ttlSeconds, renewable);
  }

  /** Renews at 2/3 of the TTL; a login method logs in again when renewal fails or no longer extends the token. */
  private scheduleRenewal(ttlSeconds: number, renewable: boolean): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (this.closed || !(ttlSeconds > 0)) return;
    const canLogin = this.auth.method !== 'token';
    if (!renewable && !canLogin) {
      this.log.warn({ ttlSeconds }, 'the Vault token is not renewable and expires; give the operator a renewable or periodic token');
      return;
    }
    this.renewTimer = setTimeout(() => void this.renewOrLogin(renewable), Math.max(1000, ttlSeconds * 1000 * this.renewAtFraction));
    this.renewTimer.unref();
  }

  private async renewOrLogin(renewable: boolean): Promise<void> {
    if (this.closed) return;
    const canLogin = this.auth.method !== 'token';
    if (renewable) {
      try {
        const result = await this.request('renew', 'auth/token/renew-self', (o) => this.client.write('auth/token/renew-self', {}, o), { priority: Priority.auth });
        const ttl = Number(result?.auth?.lease_duration ?? 0);
        this.metrics?.auth('renew', 'success');
        // Near its max TTL a renewal returns only what is left: then a fresh login is worth more.
        if (!canLogin || ttl >= this.loginTtlSeconds / 2) {
          this.tokenExpiresAt = ttl > 0 ? performance.now() + ttl * 1000 : undefined;
          this.log.debug({ ttlSeconds: ttl }, 'renewed the Vault token');
          this.scheduleRenewal(ttl, result?.auth?.renewable !== false);
          return;
        }
        this.log.info({ ttlSeconds: ttl }, 'the Vault token is near its max TTL; logging in again');
      } catch (error) {
        this.metrics?.auth('renew', 'failure');
        if (!canLogin) {
          this.log.error({ err: error instanceof Error ? error.message : String(error) }, 'could not renew the Vault token; it will expire');
          return;
        }
        this.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not renew the Vault token; logging in again');
      }
    }
    if (!canLogin || this.closed) return;
    try {
      await this.login();
    } catch (error) {
      // The next request logs in again (call() sees no valid login); retry the background login meanwhile.
      this.loggedIn = false;
      this.log.error({ err: error instanceof Error ? error.message : String(error) }, 'Vault login failed; the next request tries again');
    }
  }

  /**
   * The KV version of each mount (sys/internal/ui/mounts/<mount>), checked once at start so that a missing
   * mount or a token that may not use it stops the operator with a clear message.
   */
  async checkMounts(mounts: readonly string[]): Promise<Map<string, 1 | 2>> {
    const versions = new Map<string, 1 | 2>();
    for (const mount of mounts) versions.set(mount, await this.kvVersion(mount));
    return versions;
  }

  kvVersion(mount: string): Promise<1 | 2> {
    let known = this.kvVersions.get(mount);
    if (!known) {
      known = this.detectKvVersion(mount);
      this.kvVersions.set(mount, known);
      known.catch(() => this.kvVersions.delete(mount)); // ask again next time
    }
    return known;
  }

  private async detectKvVersion(mount: string): Promise<1 | 2> {
    let result: any;
    try {
      result = await this.call('mount-lookup', `sys/internal/ui/mounts/${mount}`, (o) => this.client.read(`sys/internal/ui/mounts/${mount}`, o));
    } catch (error) {
      if (error instanceof VaultRequestError && (error.kind === 'forbidden' || error.kind === 'not-found' || error.kind === 'bad-request')) {
        throw new VaultRequestError('mount-lookup', mount, error.statusCode, 'not-found', `the KV mount "${mount}/" does not exist or this token may not use it (HTTP ${error.statusCode}); check --vault-kv-mounts and the token's policy`);
      }
      throw error;
    }
    const type = result?.data?.type;
    if (type !== 'kv' && type !== 'generic') {
      throw new VaultRequestError('mount-lookup', mount, 200, 'bad-request', `"${mount}/" is a ${String(type)} mount, not a KV secrets engine; check --vault-kv-mounts`);
    }
    const version = String(result?.data?.options?.version ?? '1') === '2' ? 2 : 1;
    this.log.info({ mount, kvVersion: version }, 'KV mount detected');
    return version;
  }

  async writeData(path: KvPath, data: ReadonlyMap<string, string>, writeOptions: WriteOptions = {}, context?: Pick<RequestContext, 'source'>): Promise<WriteResult> {
    // The hooks ride in the write options (the pipeline's way); a caller of the port may give the context apart.
    const options: WriteOptions = context?.source !== undefined && writeOptions.source === undefined ? { ...writeOptions, source: context.source } : writeOptions;
    const stream = options.stream === true;
    if (stream) this.metrics?.bodyStreamed();
    const requestOptions = stream ? { streamBody: true } : undefined;
    if ((await this.kvVersion(path.mount)) === 1) {
      if (data.has(KV1_METADATA_KEY)) {
        throw new VaultRequestError('write', formatPath(path), undefined, 'bad-request', `the key "${KV1_METADATA_KEY}" is reserved on a KV version 1 mount (it holds the ownership marks)`);
      }
      const marks = this.kv1Marks.get(formatPath(path)) ?? (await this.readKv1(path, options))?.marks ?? {};
      const body = Object.keys(marks).length > 0 ? new Map<string, unknown>([...data, [KV1_METADATA_KEY, marks]]) : data;
      await this.call('write', formatPath(path), (o) => this.client.write(this.apiPath(path, undefined), body, { ...requestOptions, ...o }), options);
      return { version: 0 };
    }
    const body = options.cas === undefined ? { data } : { data, options: { cas: options.cas } };
    const result = await this.call('write', formatPath(path), (o) => this.client.write(this.apiPath(path, 'data'), body, { ...requestOptions, ...o }), options);
    const customMetadata: unknown = result?.data?.custom_metadata;
    return { version: Number(result?.data?.version ?? 0), ...(customMetadata && typeof customMetadata === 'object' ? { customMetadata: Object.fromEntries(stringEntries(customMetadata)) } : {}) };
  }

  async writeMetadata(path: KvPath, customMetadata: Record<string, string>, hooks?: RequestHooks): Promise<void> {
    if ((await this.kvVersion(path.mount)) === 1) {
      // No metadata endpoint: rewrite the data with the new marks (a path not written yet gets them with its data).
      const current = await this.readKv1(path, hooks);
      this.kv1Marks.set(formatPath(path), { ...customMetadata });
      if (current) await this.call('write-metadata', formatPath(path), (o) => this.client.write(this.apiPath(path, undefined), new Map<string, unknown>([...current.data, [KV1_METADATA_KEY, customMetadata]]), o));
      else hooks?.onStart?.();
      return;
    }
    await this.call('write-metadata', formatPath(path), (o) => this.client.write(this.apiPath(path, 'metadata'), { custom_metadata: customMetadata }, o), hooks);
  }

  async readMetadata(path: KvPath, hooks?: RequestHooks): Promise<KvMetadata | undefined> {
    if ((await this.kvVersion(path.mount)) === 1) {
      const current = await this.readKv1(path, hooks);
      return current ? { currentVersion: 0, customMetadata: current.marks ?? {} } : undefined;
    }
    const result = await this.readOrUndefined('read-metadata', path, this.apiPath(path, 'metadata'), hooks);
    if (result === undefined) return undefined;
    const currentVersion = Number(result?.data?.current_version ?? 0);
    const current = result?.data?.versions?.[String(currentVersion)];
    return {
      currentVersion,
      customMetadata: result?.data?.custom_metadata ?? {},
      // A soft-deleted or destroyed latest version leaves current_version unchanged: drift all the same.
      currentVersionDeleted: current ? Boolean(current.destroyed) || (current.deletion_time ?? '') !== '' : false,
    };
  }

  async listFolder(folder: KvPath, hooks?: RequestHooks): Promise<string[]> {
    const apiPath = this.apiPath(folder, (await this.kvVersion(folder.mount)) === 1 ? undefined : 'metadata');
    try {
      // A GET with the fixed query `list=true` (the LIST verb does not pass every HTTP parser on the way).
      const result = await this.call('list', formatPath(folder), (o) => this.client.read(apiPath, { ...o, listQuery: true }), hooks);
      const keys: unknown = result?.data?.keys;
      return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
    } catch (error) {
      if (error instanceof VaultRequestError && error.kind === 'not-found') return []; // an empty or absent folder
      throw error;
    }
  }

  async readData(path: KvPath, hooks?: RequestHooks): Promise<ReadonlyMap<string, string> | undefined> {
    if ((await this.kvVersion(path.mount)) === 1) return (await this.readKv1(path, hooks))?.data;
    const result = await this.readOrUndefined('read', path, this.apiPath(path, 'data'), hooks);
    const data = result?.data?.data;
    return data && typeof data === 'object' ? stringEntries(data) : undefined;
  }

  async deleteLatest(path: KvPath, hooks?: RequestHooks): Promise<void> {
    if ((await this.kvVersion(path.mount)) === 1) return this.deleteAll(path, hooks); // no versions to keep
    await this.call('delete', formatPath(path), (o) => this.client.delete(this.apiPath(path, 'data'), o), hooks);
  }

  async deleteAll(path: KvPath, hooks?: RequestHooks): Promise<void> {
    const v1 = (await this.kvVersion(path.mount)) === 1;
    await this.call('delete', formatPath(path), (o) => this.client.delete(this.apiPath(path, v1 ? undefined : 'metadata'), o), hooks);
    this.kv1Marks.delete(formatPath(path));
  }

  /**
   * The request path of a KV operation, from the one builder (path.ts kvApiPath). A path not in canonical
   * form is a terminal bad request, never sent and never retried.
   */
  private apiPath(path: KvPath, api: KvApi | undefined): string {
    try {
      return kvApiPath(path, api);
    } catch (error) {
      if (!(error instanceof NonCanonicalPathError)) throw error;
      throw new VaultRequestError('request', quoteForMessage(formatPath(path)), undefined, 'bad-request', error.message);
    }
  }

  /** Stops renewing, closes idle connections. Requests still waiting in the limiter are the limiter's to stop. */
  close(): void {
    this.closed = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.transport.close();
  }

  private async readKv1(path: KvPath, hooks?: RequestHooks): Promise<{ data: ReadonlyMap<string, string>; marks?: Record<string, string> } | undefined> {
    const result = await this.readOrUndefined('read', path, this.apiPath(path, undefined), hooks);
    if (result === undefined) return undefined;
    const data = stringEntries(result?.data ?? {});
    const marks = Object.hasOwn(result?.data ?? {}, KV1_METADATA_KEY) ? (result.data as Record<string, unknown>)[KV1_METADATA_KEY] : undefined;
    data.delete(KV1_METADATA_KEY);
    const validMarks = marks && typeof marks === 'object' ? (marks as Record<string, string>) : undefined;
    if (validMarks) this.kv1Marks.set(formatPath(path), validMarks);
    else this.kv1Marks.delete(formatPath(path));
    return { data, marks: validMarks };
  }

  private async readOrUndefined(operation: string, path: KvPath, apiPath: string, hooks?: RequestHooks): Promise<any> {
    try {
      return await this.call(operation, formatPath(path), (o) => this.client.read(apiPath, o), hooks);
    } catch (error) {
      if (error instanceof VaultRequestError && error.kind === 'not-found') return undefined;
      throw error;
    }
  }

  /** A request on behalf of the operator's token: logs in first if needed, and once more after a 403. */
  private async call<T>(operation: string, target: string, send: Send<T>, hooks?: RequestHooks): Promise<T> {
    if (!this.loggedIn) await this.login();
    const generation = this.tokenGeneration;
    try {
      return await this.request(operation, target, send, { onStart: hooks?.onStart, source: hooks?.source });
    } catch (error) {
      if (!(error instanceof VaultRequestError && error.kind === 'forbidden' && this.auth.method !== 'token')) throw error;
      // The token may have been revoked or expired: one fresh login (shared with concurrent failures), one more try.
      if (this.tokenGeneration === generation) {
        this.log.warn({ operation, target }, 'Vault answered 403; logging in again once');
        await this.login();
      }
      return await this.request(operation, target, send, { source: hooks?.source });
    }
  }

  /** One logical request: each attempt takes a limiter token; retryable failures are retried with backoff. */
  private request<T>(operation: string, target: string, send: Send<T>, options: { priority?: number; onStart?: () => void; source?: string } = {}): Promise<T> {
    // The auth level: requests that keep the operator able to talk to Vault at all go before any write.
    const priority = options.priority ?? (AUTH_OPERATIONS.has(operation) ? Priority.auth : undefined);
    return withRetries(
      (attempt) =>
        this.limiter
          .schedule(
            operation,
            (permit) => {
              if (attempt === 1) options.onStart?.();
              return this.timed(operation, target, send, permit.sent);
            },
            { priority: attempt > 1 ? Math.min(priority ?? Priority.retry, Priority.retry) : priority, label: target, source: options.source },
          )
          .catch((error: unknown) => {
            if (error instanceof LimiterStoppedError) throw new VaultRequestError(operation, target, undefined, 'stopped', 'the operator is shutting down');
            throw error;
          }),
      this.retry,
      {
        onRetry: (error, attempt, delayMs) => {
          this.metrics?.retried(operation, error.kind);
          this.log.debug({ operation, target, attempt, delayMs, status: error.statusCode, kind: error.kind }, 'Vault request failed; retrying');
        },
      },
    );
  }

  private async timed<T>(operation: string, target: string, send: Send<T>, onSent: () => void): Promise<T> {
    const started = performance.now();
    try {
      const result = await send({ onSent });
      this.metrics?.requestDone(operation, '200', (performance.now() - started) / 1000);
      return result;
    } catch (raw) {
      const error = toVaultError(operation, target, raw);
      this.metrics?.requestDone(operation, error.statusCode === undefined ? 'none' : String(error.statusCode), (performance.now() - started) / 1000);
      this.metrics?.requestFailed(operation, error.kind);
      throw error;
    }
  }
}

/**
 * A JSON object from Vault (parsed by JSON.parse, so `__proto__` is an own property) as a Map of its
 * string-valued entries: what was written is text, anything else is not ours to hand on.
 */
function stringEntries(object: object): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [key, value] of Object.entries(object)) if (typeof value === 'string') entries.set(key, value);
  return entries;
}
