import nodeVault from 'node-vault';
import type Bottleneck from 'bottleneck';
import type { Logger } from 'pino';
import { loginRequest, type VaultAuthConfig } from './auth.js';
import { toVaultError, VaultRequestError } from './errors.js';
import { formatPath, type KvPath } from './path.js';
import type { KvMetadata, VaultPort } from './port.js';

export interface VaultConnectionConfig {
  addr: string;
  /** Vault Enterprise / OpenBao namespace, sent as X-Vault-Namespace. */
  namespace?: string;
  /** PEM CA bundle for a Vault with a private CA. */
  caCert?: string;
  timeoutMs: number;
}

/**
 * The one adapter over node-vault. Every request, the login included, takes a token from the shared
 * limiter first; errors leave as VaultRequestError and never carry the SDK error (it holds the body).
 */
export class NodeVaultClient implements VaultPort {
  private readonly client: nodeVault.client;
  private authenticated = false;

  constructor(
    connection: VaultConnectionConfig,
    private readonly auth: VaultAuthConfig,
    private readonly limiter: Bottleneck,
    private readonly log: Logger,
  ) {
    this.client = nodeVault({
      apiVersion: 'v1',
      endpoint: connection.addr,
      namespace: connection.namespace,
      token: auth.method === 'token' ? auth.token : undefined,
      requestOptions: { timeout: connection.timeoutMs, ...(connection.caCert ? { ca: connection.caCert } : {}) },
    });
    this.authenticated = auth.method === 'token';
  }

  /** Logs in (for login-based methods); a static token is checked with a token lookup. */
  async login(): Promise<void> {
    const request = await loginRequest(this.auth);
    if (!request) {
      await this.limited('token-lookup', 'self', () => this.client.tokenLookupSelf());
      this.authenticated = true;
      return;
    }
    const result = await this.limited('login', request.path, () => this.client.write(request.path, request.body));
    const token = result?.auth?.client_token;
    if (typeof token !== 'string') throw new VaultRequestError('login', request.path, 200, 'unknown', 'the response holds no client token');
    this.client.token = token;
    this.authenticated = true;
    this.log.info({ method: this.auth.method, policies: result.auth.policies, ttlSeconds: result.auth.lease_duration }, 'logged in to Vault');
  }

  async writeData(path: KvPath, data: Record<string, string>, options?: { cas?: number }): Promise<{ version: number }> {
    const body = options?.cas === undefined ? { data } : { data, options: { cas: options.cas } };
    const result = await this.call('write', path, `${path.mount}/data/${path.key}`, (p) => this.client.write(p, body));
    return { version: Number(result?.data?.version ?? 0) };
  }

  async writeMetadata(path: KvPath, customMetadata: Record<string, string>): Promise<void> {
    await this.call('write-metadata', path, `${path.mount}/metadata/${path.key}`, (p) => this.client.write(p, { custom_metadata: customMetadata }));
  }

  async readMetadata(path: KvPath): Promise<KvMetadata | undefined> {
    try {
      const result = await this.call('read-metadata', path, `${path.mount}/metadata/${path.key}`, (p) => this.client.read(p));
      const currentVersion = Number(result?.data?.current_version ?? 0);
      const current = result?.data?.versions?.[String(currentVersion)];
      return {
        currentVersion,
        customMetadata: result?.data?.custom_metadata ?? {},
        // A soft-deleted or destroyed latest version leaves current_version unchanged: drift all the same.
        currentVersionDeleted: current ? Boolean(current.destroyed) || (current.deletion_time ?? '') !== '' : false,
      };
    } catch (error) {
      if (error instanceof VaultRequestError && error.kind === 'not-found') return undefined;
      throw error;
    }
  }

  async readData(path: KvPath): Promise<Record<string, string> | undefined> {
    try {
      const result = await this.call('read', path, `${path.mount}/data/${path.key}`, (p) => this.client.read(p));
      return result?.data?.data ?? undefined;
    } catch (error) {
      if (error instanceof VaultRequestError && error.kind === 'not-found') return undefined;
      throw error;
    }
  }

  async deleteLatest(path: KvPath): Promise<void> {
    await this.call('delete', path, `${path.mount}/data/${path.key}`, (p) => this.client.delete(p));
  }

  async deleteAll(path: KvPath): Promise<void> {
    await this.call('delete', path, `${path.mount}/metadata/${path.key}`, (p) => this.client.delete(p));
  }

  /** A request with one re-login when Vault says the token is no longer good (403). */
  private async call<T>(operation: string, path: KvPath, apiPath: string, request: (apiPath: string) => Promise<T>): Promise<T> {
    if (!this.authenticated) await this.login();
    try {
      return await this.limited(operation, formatPath(path), () => request(apiPath));
    } catch (error) {
      if (error instanceof VaultRequestError && error.kind === 'forbidden' && this.auth.method !== 'token') {
        this.log.warn({ operation, path: formatPath(path) }, 'Vault answered 403; logging in again once');
        await this.login();
        return await this.limited(operation, formatPath(path), () => request(apiPath));
      }
      throw error;
    }
  }

  private async limited<T>(operation: string, target: string, request: () => Promise<T>): Promise<T> {
    try {
      return await this.limiter.schedule(request);
    } catch (error) {
      if (error instanceof VaultRequestError) throw error;
      throw toVaultError(operation, target, error);
    }
  }
}
