// A second, real OpenBao dev server that a test may stop for good (Vault down), without touching the
// shared one. Token auth only (it has no Kubernetes auth configured).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { binaryPaths } from '../../../testenv/binaries.js';
import { waitFor } from './env.js';

export interface PrivateVault {
  addr: string;
  rootToken: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startPrivateVault(): Promise<PrivateVault> {
  const port = await freePort();
  const rootToken = `root-${randomBytes(8).toString('hex')}`;
  const addr = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(binaryPaths().bao, ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`, '-dev-no-store-token'], { stdio: 'ignore' });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await waitFor(async () => (await fetch(`${addr}/v1/sys/health`).then((r) => r.status, () => 0)) === 200, { timeoutMs: 20000, description: `a private OpenBao on ${addr}` });
  return {
    addr,
    rootToken,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return; // already gone
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      process.off('exit', killOnExit);
    },
  };
}
