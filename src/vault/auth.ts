import { readFile } from 'node:fs/promises';
import type { VaultAuthConfig } from '../config.js';

/** The Vault login request for a method (path relative to /v1, body), or undefined for a static token. */
export async function loginRequest(auth: VaultAuthConfig): Promise<{ path: string; body: Record<string, string> } | undefined> {
  switch (auth.method) {
    case 'token':
      return undefined;
    case 'kubernetes': {
      // Re-read every time: the kubelet rotates the projected service-account token in place.
      const jwt = (await readFile(auth.tokenPath, 'utf8')).trim();
      return { path: `auth/${auth.mount}/login`, body: { role: auth.role, jwt } };
    }
    case 'approle': {
      const secretId = (await readFile(auth.secretIdPath, 'utf8')).trim();
      return { path: `auth/${auth.mount}/login`, body: { role_id: auth.roleId, secret_id: secretId } };
    }
  }
}
