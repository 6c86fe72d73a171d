import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createVaultLimiter } from './limiter.js';
import { NodeVaultClient } from './node-vault-client.js';
import type { VaultPort } from './port.js';

/** The Vault side as the operator sees it: one port (limited, and later batched and retried), login, stop. */
export interface VaultStack {
  vault: VaultPort;
  /** Authenticates (or checks the static token); rejects with a clear error when Vault refuses. */
  login(): Promise<void>;
  stop(): Promise<void>;
}

export function createVaultStack(config: Config, log: Logger): VaultStack {
  const limiter = createVaultLimiter(config.rateLimit);
  const client = new NodeVaultClient(config.vault, config.vault.auth, limiter, log);
  return {
    vault: client,
    login: () => client.login(),
    stop: async () => {
      await limiter.stop({ dropWaitingJobs: false }).catch(() => undefined);
    },
  };
}
