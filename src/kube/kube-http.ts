import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ListSplitter } from './list-splitter.js';

/**
 * A KubeConfig whose raw requests (the list/watch requests below, ClusterClient's reads) go through ONE
 * keep-alive agent. client-node 1.x builds a new https.Agent for every request (`applyToHTTPSOptions`), so
 * every request paid a TCP and TLS handshake: 600 of them for a paged list of 30,000 Secrets.
 * The generated API clients (patches, status writes, Events: a handful per sync) keep client-node's one-off
 * agents: they read responses through node-fetch 2, which misreads a chunked response on a reused keep-alive
 * socket as "Premature close" (node-fetch#1767) — seen here as every status write of the image failing after
 * the first sync. Credentials stay per request (the bearer token is a header, re-read each time, so rotation works);
 * the agent is rebuilt only when the TLS material itself changes (CA, client certificate), and the old one is
 * then closed (its watches restart from their last resourceVersion on the new one).
 * A cluster reached through a proxy (`proxy-url`) keeps client-node's own agents.
 */
export class PooledKubeConfig extends KubeConfig {
  private agent?: http.Agent;
  private agentKey = '';

  /** The same clusters, users and contexts as `source`, with one shared agent. */
  static from(source: KubeConfig): PooledKubeConfig {
    if (source instanceof PooledKubeConfig) return source;
    const pooled = new PooledKubeConfig();
    pooled.loadFromOptions({ clusters: source.clusters, users: source.users, contexts: source.contexts, currentContext: source.currentContext });
    return pooled;
  }

  override async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    opts.agent = this.shared(opts.agent as http.Agent | undefined);
  }

  /** Closes the shared agent's connections (on stop). */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
    this.agentKey = '';
  }

  /** The shared keep-alive agent equivalent to the one-off agent client-node just built. */
  private shared(oneOff: http.Agent | https.Agent | false | undefined): http.Agent | https.Agent | false | undefined {
    if (!oneOff || (oneOff.constructor !== https.Agent && oneOff.constructor !== http.Agent)) return oneOff; // proxies: as built
    const tls = pickTls((oneOff as https.Agent).options ?? {});
    const key = `${oneOff.constructor === https.Agent ? 'https' : 'http'}:${fingerprint(tls)}`;
    if (this.agent && key === this.agentKey) return this.agent;
    this.agent?.destroy();
    const options = { ...tls, keepAlive: true, keepAliveMsecs: 30_000, maxFreeSockets: 4, scheduling: 'lifo' as const };
    this.agent = oneOff.constructor === https.Agent ? new https.Agent(options) : new http.Agent(options);
    this.agentKey = key;
    return this.agent;
  }
}

const TLS_FIELDS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

function pickTls(options: https.AgentOptions): https.AgentOptions {
  const picked: Record<string, unknown> = {};
  for (const field of TLS_FIELDS) if (options[field] !== undefined && options[field] !== null) picked[field] = options[field];
  return picked as https.AgentOptions;
}

function fingerprint(tls: https.AgentOptions): string {
  const hash = createHash('sha256');
  for (const field of TLS_FIELDS) {
    const value = tls[field];
    hash.update(`${field}=`);
    if (value === undefined) hash.update('-');
    else if (Buffer.isBuffer(value) || typeof value === 'string') hash.update(value);
    else hash.update(JSON.stringify(value));
    hash.update('\n');
  }
  return hash.digest('hex');
}

/** An HTTP error from the apiserver: the status code and the Status message (never a request body). */
export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'KubeHttpError';
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

/** GET `path` on the current cluster; resolves with the response once the status is 200, else rejects. */
export async function kubeGet(kubeConfig: KubeConfig, path: string, query: Query, signal?: AbortSignal, idleTimeoutMs?: number): Promise<http.IncomingMessage> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== '') url.searchParams.set(name, String(value));
  const options: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const transport = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    // Only the agent carries TLS (so every request lands in the agent's one pool), the options the credentials.
    const request = transport.request(url, { method: 'GET', headers: options.headers, auth: options.auth, agent: options.agent, signal }, (response) => {
      if (response.statusCode === 200) return resolve(response);
      statusMessage(response).then(
        (message) => reject(new KubeHttpError(response.statusCode ?? 0, message)),
        (error) => reject(error),
      );
    });
    request.on('error', reject);
    // A list that stops sending is dead (a half-open connection); a watch has its own silence timer instead.
    if (idleTimeoutMs) request.setTimeout(idleTimeoutMs, () => request.destroy(new Error(`no data from the apiserver for ${idleTimeoutMs} ms`)));
    request.end();
  });
}

/** The message of a Kubernetes Status body, read up to 64 KiB. */
async function statusMessage(response: http.IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 65_536) break;
    parts.push(chunk);
  }
  response.destroy();
  try {
    const status = JSON.parse(Buffer.concat(parts).toString('utf8')) as { message?: unknown };
    if (typeof status.message === 'string') return status.message.slice(0, 300);
  } catch {
    /* not a Status */
  }
  return http.STATUS_CODES[response.statusCode ?? 0] ?? `HTTP ${response.statusCode}`;
}

export interface ListPage {
  resourceVersion: string;
  continueToken?: string;
  items: number;
  bytes: number;
}

/** Asks for one page of a list; resolves with the response once the status is 200 (read it with readListPage). */
export function requestListPage(kubeConfig: KubeConfig, path: string, page: { limit: number; continueToken?: string }, signal?: AbortSignal): Promise<http.IncomingMessage> {
  return kubeGet(kubeConfig, path, { limit: page.limit, continue: page.continueToken }, signal, 60_000);
}

/**
 * One page of a list, streamed: each item is parsed and handed to `onItem` as soon as its bytes are in, so
 * what a page weighs in memory is one item, not the page. `onContinue` is told the continue token as soon as
 * it arrives, before the items (so the caller may ask for the next page while this one streams).
 */
export async function readListPage(response: http.IncomingMessage, onItem: (item: unknown) => void, onContinue?: (continueToken: string) => void): Promise<ListPage> {
  const onHead = onContinue && ((head: Record<string, unknown>) => {
    const token = (head.metadata as { continue?: unknown } | undefined)?.continue;
    if (typeof token === 'string' && token) onContinue(token);
  });
  const splitter = new ListSplitter((bytes) => onItem(JSON.parse(bytes.toString('utf8'))), undefined, onHead);
  let bytes = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      splitter.push(chunk);
    }
  } catch (error) {
    response.destroy();
    throw error;
  }
  const list = splitter.end() as { metadata?: { resourceVersion?: string; continue?: string } };
  return { resourceVersion: list.metadata?.resourceVersion ?? '', continueToken: list.metadata?.continue || undefined, items: splitter.itemCount, bytes };
}

export interface WatchEvent {
  type: string;
  object: { code?: number; message?: string; metadata?: { resourceVersion?: string } } & Record<string, unknown>;
}

/**
 * A watch: resolves when the server ends it normally, rejects on an error (a 410 Gone at the start is a
 * KubeHttpError with statusCode 410). One event per line; a line above `maxLineBytes` fails the watch.
 */
export async function watchStream(
  kubeConfig: KubeConfig,
  path: string,
  query: Query,
  onEvent: (event: WatchEvent) => void,
  signal: AbortSignal,
  maxLineBytes = 16 * 1024 * 1024,
): Promise<void> {
  const response = await kubeGet(kubeConfig, path, { ...query, watch: 'true' }, signal);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      let from = 0;
      for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, from)) {
        const line = pending.length === 0 ? chunk.subarray(from, newline) : Buffer.concat([...pending, chunk.subarray(from, newline)]);
        pending = [];
        pendingBytes = 0;
        from = newline + 1;
        if (line.length > 0) onEvent(JSON.parse(line.toString('utf8')) as WatchEvent);
        if (signal.aborted) return;
      }
      if (from < chunk.length) {
        pendingBytes += chunk.length - from;
        if (pendingBytes > maxLineBytes) throw new Error(`watch event larger than ${maxLineBytes} bytes`);
        pending.push(chunk.subarray(from));
      }
    }
  } catch (error) {
    response.destroy();
    if (signal.aborted) return; // ended on purpose (stop, silence)
    throw error;
  }
}
