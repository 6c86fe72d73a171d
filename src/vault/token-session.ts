import type { Logger } from 'pino';
import type { VaultAuthConfig } from '../config.js';
import { loginRequest } from './auth.js';
import { VaultRequestError } from './errors.js';
import { Priority } from './limiter.js';
import type { VaultMetrics } from './metrics.js';
import type { RequestHooks, Requester, Send } from './request-core.js';
import type { SendOptions, VaultApi, VaultRequests } from './vault-api.js';

export interface TokenSessionOptions {
  api: VaultApi;
  core: Requester;
  auth: VaultAuthConfig;
  log: Logger;
  metrics?: VaultMetrics;
  /** Renew the token when this fraction of its TTL has passed (default 2/3). */
  renewAtFraction?: number;
}

/**
 * The operator's Vault token: login (a login method) or a lookup of the static token, renewal at a fraction
 * of the TTL, a fresh login when renewal fails or no longer extends the token, and one re-login after a 403.
 * Every request of the KV strategies passes here (VaultRequests): logged in first if needed, once more after
 * a 403. The unscoped requests that serve no source (login, renew, token-lookup) start here too.
 */
export class TokenSession implements VaultRequests {
  private readonly api: VaultApi;
  private readonly core: Requester;
  private readonly auth: VaultAuthConfig;
  private readonly log: Logger;
  private readonly metrics?: VaultMetrics;
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
  private tokenAccessor?: string;
  private closed = false;

  constructor(options: TokenSessionOptions) {
    this.api = options.api;
    this.core = options.core;
    this.auth = options.auth;
    this.log = options.log;
    this.metrics = options.metrics;
    this.renewAtFraction = options.renewAtFraction ?? 2 / 3;
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

  /** A usable token right now: logged in (or the static token accepted) and not past its expiry. */
  get authenticated(): boolean {
    return this.loggedIn && (this.tokenExpiresAt === undefined || this.tokenExpiresAt > performance.now());
  }

  /** The accessor of the current token (not a secret: it can look the token up or revoke it, not use it). */
  get accessor(): string | undefined {
    return this.tokenAccessor;
  }

  /** Seconds the current token has left; undefined when it does not expire. */
  get ttlSeconds(): number | undefined {
    return this.tokenExpiresAt === undefined ? undefined : Math.max(0, (this.tokenExpiresAt - performance.now()) / 1000);
  }

  /** Stops renewing; a login after this rejects. */
  close(): void {
    this.closed = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  read(operation: string, target: string, apiPath: string, hooks?: RequestHooks, options?: SendOptions): Promise<any> {
    return this.call(operation, target, (o) => this.api.read(apiPath, { ...options, ...o }), hooks);
  }

  write(operation: string, target: string, apiPath: string, body: unknown, hooks?: RequestHooks, options?: SendOptions): Promise<any> {
    return this.call(operation, target, (o) => this.api.write(apiPath, body, { ...options, ...o }), hooks);
  }

  delete(operation: string, target: string, apiPath: string, hooks?: RequestHooks): Promise<any> {
    return this.call(operation, target, (o) => this.api.delete(apiPath, o), hooks);
  }

  /** A request on behalf of the operator's token: logs in first if needed, and once more after a 403. */
  private async call<T>(operation: string, target: string, send: Send<T>, hooks?: RequestHooks): Promise<T> {
    if (!this.loggedIn) await this.login();
    const generation = this.tokenGeneration;
    try {
      return await this.core.request(operation, target, send, { onStart: hooks?.onStart, source: hooks?.source });
    } catch (error) {
      if (!(error instanceof VaultRequestError && error.kind === 'forbidden' && this.auth.method !== 'token')) throw error;
      // The token may have been revoked or expired: one fresh login (shared with concurrent failures), one more try.
      if (this.tokenGeneration === generation) {
        this.log.warn({ operation, target }, 'Vault answered 403; logging in again once');
        await this.login();
      }
      return await this.core.request(operation, target, send, { source: hooks?.source });
    }
  }

  private async doLogin(): Promise<void> {
    const request = await loginRequest(this.auth).catch((error: NodeJS.ErrnoException) => {
      // The token or secret_id file: say which and why, not its content.
      throw new VaultRequestError('login', `auth/${'mount' in this.auth ? this.auth.mount : 'token'}`, undefined, 'bad-request', `cannot read the credential file (${error.code ?? 'error'})`);
    });
    try {
      if (!request) {
        const result = await this.core.request('token-lookup', 'auth/token/lookup-self', (o) => this.api.read('auth/token/lookup-self', o), { priority: Priority.auth });
        const ttl = Number(result?.data?.ttl ?? 0);
        this.tokenAccessor = typeof result?.data?.accessor === 'string' ? result.data.accessor : undefined;
        this.tokenAcquired(ttl, Boolean(result?.data?.renewable));
        this.log.info({ method: 'token', policies: result?.data?.policies, ttlSeconds: ttl }, 'Vault token accepted');
      } else {
        const result = await this.core.request('login', request.path, (o) => this.api.write(request.path, request.body, { ...o, noToken: true }), { priority: Priority.auth });
        const token = result?.auth?.client_token;
        if (typeof token !== 'string') throw new VaultRequestError('login', request.path, 200, 'unknown', 'the response holds no client token');
        this.api.setToken(token);
        this.tokenAccessor = typeof result.auth.accessor === 'string' ? result.auth.accessor : undefined;
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
        const result = await this.core.request('renew', 'auth/token/renew-self', (o) => this.api.write('auth/token/renew-self', {}, o), { priority: Priority.auth });
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
}
