// The HTTP transport under node-vault, against a loopback HTTP server that records what arrives: the
// streamed body is byte-for-byte the JSON, Retry-After survives, a deadline is a timeout, logins carry no token.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toVaultError, VaultTransportError } from '../../src/vault/errors.js';
import fc from 'fast-check';
import { kvApiPath, parseVaultPath } from '../../src/vault/path.js';
import { jsonPieces, VaultTransport } from '../../src/vault/transport.js';
import { hostilePath, nearlyValidPath } from './arbitraries.js';

let server: Server;
let base: string;
let handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('jsonPieces: the streamed serialization', () => {
  const long = 'a'.repeat(64 * 1024 - 1) + '\ud83d\ude00' + 'é"\\\n'.repeat(50_000) + '\u2028';
  test.each([
    ['a flat secret', { data: { user: 'app', password: 'p"w\\d\n' }, options: { cas: 3 } }],
    ['a long value with a surrogate pair across a slice boundary', { data: { big: long } }],
    ['nested values, arrays, null, numbers, booleans', { a: [1, 'x', null, { b: false }], c: 1.5, d: null, e: undefined }],
  ])('%s: equal to JSON.stringify', (_name, value) => {
    expect([...jsonPieces(value)].join('')).toBe(JSON.stringify(value));
  });
});

describe('VaultTransport', () => {
  let transport: VaultTransport;
  beforeAll(() => {
    transport = new VaultTransport({ address: base, timeoutMs: 2000 });
  });
  afterAll(() => transport.close());

  test('a streamed body arrives chunked and byte-for-byte equal to the JSON; a small one has a Content-Length', async () => {
    const seen: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
    handler = (req, body, res) => {
      seen.push({ headers: req.headers, body: body.toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"version":1}}');
    };
    const big = { data: { blob: 'x'.repeat(3 * 1024 * 1024) + 'é' } };
    const r1 = await transport.send({ method: 'POST', uri: `${base}/v1/secret/data/a`, json: big, streamBody: true });
    const r2 = await transport.send({ method: 'POST', uri: `${base}/v1/secret/data/b`, json: { data: { k: 'v' } } });
    expect(r1).toMatchObject({ statusCode: 200, body: { data: { version: 1 } } });
    expect(r2.statusCode).toBe(200);
    expect(seen[0].headers['transfer-encoding']).toBe('chunked');
    expect(seen[0].body).toBe(JSON.stringify(big));
    expect(seen[1].headers['content-length']).toBe(String(Buffer.byteLength(JSON.stringify({ data: { k: 'v' } }))));
  });

  test('a 429 keeps its Retry-After and Vault\'s error strings; nothing of the request', async () => {
    handler = (_req, _body, res) => res.writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' }).end('{"errors":["request path \\"secret/data/a\\": rate limit quota exceeded"]}');
    const error = await transport.send({ method: 'POST', uri: `${base}/v1/secret/data/a`, json: { data: { password: 'hunter2' } } }).catch((e) => e);
    expect(error).toBeInstanceOf(VaultTransportError);
    expect(error).toMatchObject({ statusCode: 429, retryAfterSeconds: 3, vaultErrors: ['request path "secret/data/a": rate limit quota exceeded'] });
    expect(JSON.stringify(error)).not.toContain('hunter2');
  });

  test('no answer within the deadline is a timeout (ETIMEDOUT)', async () => {
    handler = () => undefined; // never answers
    const quick = new VaultTransport({ address: base, timeoutMs: 150 });
    const started = performance.now();
    await expect(quick.send({ method: 'GET', uri: `${base}/v1/secret/data/slow` })).rejects.toMatchObject({ statusCode: undefined, code: 'ETIMEDOUT' });
    expect(performance.now() - started).toBeLessThan(1000);
    quick.close();
  });

  test('a login is sent without the token header; other requests keep it', async () => {
    const tokens: Array<string | undefined> = [];
    handler = (req, _body, res) => {
      tokens.push(req.headers['x-vault-token'] as string | undefined);
      res.writeHead(200).end('{}');
    };
    await transport.send({ method: 'POST', uri: `${base}/v1/auth/kubernetes/login`, headers: { 'X-Vault-Token': 'old' }, json: { role: 'r', jwt: 'j' }, noToken: true });
    await transport.send({ method: 'GET', uri: `${base}/v1/secret/data/a`, headers: { 'X-Vault-Token': 'old' } });
    expect(tokens).toEqual([undefined, 'old']);
  });

  test('a KV LIST goes as GET with the fixed query list=true; a query in the path itself is still refused', async () => {
    const arrived: string[] = [];
    handler = (req, _body, res) => {
      arrived.push(`${req.method} ${req.url}`);
      res.writeHead(200).end('{"data":{"keys":["a"]}}');
    };
    await transport.send({ method: 'GET', uri: `${base}/v1/secret/metadata/team/app`, listQuery: true });
    await expect(transport.send({ method: 'GET', uri: `${base}/v1/secret/metadata/team/app?list=true` })).rejects.toMatchObject({ code: 'ENONCANONICALPATH' });
    expect(arrived).toEqual(['GET /v1/secret/metadata/team/app?list=true']);
  });

  test('the server detection asks sys/health with the one fixed query that lets a standby answer 200, never one from input', async () => {
    const arrived: string[] = [];
    handler = (req, _body, res) => {
      arrived.push(`${req.method} ${req.url}`);
      res.writeHead(200).end('{"version":"2.7.2"}');
    };
    await transport.send({ method: 'GET', uri: `${base}/v1/sys/health`, healthQuery: true });
    await expect(transport.send({ method: 'GET', uri: `${base}/v1/sys/health?standbyok=true` })).rejects.toMatchObject({ code: 'ENONCANONICALPATH' });
    expect(arrived).toEqual(['GET /v1/sys/health?standbyok=true&perfstandbyok=true']);
  });

  test('a detailed listing\'s page goes as the fixed query list=true&limit=N&after=NAME; a page query outside the grammar is not sent', async () => {
    const arrived: string[] = [];
    handler = (req, _body, res) => {
      arrived.push(`${req.method} ${req.url}`);
      res.writeHead(200).end('{"data":{"keys":[],"key_info":{}}}');
    };
    await transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team/app`, listQuery: true, listPage: { limit: 1000 } });
    await transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team/app`, listQuery: true, listPage: { limit: 1000, after: 'sub/' } });
    await expect(transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team/app`, listQuery: true, listPage: { limit: 1000, after: 'x&list=false' } })).rejects.toMatchObject({ code: 'ENONCANONICALPATH' });
    expect(arrived).toEqual(['GET /v1/secret/detailed-metadata/team/app?list=true&limit=1000', 'GET /v1/secret/detailed-metadata/team/app?list=true&limit=1000&after=sub%2F']);
  });

  test('a 404 whose only text is a warning (KV v2 on an endpoint it lacks) keeps the warning as its error; an empty folder\'s 404 says nothing', async () => {
    handler = (_req, _body, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use."]}');
    const invalid = await transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team`, listQuery: true }).catch((e) => e);
    expect(toVaultError('list-detailed', 'secret/team', invalid).message).toMatch(/HTTP 404: Invalid path for a versioned K\/V secrets engine/);
    handler = (_req, _body, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[]}');
    const empty = await transport.send({ method: 'GET', uri: `${base}/v1/secret/detailed-metadata/team`, listQuery: true }).catch((e) => e);
    expect(toVaultError('list-detailed', 'secret/team', empty).message).toBe('Vault list-detailed secret/team failed: HTTP 404');
  });

  test('a refused connection is a connection error with its code', async () => {
    const nowhere = new VaultTransport({ address: 'http://127.0.0.1:1', timeoutMs: 2000 });
    await expect(nowhere.send({ method: 'GET', uri: 'http://127.0.0.1:1/v1/sys/health' })).rejects.toMatchObject({ statusCode: undefined, code: 'ECONNREFUSED' });
    nowhere.close();
  });

  test('a Map body (key names are user input) arrives as the JSON object of its entries, streamed or not', async () => {
    const bodies: string[] = [];
    const lengths: Array<string | undefined> = [];
    handler = (req, body, res) => {
      bodies.push(body.toString('utf8'));
      lengths.push(req.headers['content-length']);
      res.writeHead(200).end('{}');
    };
    const data = new Map([['__proto__', 'a'], ['constructor', 'b'], ['toString', 'c']]);
    await transport.send({ method: 'POST', uri: `${base}/v1/secret/data/m`, json: { data } });
    await transport.send({ method: 'POST', uri: `${base}/v1/secret/data/m`, json: { data }, streamBody: true });
    const expected = '{"data":{"__proto__":"a","constructor":"b","toString":"c"}}';
    expect(bodies).toEqual([expected, expected]);
    expect(lengths[0]).toBe(String(Buffer.byteLength(expected)));
    expect(Object.keys(JSON.parse(bodies[0]).data)).toEqual(['__proto__', 'constructor', 'toString']);
  });

  test('a request path that is not canonical is refused before anything is sent (no retry can fix it)', async () => {
    const arrived: string[] = [];
    handler = (req, _body, res) => {
      arrived.push(req.url ?? '');
      res.writeHead(200).end('{}');
    };
    for (const path of ['/v1/secret/data/team-a/x\\..\\..\\team-b/p', '/v1/secret/data/%2e%2e/%2e%2e/sys/policy/x', '/v1/secret/data/a/../../sys/policy/x', '/v1/sys/./policy']) {
      await expect(transport.send({ method: 'GET', uri: `${base}${path}` })).rejects.toMatchObject({ statusCode: undefined, code: 'ENONCANONICALPATH' });
    }
    await expect(transport.send({ method: 'GET', uri: 'http://elsewhere.example/v1/secret/data/a' })).rejects.toMatchObject({ code: 'ENONCANONICALPATH' });
    expect(arrived).toEqual([]);
    const error = toVaultError('write', 'secret/x', new VaultTransportError(undefined, 'ENONCANONICALPATH'));
    expect({ kind: error.kind, retryable: error.retryable }).toEqual({ kind: 'bad-request', retryable: false });
  });

  test('property: for every accepted annotation, the path that arrives at the server is the validated path, byte for byte', async () => {
    const arrived: string[] = [];
    handler = (req, _body, res) => {
      arrived.push(req.url ?? '');
      res.writeHead(200).end('{}');
    };
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostilePath, nearlyValidPath), async (raw) => {
        const parsed = parseVaultPath(raw, ['secret', 'kv']);
        if (!parsed.ok) return true;
        accepted++;
        arrived.length = 0;
        // node-vault builds `${endpoint}/v1/${path}`; the transport must send that path as it is.
        await transport.send({ method: 'GET', uri: `${base}/v1/${kvApiPath(parsed.path, 'data')}` });
        const expected = `/v1/${parsed.path.mount}/data/${parsed.path.key}`;
        return arrived.length === 1 && arrived[0] === expected;
      }),
      { seed: 8_2026_11, numRuns: 1500 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});
