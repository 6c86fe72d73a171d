import type { Logger } from 'pino';
import { VaultRequestError } from './errors.js';
import type { KvStrategy } from './kv-strategy.js';
import { KvV1 } from './kv-v1.js';
import { KvV2 } from './kv-v2.js';
import type { VaultRequests } from './vault-api.js';

/**
 * Pure: the KV version from a mount lookup's answer (sys/internal/ui/mounts/<mount>), or why the mount is not
 * a KV secrets engine. `generic` is the old name of KV v1; a KV mount without a version option is v1.
 */
export function kvVersionOfMount(mount: string, answer: any): 1 | 2 {
  const type = answer?.data?.type;
  if (type !== 'kv' && type !== 'generic') {
    throw new VaultRequestError('mount-lookup', mount, 200, 'bad-request', `"${mount}/" is a ${String(type)} mount, not a KV secrets engine; check --vault-kv-mounts`);
  }
  return String(answer?.data?.options?.version ?? '1') === '2' ? 2 : 1;
}

/**
 * The KV strategy of each mount, chosen once: the first operation on a mount looks it up (one request,
 * shared by every operation waiting for it), later ones use the strategy it chose. A failed lookup is
 * forgotten, so the next operation asks again.
 */
export class KvMounts {
  private readonly strategies = new Map<string, Promise<KvStrategy>>();

  constructor(
    private readonly requests: VaultRequests,
    private readonly log: Logger,
  ) {}

  strategyFor(mount: string): Promise<KvStrategy> {
    let known = this.strategies.get(mount);
    if (!known) {
      known = this.detect(mount);
      this.strategies.set(mount, known);
      known.catch(() => this.strategies.delete(mount)); // ask again next time
    }
    return known;
  }

  async kvVersion(mount: string): Promise<1 | 2> {
    return (await this.strategyFor(mount)).version;
  }

  /**
   * The KV version of each mount, checked one after the other at start so that a missing mount or a token
   * that may not use it stops the operator with a clear message.
   */
  async checkMounts(mounts: readonly string[]): Promise<Map<string, 1 | 2>> {
    const versions = new Map<string, 1 | 2>();
    for (const mount of mounts) versions.set(mount, await this.kvVersion(mount));
    return versions;
  }

  private async detect(mount: string): Promise<KvStrategy> {
    const path = `sys/internal/ui/mounts/${mount}`;
    let answer: any;
    try {
      answer = await this.requests.read('mount-lookup', path, path);
    } catch (error) {
      if (error instanceof VaultRequestError && (error.kind === 'forbidden' || error.kind === 'not-found' || error.kind === 'bad-request')) {
        throw new VaultRequestError('mount-lookup', mount, error.statusCode, 'not-found', `the KV mount "${mount}/" does not exist or this token may not use it (HTTP ${error.statusCode}); check --vault-kv-mounts and the token's policy`);
      }
      throw error;
    }
    const version = kvVersionOfMount(mount, answer);
    this.log.info({ mount, kvVersion: version }, 'KV mount detected');
    const listingSaid = (state: 'supported' | 'unsupported' | 'forbidden') =>
      this.log.info({ mount, detailedListing: state }, state === 'supported' ? 'the server lists detailed metadata: one request per folder for drift and ownership checks' : state === 'unsupported' ? 'the server has no detailed metadata listing: one metadata read per path' : `the token may not list ${mount}/detailed-metadata/*: one metadata read per path for a while`);
    return version === 1 ? new KvV1(this.requests) : new KvV2(this.requests, Date.now, listingSaid);
  }
}
