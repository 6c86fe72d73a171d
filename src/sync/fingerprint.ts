import { createHmac } from 'node:crypto';
import type { DesiredEntry } from './desired.js';
import { formatPath } from '../vault/path.js';

/**
 * Keyed content hashes. Keyed (HMAC) rather than a bare SHA-256 because the hash is stored where
 * secrets are not (status objects, Vault custom_metadata): a bare hash of a short password can be
 * brute-forced; an HMAC without the key cannot.
 */
export class Fingerprinter {
  private key?: Uint8Array;

  constructor(key?: Uint8Array) {
    this.key = key;
  }

  /** The key is loaded from the cluster at start, before any watch delivers a Secret. */
  useKey(key: Uint8Array): void {
    this.key = key;
  }

  private mac() {
    if (!this.key) throw new Error('the content-hash key has not been loaded yet');
    return createHmac('sha256', this.key);
  }

  /** Hash of exactly what would land at the path. Fed key by key: no joined copy of a large payload. */
  entry(entry: DesiredEntry): string {
    const mac = this.mac();
    mac.update(`path\0${formatPath(entry.path)}\0`);
    const binary = new Set(entry.binaryKeys);
    for (const key of [...entry.data.keys()].sort()) {
      const value = entry.data.get(key)!;
      mac.update(`${key}\0${binary.has(key) ? 'b' : 't'}\0${value.length}\0`);
      mac.update(value);
    }
    return 'hmac-sha256:' + mac.digest('hex');
  }

  /** Hash of a Secret's raw data, kept in the Secret cache in place of the values. */
  secretData(data: ReadonlyMap<string, string>): string {
    const mac = this.mac();
    for (const key of [...data.keys()].sort()) {
      const value = data.get(key)!;
      mac.update(`${key}\0${value.length}\0`);
      mac.update(value);
    }
    return mac.digest('hex');
  }
}
