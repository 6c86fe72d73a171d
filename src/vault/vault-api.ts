import type { PerRequest, RequestHooks } from './request-core.js';
import type { ListPage } from './transport.js';

/**
 * Our transport's own per-request options (transport.ts TransportRequest), passed through the SDK. Fixed
 * flags only: nothing here is built from input.
 */
export interface SendOptions {
  /** Serialize the body piece by piece (large secrets). */
  streamBody?: boolean;
  /** Send no X-Vault-Token (logins: a revoked token must not get in the way of getting a new one). */
  noToken?: boolean;
  /** A KV LIST, sent as GET with the fixed query `?list=true`. */
  listQuery?: boolean;
  /** `sys/health` with the fixed query that makes a standby answer 200 (the server detection at start). */
  healthQuery?: boolean;
  /** With listQuery: one page (`&limit=…&after=…`, checked by the transport). */
  listPage?: ListPage;
  /** A recursive SCAN (OpenBao), sent as GET with the fixed query `?scan=true`. */
  scanQuery?: boolean;
  /** Read at most this many bytes of the answer: past it the request is aborted (a terminal `too-large`). */
  maxResponseBytes?: number;
}

/**
 * The Vault SDK as this layer uses it: three verbs on a path below /v1, and the token it sends. Only
 * node-vault-client.ts imports the SDK; it adapts it to this.
 */
export interface VaultApi {
  read(path: string, options: SendOptions & PerRequest): Promise<any>;
  write(path: string, body: unknown, options: SendOptions & PerRequest): Promise<any>;
  delete(path: string, options: SendOptions & PerRequest): Promise<any>;
  /** The token sent as X-Vault-Token from now on. */
  setToken(token: string): void;
}

/**
 * Requests on behalf of the operator's token, named by operation (`read`, `write-metadata`, `mount-lookup`,
 * ...: metric labels) and target (the path as messages show it), sent to `apiPath`. What the KV strategies
 * and the mount detection are given: the token session implements it; a unit test hands them a fake.
 */
export interface VaultRequests {
  read(operation: string, target: string, apiPath: string, hooks?: RequestHooks, options?: SendOptions): Promise<any>;
  write(operation: string, target: string, apiPath: string, body: unknown, hooks?: RequestHooks, options?: SendOptions): Promise<any>;
  delete(operation: string, target: string, apiPath: string, hooks?: RequestHooks): Promise<any>;
}
