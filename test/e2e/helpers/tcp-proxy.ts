// A TCP proxy on loopback in front of the apiserver: it counts the connections a client opens (TLS passes
// through untouched: the apiserver's certificate is for 127.0.0.1, whatever the port) and can cut them.
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface TcpProxy {
  /** Connections accepted so far. */
  readonly connections: number;
  /** A copy of `kubeConfig` whose current cluster is reached through this proxy. */
  kubeConfigThrough(kubeConfig: KubeConfig): KubeConfig;
  /** Destroys every open connection (both sides), as a network failure would. */
  cutAll(): void;
  /** New connections wait (accepted, not forwarded) until release(): the server is unreachable meanwhile. */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstream: string): Promise<TcpProxy> {
  const target = new URL(upstream);
  const open = new Set<net.Socket>();
  let connections = 0;
  let held: Array<() => void> | undefined;
  const server = net.createServer((client) => {
    connections += 1;
    if (held) {
      client.pause();
      client.on('error', () => undefined);
      open.add(client);
      held.push(() => forward(client));
    } else forward(client);
  });
  const forward = (client: net.Socket) => {
    if (client.destroyed) return;
    const server = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, server]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => undefined); // a cut or a reset: the other side is destroyed below
    }
    client.pipe(server).on('close', () => client.destroy());
    server.pipe(client).on('close', () => server.destroy());
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
    client.resume();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    get connections() {
      return connections;
    },
    kubeConfigThrough(kubeConfig) {
      const through = new KubeConfig();
      const current = kubeConfig.getCurrentCluster()?.name;
      through.loadFromOptions({
        clusters: kubeConfig.clusters.map((c) => (c.name === current ? { ...c, server: `${target.protocol}//127.0.0.1:${port}` } : c)),
        users: kubeConfig.users,
        contexts: kubeConfig.contexts,
        currentContext: kubeConfig.currentContext,
      });
      return through;
    },
    hold() {
      held ??= [];
    },
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const go of waiting) go();
    },
    cutAll() {
      for (const socket of open) socket.destroy();
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
