import https from 'node:https';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../../src/kube/kube-http.js';

function kubeConfig(ca: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function agentOfApiClientRequest(kc: KubeConfig) {
  const context = new RequestContext('https://127.0.0.1:6443/api/v1/secrets', HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  return { agent: context.getAgent(), authorization: context.getHeaders().Authorization };
}

async function agentOfRawRequest(kc: KubeConfig) {
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return { agent: options.agent, authorization: (options.headers as Record<string, string>).Authorization };
}

describe('PooledKubeConfig: one keep-alive agent for the raw list, watch and read requests', () => {
  test('client-node alone builds a new agent per request (the cost this removes)', async () => {
    const kc = kubeConfig('ca-1', 't');
    expect((await agentOfApiClientRequest(kc)).agent).not.toBe((await agentOfApiClientRequest(kc)).agent);
  });

  test('raw requests share one kept-alive agent with the cluster CA; the token stays per request', async () => {
    const pooled = PooledKubeConfig.from(kubeConfig('ca-1', 'token-1'));
    const a = await agentOfRawRequest(pooled);
    const b = await agentOfRawRequest(pooled);
    expect(b.agent).toBe(a.agent);
    expect(a.agent).toBeInstanceOf(https.Agent);
    expect((a.agent as https.Agent & { keepAlive: boolean }).keepAlive).toBe(true);
    expect(String((a.agent as https.Agent).options.ca)).toBe('ca-1');
    expect(a.authorization).toBe('Bearer token-1');
    pooled.close();
  });

  test('generated API clients keep one-off agents: node-fetch 2 misreads chunked answers on reused keep-alive sockets', async () => {
    const pooled = PooledKubeConfig.from(kubeConfig('ca-1', 'token-1'));
    const a = await agentOfApiClientRequest(pooled);
    const raw = await agentOfRawRequest(pooled);
    expect(a.agent).not.toBe(raw.agent);
    expect(a.agent).not.toBe((await agentOfApiClientRequest(pooled)).agent);
    expect(a.authorization).toBe('Bearer token-1');
    pooled.close();
  });

  test('new TLS material (another CA) gets a new agent; the old one is closed', async () => {
    const pooled = PooledKubeConfig.from(kubeConfig('ca-1', 't'));
    const first = (await agentOfRawRequest(pooled)).agent as https.Agent;
    let destroyed = false;
    const destroy = first.destroy.bind(first);
    first.destroy = () => ((destroyed = true), destroy());
    const rotated = kubeConfig('ca-2', 't');
    pooled.loadFromOptions({ clusters: rotated.clusters, users: rotated.users, contexts: rotated.contexts, currentContext: rotated.currentContext });
    const second = (await agentOfRawRequest(pooled)).agent as https.Agent;
    expect(second).not.toBe(first);
    expect(String(second.options.ca)).toBe('ca-2');
    expect(destroyed).toBe(true);
    pooled.close();
  });
});
