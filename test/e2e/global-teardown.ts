// Stops what global-setup.ts started. The logs (and Vault's audit log) stay in the temp state folder for
// post-mortems; etcd's data goes (its WAL preallocates 64 MB per run).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalEnvironment } from '../../testenv/environment.js';

export default async function globalTeardown(): Promise<void> {
  const env = (globalThis as { __VSO_E2E_ENV__?: LocalEnvironment }).__VSO_E2E_ENV__;
  if (!env) return;
  await env.stop();
  (globalThis as { __VSO_E2E_ENV__?: LocalEnvironment }).__VSO_E2E_ENV__ = undefined;
  rmSync(join(env.stateDir, 'etcd-data'), { recursive: true, force: true });
  process.stderr.write(`[e2e env] stopped; logs kept in ${env.stateDir}\n`);
}
