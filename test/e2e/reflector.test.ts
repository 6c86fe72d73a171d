// The watch cache against a real apiserver: a paged list and its watch over two kept-alive connections,
// relist on 410 Gone (and only then), resume a broken watch, restart a watch that went silent, and keep
// only slim objects (a Secret's values never enter the cache).
import type { V1ConfigMap } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../../src/kube/kube-http.js';
import { Reflector, type PageSizing } from '../../src/kube/reflector.js';
import { createLogger } from '../../src/observability/logger.js';
import { freshNamespace, kubeClients, loadTestEnv, waitFor } from './helpers/env.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const { kc, core } = kubeClients();
const log = createLogger('silent');
const threePerPage: PageSizing = { initial: 3, min: 3, max: 3, targetBytes: 1 };

let proxy: TcpProxy;
beforeAll(async () => {
  proxy = await startTcpProxy(kc.getCurrentCluster()!.server);
});
afterAll(() => proxy.close());

function configMapReflector(namespace: string, options: { silenceTimeoutMs?: number; onError?: (e: unknown) => void } = {}) {
  const through = PooledKubeConfig.from(proxy.kubeConfigThrough(kc));
  const seen: string[] = [];
  const reflector = new Reflector<V1ConfigMap, { name: string; value?: string }>(through, {
    name: 'configmaps',
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    pageSizing: threePerPage, // several pages even for a handful of objects
    transform: (cm) => ({ name: cm.metadata?.name ?? '', value: cm.data?.v }),
    onChange: (type, current) => seen.push(`${type}:${current.name}:${current.value ?? ''}`),
    log,
    ...options,
  });
  return { reflector, seen, close: () => (reflector.stop(), through.close()) };
}
const createConfigMap = (namespace: string, name: string, v: string) => core.createNamespacedConfigMap({ namespace, body: { metadata: { name }, data: { v } } });

test('the list is paged and streamed, the next page asked for while one streams: every page and then the watch go over TWO connections', async () => {
  const ns = await freshNamespace('reflector-pages');
  for (let i = 0; i < 7; i++) await createConfigMap(ns, `cm${i}`, String(i));
  const before = proxy.connections;
  const { reflector, seen, close } = configMapReflector(ns);
  reflector.start();
  await reflector.synced;
  expect(reflector.pages).toBe(3); // 7 objects, 3 per page (no kube-root-ca.crt here: no controller-manager)
  for (let i = 0; i < 7; i++) expect(reflector.get(ns, `cm${i}`)).toEqual({ name: `cm${i}`, value: String(i) });
  await createConfigMap(ns, 'watched', 'w');
  await waitFor(() => seen.includes('add:watched:w'), { timeoutMs: 15000, description: 'the event of a change after the list' });
  // Two requests at most in flight (the page being read, the next one being built), each on a kept-alive
  // connection; the third page and the watch reuse them.
  expect(proxy.connections - before).toBe(2);
  close();
});

test('a broken watch connection resumes from its resourceVersion: no relist, no change missed', async () => {
  const ns = await freshNamespace('reflector-resume');
  const errors: unknown[] = [];
  const { reflector, seen, close } = configMapReflector(ns, { onError: (e) => errors.push(e) });
  reflector.start();
  await reflector.synced;
  await createConfigMap(ns, 'before', '1');
  await createConfigMap(ns, 'doomed', '1');
  await waitFor(() => seen.includes('add:before:1') && seen.includes('add:doomed:1'), { timeoutMs: 15000, description: 'the first events' });
  expect(reflector.size).toBe(2);

  proxy.cutAll();
  await waitFor(() => errors.length >= 1, { timeoutMs: 15000, description: 'the reflector to see its watch fail' });
  await createConfigMap(ns, 'while-down', '2');
  await waitFor(() => seen.includes('add:while-down:2'), { timeoutMs: 20000, description: 'the change made while the watch was down' });
  expect(reflector.lists).toBe(1);
  expect(reflector.watches).toBeGreaterThanOrEqual(2);
  close();
});

test('a watch that expired (410 Gone from the apiserver) is followed by a relist, and no change is missed', async () => {
  const ns = await freshNamespace('reflector-410');
  const errors: unknown[] = [];
  const { reflector, seen, close } = configMapReflector(ns, { onError: (e) => errors.push(e) });
  reflector.start();
  await reflector.synced;
  await createConfigMap(ns, 'before', '1');
  await createConfigMap(ns, 'doomed', '1');
  await waitFor(() => seen.includes('add:before:1') && seen.includes('add:doomed:1'), { timeoutMs: 15000, description: 'the first events' });
  expect(reflector.size).toBe(2);

  // The apiserver is unreachable while a change happens and etcd forgets the history before it (compaction;
  // ConfigMaps have no watch cache in the test apiserver): the watch can only resume with 410 Gone.
  proxy.hold();
  proxy.cutAll();
  await waitFor(() => errors.length >= 1, { timeoutMs: 15000, description: 'the reflector to see its watch fail' });
  await createConfigMap(ns, 'during', '2');
  await createConfigMap(ns, 'during-too', '2'); // etcd keeps the compaction revision itself: one more change
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'doomed' }); // only the relist can tell
  await compactEtcd();
  proxy.release();
  await waitFor(() => reflector.lists >= 2, { timeoutMs: 30000, description: 'a relist after 410 Gone' });
  await createConfigMap(ns, 'after', '3');
  await waitFor(() => reflector.get(ns, 'during') && reflector.get(ns, 'after'), { timeoutMs: 20000, description: 'both objects in the cache after the relist' });
  expect(reflector.get(ns, 'during')).toEqual({ name: 'during', value: '2' });
  expect(reflector.get(ns, 'after')).toEqual({ name: 'after', value: '3' });
  expect(reflector.lists).toBe(2); // exactly one relist: for the 410, not for the broken connection
  // The object deleted while the watch was down is gone from the cache, told once as a delete.
  expect(reflector.get(ns, 'doomed')).toBeUndefined();
  expect(seen.filter((e) => e.startsWith('delete:'))).toEqual(['delete:doomed:1']);
  expect([...reflector.values()].map((o) => o.name).sort()).toEqual(['after', 'before', 'during', 'during-too']);
  expect(reflector.size).toBe(4);
  close();
});

/** Compacts etcd's history up to its current revision. */
async function compactEtcd(): Promise<void> {
  const { etcdUrl } = loadTestEnv();
  const range = (await (await fetch(`${etcdUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: 'AA==' }) })).json()) as { header: { revision: string } };
  const res = await fetch(`${etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: range.header.revision, physical: true }) });
  expect(res.status).toBe(200);
}

test('a watch that goes silent is restarted and keeps delivering', async () => {
  const ns = await freshNamespace('reflector-silent');
  const { reflector, close } = configMapReflector(ns, { silenceTimeoutMs: 700 });
  reflector.start();
  await reflector.synced;
  await waitFor(() => reflector.watches >= 3, { timeoutMs: 15000, description: 'several silence periods without any event' });
  await createConfigMap(ns, 'late', 'x');
  await waitFor(() => reflector.get(ns, 'late'), { timeoutMs: 10000, description: 'an event after silent periods' });
  expect(reflector.lists).toBe(1); // silence restarts the watch, never the list
  close();
});
