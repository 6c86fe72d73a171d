// The watch cache against a real apiserver: relist on 410 Gone, restart a watch that went silent,
// and keep only slim objects (a Secret's values never enter the cache).
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { Reflector } from '../../src/kube/reflector.js';
import { createLogger } from '../../src/observability/logger.js';
import { freshNamespace, kubeClients, waitFor } from './helpers/env.js';

const { kc, core } = kubeClients();
const log = createLogger('silent');

function configMapReflector(namespace: string, seen: string[], silenceTimeoutMs?: number) {
  const api = kc.makeApiClient(CoreV1Api);
  return new Reflector<V1ConfigMap, { name: string; value?: string }>(kc, {
    name: 'configmaps',
    list: async ({ limit, continueToken }) => {
      const list = await api.listNamespacedConfigMap({ namespace, limit, _continue: continueToken });
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '', continueToken: list.metadata?._continue };
    },
    pageSize: 2, // several pages even for a handful of objects
    watchPath: `/api/v1/namespaces/${namespace}/configmaps`,
    transform: (cm) => ({ name: cm.metadata?.name ?? '', value: cm.data?.v }),
    onChange: (type, current) => seen.push(`${type}:${current.name}:${current.value ?? ''}`),
    silenceTimeoutMs,
    log,
  });
}
const createConfigMap = (namespace: string, name: string, v: string) => core.createNamespacedConfigMap({ namespace, body: { metadata: { name }, data: { v } } });

test('a watch that expired (410 Gone from the apiserver) is followed by a relist, and no change is missed', async () => {
  const ns = await freshNamespace('reflector-410');
  const seen: string[] = [];
  const reflector = configMapReflector(ns, seen);
  reflector.start();
  await reflector.synced;
  await createConfigMap(ns, 'before', '1');
  await waitFor(() => seen.includes('add:before:1'), { timeoutMs: 10000, description: 'the first event' });

  // Make the next watch start from a version the apiserver has long forgotten, then end the current one.
  const internals = reflector as unknown as { resourceVersion: string; abort?: AbortController };
  internals.resourceVersion = '1';
  await createConfigMap(ns, 'during', '2'); // happens while the reflector is between watches
  internals.abort?.abort();
  await createConfigMap(ns, 'after', '3');

  await waitFor(() => reflector.get(ns, 'during') && reflector.get(ns, 'after'), { timeoutMs: 15000, description: 'both objects in the cache after the relist' });
  expect(reflector.get(ns, 'after')).toEqual({ name: 'after', value: '3' });
  expect(reflector.lists).toBeGreaterThanOrEqual(2); // the 410 led to a fresh list
  reflector.stop();
});

test('a watch that goes silent is restarted and keeps delivering', async () => {
  const ns = await freshNamespace('reflector-silent');
  const seen: string[] = [];
  const reflector = configMapReflector(ns, seen, 700);
  reflector.start();
  await reflector.synced;
  await new Promise((r) => setTimeout(r, 2000)); // several silence periods without any event
  await createConfigMap(ns, 'late', 'x');
  await waitFor(() => reflector.get(ns, 'late'), { timeoutMs: 10000, description: 'an event after silent periods' });
  reflector.stop();
});

test('the list is paged (a page at a time is slimmed), and every object of every page is in the cache', async () => {
  const ns = await freshNamespace('reflector-pages');
  for (let i = 0; i < 7; i++) await createConfigMap(ns, `cm${i}`, String(i));
  const pagesAsked: Array<string | undefined> = [];
  const api = kc.makeApiClient(CoreV1Api);
  const reflector = new Reflector<V1ConfigMap, { name: string; value?: string }>(kc, {
    name: 'configmaps-paged',
    list: async ({ limit, continueToken }) => {
      pagesAsked.push(continueToken);
      const list = await api.listNamespacedConfigMap({ namespace: ns, limit, _continue: continueToken });
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '', continueToken: list.metadata?._continue };
    },
    watchPath: `/api/v1/namespaces/${ns}/configmaps`,
    transform: (cm) => ({ name: cm.metadata?.name ?? '', value: cm.data?.v }),
    onChange: () => undefined,
    pageSize: 3,
    log,
  });
  reflector.start();
  await reflector.synced;
  expect(pagesAsked.length).toBe(3); // 7 objects, 3 per page (the namespace's kube-root-ca.crt is not made here: no controller-manager)
  for (let i = 0; i < 7; i++) expect(reflector.get(ns, `cm${i}`)).toEqual({ name: `cm${i}`, value: String(i) });
  reflector.stop();
});
