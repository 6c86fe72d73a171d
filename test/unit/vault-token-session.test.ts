// The token session logs in once, and once more after a 403 (shared by every request that failed with it);
// a second 403 goes up; a static token is never "logged in again". Fakes stand in for node-vault and the
// request core (pure logic; revocation against OpenBao is test/e2e/vault-auth.test.ts's).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { VaultAuthConfig } from '../../src/config.js';
import { VaultRequestError } from '../../src/vault/errors.js';
import type { CoreRequestOptions, Requester, Send } from '../../src/vault/request-core.js';
import { TokenSession } from '../../src/vault/token-session.js';
import type { VaultApi } from '../../src/vault/vault-api.js';

const log = pino({ level: 'silent' });
let dir: string;
let approle: VaultAuthConfig;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vso-session-'));
  const secretIdPath = join(dir, 'secret-id');
  writeFileSync(secretIdPath, 'the-secret-id\n');
  approle = { method: 'approle', roleId: 'role', secretIdPath, mount: 'approle' };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A Vault that issues tokens t1, t2, ... at each login and answers 403 to a KV read with a token in
 * `revoked`. Each answer comes after a macrotask, so requests started together are in flight together.
 */
function fakeVault(revoked: (token: string) => boolean) {
  const log: string[] = [];
  let token = '';
  let issued = 0;
  const later = <T>(answer: () => T, macrotasks = 1): Promise<T> =>
    new Promise<T>((resolve, reject) =>
      setImmediate(() => {
        if (macrotasks > 1) return void later(answer, macrotasks - 1).then(resolve, reject);
        try {
          resolve(answer());
        } catch (error) {
          reject(error);
        }
      }),
    );
  const api: VaultApi = {
    read: (path) => {
      if (path === 'auth/token/lookup-self') return later(() => ({ data: { ttl: 0, accessor: 'static-accessor', renewable: false } }));
      const used = token;
      // `.../app-<i>` answers after i + 1 macrotasks: failures then arrive before, during and after a re-login.
      const slot = /app-(\d+)$/.exec(path);
      return later(() => {
        log.push(`read ${path} with ${used}`);
        if (revoked(used)) throw new VaultRequestError('read', path, 403, 'forbidden', 'HTTP 403');
        return { data: { data: { k: 'v' } } };
      }, slot ? Number(slot[1]) + 1 : 1);
    },
    write: (path, _body, options) =>
      later(() => {
        if (path !== 'auth/approle/login' || options.noToken !== true) throw new Error(`unexpected write ${path}`);
        issued++;
        log.push(`login -> t${issued}`);
        return { auth: { client_token: `t${issued}`, accessor: `a${issued}`, lease_duration: 0, renewable: false, policies: ['operator'] } };
      }),
    delete: () => Promise.reject(new Error('unexpected delete')),
    setToken: (next) => {
      token = next;
    },
  };
  return { api, log, setStaticToken: (t: string) => (token = t) };
}

/** The request core without limiter, retries or timing: each request recorded with the hooks it was given. */
function fakeCore() {
  const requests: Array<{ operation: string; source?: string; onStart: boolean }> = [];
  const core: Requester = {
    request<T>(operation: string, _target: string, send: Send<T>, options: CoreRequestOptions = {}): Promise<T> {
      requests.push({ operation, source: options.source, onStart: options.onStart !== undefined });
      options.onStart?.();
      return send({ onSent() {} });
    },
  };
  return { core, requests };
}

describe('TokenSession: one re-login after a 403', () => {
  test('a 403 on a logged-in token: one fresh login, then the same request once more, with the new token', async () => {
    const vault = fakeVault((token) => token === 't1');
    const { core, requests } = fakeCore();
    const session = new TokenSession({ api: vault.api, core, auth: approle, log });
    let started = 0;
    const result = await session.read('read', 'secret/app', 'secret/data/app', { source: 'Deployment/team-a/app', onStart: () => started++ });
    expect(result).toEqual({ data: { data: { k: 'v' } } });
    expect(vault.log).toEqual(['login -> t1', 'read secret/data/app with t1', 'login -> t2', 'read secret/data/app with t2']);
    // The source rides on both tries; the operation's start is reported once, on the first.
    expect(requests).toEqual([
      { operation: 'login', source: undefined, onStart: false },
      { operation: 'read', source: 'Deployment/team-a/app', onStart: true },
      { operation: 'login', source: undefined, onStart: false },
      { operation: 'read', source: 'Deployment/team-a/app', onStart: false },
    ]);
    expect(started).toBe(1);
    expect(session.accessor).toBe('a2');
    expect(session.authenticated).toBe(true);
  });

  test('a second 403 after the fresh login goes up as forbidden: no third login', async () => {
    const vault = fakeVault(() => true);
    const session = new TokenSession({ api: vault.api, core: fakeCore().core, auth: approle, log });
    await expect(session.read('read', 'secret/app', 'secret/data/app')).rejects.toEqual(expect.objectContaining({ kind: 'forbidden', statusCode: 403 }));
    expect(vault.log).toEqual(['login -> t1', 'read secret/data/app with t1', 'login -> t2', 'read secret/data/app with t2']);
  });

  test('many requests failing with 403, before, while and after the fresh login, share that one login', async () => {
    const vault = fakeVault((token) => token === 't1');
    const session = new TokenSession({ api: vault.api, core: fakeCore().core, auth: approle, log });
    await session.login();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => session.read('read', `secret/app-${i}`, `secret/data/app-${i}`)));
    expect(results).toHaveLength(8);
    expect(vault.log.filter((line) => line.startsWith('login'))).toEqual(['login -> t1', 'login -> t2']);
    expect(vault.log.filter((line) => line.endsWith('with t1'))).toHaveLength(8);
    expect(vault.log.filter((line) => line.endsWith('with t2'))).toHaveLength(8);
  });

  test('concurrent first requests share one login', async () => {
    const vault = fakeVault(() => false);
    const session = new TokenSession({ api: vault.api, core: fakeCore().core, auth: approle, log });
    await Promise.all(Array.from({ length: 5 }, (_, i) => session.read('read', `secret/app-${i}`, `secret/data/app-${i}`)));
    expect(vault.log.filter((line) => line.startsWith('login'))).toEqual(['login -> t1']);
  });

  test('a static token is checked with a lookup and never logged in again: its 403 goes up at once', async () => {
    const vault = fakeVault(() => true);
    const { core, requests } = fakeCore();
    vault.setStaticToken('static');
    const session = new TokenSession({ api: vault.api, core, auth: { method: 'token', token: 'static' }, log });
    await expect(session.read('read', 'secret/app', 'secret/data/app')).rejects.toEqual(expect.objectContaining({ kind: 'forbidden' }));
    expect(requests.map((r) => r.operation)).toEqual(['token-lookup', 'read']);
    expect(vault.log).toEqual(['read secret/data/app with static']);
    expect(session.accessor).toBe('static-accessor');
  });

  test('after close, a login is refused as stopped and nothing is sent', async () => {
    const vault = fakeVault(() => false);
    const { core, requests } = fakeCore();
    const session = new TokenSession({ api: vault.api, core, auth: approle, log });
    session.close();
    await expect(session.read('read', 'secret/app', 'secret/data/app')).rejects.toEqual(expect.objectContaining({ kind: 'stopped' }));
    expect(requests).toEqual([]);
  });
});
