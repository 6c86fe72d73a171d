import type { ScanAnswer } from './detailed-scan.js';
import nodeVault from 'node-vault';
import type { Logger } from 'pino';
import type { VaultAuthConfig } from '../config.js';
import { KvMounts } from './kv-mounts.js';
import type { KvStrategy, WriteOptions } from './kv-strategy.js';
import type { VaultRateLimiter } from './limiter.js';
import type { VaultMetrics } from './metrics.js';
import type { KvPath } from './path.js';
import type { KvMetadata, RequestContext, WriteResult } from './port.js';
import { VaultRequestError } from './errors.js';
import { RequestCore, type RequestHooks } from './request-core.js';
import { serverOfHealth, type DetectedServer } from './server-limits.js';
import type { RetryPolicy } from './retry.js';
import { TokenSession } from './token-session.js';
import { VaultTransport } from './transport.js';
import type { VaultApi } from './vault-api.js';
import type { PageAnswer } from './detailed-listing.js';
import type { ListPage } from './transport.js';

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

/**
 * node-vault's debug channel, replaced: it would print write bodies (values) and the request options of
 * every call. Nothing of it is worth a risk; our own logs say which request failed and why.
 */
function silentDebug(): void {}

/**
 * node-vault as this layer's VaultApi: the one file that imports it. node-vault sends through our transport
 * (transport.ts, plugged in via its `request-promise` option): that is how a 429's Retry-After reaches the
 * retry policy, and how large bodies are streamed.
 */
function nodeVaultApi(connection: VaultConnectionConfig, auth: VaultAuthConfig, transport: VaultTransport): VaultApi {
  const client = nodeVault({
    apiVersion: 'v1',
    endpoint: connection.addr,
    namespace: connection.namespace,
    token: auth.method === 'token' ? auth.token : '',
    requestOptions: { timeout: connection.timeoutMs },
    'request-promise': transport.asRequestPromise(),
    // node-vault logs every request body (secret values) through the `debug` module when DEBUG names it
    // (DEBUG=node-vault, DEBUG=*): this replaces that channel, whatever DEBUG says. It keeps nothing.
    debug: silentDebug,
  });
  return {
    read: (path, options) => client.read(path, options),
    write: (path, body, options) => client.write(path, body, options),
    delete: (path, options) => client.delete(path, options),
    setToken: (token) => {
      client.token = token;
    },
  };
}

/**
 * The Vault client the pipeline sends through, put together from three parts: the request core (a limiter
 * token per attempt, retries, timing, error mapping: request-core.ts), the token session (login, renewal,
 * one re-login after a 403: token-session.ts) and the KV strategy of each mount (v1 or v2, chosen once per
 * mount: kv-mounts.ts). Errors leave as VaultRequestError and never carry a request body.
 *
 * It is not the port: it checks no scope. Only the pipeline (pipeline.ts, which enforces each request's
 * scope) calls its KV methods.
 */
export class NodeVaultClient {
  private readonly transport: VaultTransport;
  private readonly session: TokenSession;
  private readonly mounts: KvMounts;
  private readonly metrics?: VaultMetrics;

  constructor(options: NodeVaultClientOptions) {
    this.metrics = options.metrics;
    this.transport = new VaultTransport({ address: options.connection.addr, caCert: options.connection.caCert, timeoutMs: options.connection.timeoutMs });
    const core = new RequestCore({ limiter: options.limiter, log: options.log, metrics: options.metrics, retry: options.retry });
    this.session = new TokenSession({
      api: nodeVaultApi(options.connection, options.auth, this.transport),
      core,
      auth: options.auth,
      log: options.log,
      metrics: options.metrics,
      renewAtFraction: options.renewAtFraction,
    });
    this.mounts = new KvMounts(this.session, options.log);
  }

  /** Logs in, or checks the static token; concurrent callers share one login. */
  login(): Promise<void> {
    return this.session.login();
  }

  /** A usable token right now: logged in (or the static token accepted) and not past its expiry. */
  get authenticated(): boolean {
    return this.session.authenticated;
  }

  /** The accessor of the current token (not a secret: it can look the token up or revoke it, not use it). */
  get tokenAccessor(): string | undefined {
    return this.session.accessor;
  }

  /** Seconds the current token has left; undefined when it does not expire. */
  get tokenTtlSeconds(): number | undefined {
    return this.session.ttlSeconds;
  }

  /** The KV version of each mount, checked at start: a missing mount or one this token may not use is a clear error. */
  checkMounts(mounts: readonly string[]): Promise<Map<string, 1 | 2>> {
    return this.mounts.checkMounts(mounts);
  }

  kvVersion(mount: string): Promise<1 | 2> {
    return this.mounts.kvVersion(mount);
  }

  /**
   * Which server answers (OpenBao or HashiCorp Vault), from the unauthenticated `sys/health`: one request, sent
   * without the token (any token may ask, and none is needed). An answer that tells nothing, or none, is
   * 'unknown'; the caller then keeps the limits every server accepts.
   */
  async detectServer(): Promise<DetectedServer> {
    try {
      return serverOfHealth(await this.session.read('server-detect', 'sys/health', 'sys/health', undefined, { noToken: true, healthQuery: true }));
    } catch (error) {
      const why = error instanceof VaultRequestError ? error.message : 'no answer';
      return { kind: 'unknown', evidence: `sys/health failed: ${why}` };
    }
  }

  async writeData(path: KvPath, data: ReadonlyMap<string, string>, writeOptions: WriteOptions = {}, context?: Pick<RequestContext, 'source'>): Promise<WriteResult> {
    // The hooks ride in the write options (the pipeline's way); a caller of the port may give the context apart.
    const options: WriteOptions = context?.source !== undefined && writeOptions.source === undefined ? { ...writeOptions, source: context.source } : writeOptions;
    if (options.stream === true) this.metrics?.bodyStreamed();
    return (await this.kv(path)).writeData(path, data, options);
  }

  async writeMetadata(path: KvPath, customMetadata: Record<string, string>, hooks?: RequestHooks): Promise<void> {
    return (await this.kv(path)).writeMetadata(path, customMetadata, hooks);
  }

  async readMetadata(path: KvPath, hooks?: RequestHooks): Promise<KvMetadata | undefined> {
    return (await this.kv(path)).readMetadata(path, hooks);
  }

  async listFolder(folder: KvPath, hooks?: RequestHooks): Promise<string[]> {
    return (await this.kv(folder)).listFolder(folder, hooks);
  }

  async listDetailedPage(folder: KvPath, page: ListPage, hooks?: RequestHooks): Promise<PageAnswer> {
    return (await this.kv(folder)).listDetailedPage(folder, page, hooks);
  }

  async scanDetailed(folder: KvPath, maxBytes: number, hooks?: RequestHooks): Promise<ScanAnswer> {
    return (await this.kv(folder)).scanDetailed(folder, maxBytes, hooks);
  }

  async readData(path: KvPath, hooks?: RequestHooks): Promise<ReadonlyMap<string, string> | undefined> {
    return (await this.kv(path)).readData(path, hooks);
  }

  async deleteLatest(path: KvPath, hooks?: RequestHooks): Promise<void> {
    return (await this.kv(path)).deleteLatest(path, hooks);
  }

  async deleteAll(path: KvPath, hooks?: RequestHooks): Promise<void> {
    return (await this.kv(path)).deleteAll(path, hooks);
  }

  /** Stops renewing, closes idle connections. Requests still waiting in the limiter are the limiter's to stop. */
  close(): void {
    this.session.close();
    this.transport.close();
  }

  private kv(path: KvPath): Promise<KvStrategy> {
    return this.mounts.strategyFor(path.mount);
  }
}
