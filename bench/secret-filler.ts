// Fills a namespace with N Secrets of random bytes for the start-up bench, fast: raw POSTs over one pool of
// kept-alive connections (the generated client builds a request object and a one-off agent per call), a
// bounded number in flight, names s000000.. so that a later, larger size only adds the missing ones.
import https from 'node:https';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

export interface FillOptions {
  namespace: string;
  /** First and one-past-last index of the names to create. */
  from: number;
  to: number;
  /** Random bytes per Secret (its one `value` key). */
  secretBytes: number;
  /** Creates in flight at once: the apiserver and etcd share the machine, more only queues there. */
  concurrency: number;
}

export const secretName = (i: number) => `s${String(i).padStart(6, '0')}`;

/** Creates the Secrets [from, to) (a 409 is an earlier run's: kept); resolves with creates per second. */
export async function fillSecrets(kubeConfig: KubeConfig, options: FillOptions, say: (m: string) => void): Promise<number> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const base: https.RequestOptions = { method: 'POST', headers: {} };
  await kubeConfig.applyToHTTPSOptions(base);
  const url = new URL(`${cluster.server.replace(/\/+$/, '')}/api/v1/namespaces/${options.namespace}/secrets`);
  const isHttps = url.protocol === 'https:';
  const tls = ((base.agent as https.Agent | undefined)?.options ?? {}) as https.AgentOptions;
  const agentOptions = { keepAlive: true, maxSockets: options.concurrency, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized };
  const agent = isHttps ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const request = (isHttps ? https : http).request(
        url,
        { method: 'POST', agent, auth: base.auth, headers: { ...(base.headers as Record<string, string>), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
        (response) => {
          response.resume(); // the created object is not needed
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });

  const t0 = performance.now();
  let next = options.from;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < options.to; i = next++) {
      const body = JSON.stringify({ metadata: { name: secretName(i), namespace: options.namespace }, data: { value: randomBytes(options.secretBytes).toString('base64') } });
      for (let attempt = 0; ; attempt++) {
        const status = await post(body).catch(() => 0);
        if (status === 201 || status === 409) break;
        if (attempt >= 5) throw new Error(`creating Secret ${options.namespace}/${secretName(i)} failed: HTTP ${status || 'connection error'}`);
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt)); // 429 or a dropped connection: back off
      }
      if (++done % 10_000 === 0) say(`  ${done} of ${options.to - options.from} Secrets created`);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const perSecond = (options.to - options.from) / seconds;
  say(`created Secrets ${options.from}..${options.to - 1} in ${seconds.toFixed(1)} s (${perSecond.toFixed(0)}/s)`);
  return perSecond;
}
