// Raw HTTP over node:net, for hostile-input tests of the operations server: what a fetch() client would
// never send (malformed request lines, absurd headers, slow or half-closed connections).
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  /** The status code of the first response line, or null when the server closed without answering. */
  status: number | null;
  text: string;
  closed: boolean;
}

/** The response to `bytes` sent as they are; resolves when the server closes or `timeoutMs` passes. */
export function rawRequest(port: number, bytes: string | Buffer, options: { halfClose?: boolean; timeoutMs?: number } = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text, closed });
    };
    const timer = setTimeout(() => done(false), options.timeoutMs ?? 5_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (complete(text)) done(false); // a keep-alive answer: no need to wait for the close
    });
    socket.on('error', () => done(true)); // a reset is an answer too: the server refused the connection
    socket.on('close', () => done(true));
    socket.on('connect', () => {
      socket.write(bytes);
      if (options.halfClose) socket.end();
    });
  });
}

/** True once a whole response with a Content-Length has arrived. */
function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = text.slice(0, end);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return text.endsWith('\r\n0\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  return !!length && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1]);
}

/** Opens a connection and resolves once it is established (for slow-client and connection-flood tests). */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the server closes the socket (or with false after `timeoutMs`). */
export function closedByServer(socket: Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

const LONG = 'a'.repeat(20_000);

/**
 * Hostile requests and the one status each must get, from a server with a bearer token that is ready (a
 * request the server may either serve or refuse is a test that cannot fail). Each ends with the headers'
 * blank line unless the point is that it does not.
 */
export const HOSTILE_REQUESTS: Array<{ name: string; bytes: string | Buffer; expect: number }> = [
  { name: 'request-target "//[" (the crash of issue 8)', bytes: 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n', expect: 400 },
  { name: 'request-target "//[" on an authenticated path', bytes: 'GET //[/metrics HTTP/1.1\r\nHost: x\r\n\r\n', expect: 400 },
  { name: 'absolute-form with an unclosed IPv6 literal', bytes: 'GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n', expect: 400 },
  { name: 'absolute-form target', bytes: 'GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n', expect: 400 },
  { name: 'authority-form target', bytes: 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n', expect: 405 },
  { name: 'asterisk-form target', bytes: 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', expect: 405 },
  { name: 'a backslash and dot segments', bytes: 'GET /..\\..\\metrics HTTP/1.1\r\nHost: x\r\n\r\n', expect: 400 },
  { name: 'a percent-encoded path (not an open probe path, so it needs the token when there is one)', bytes: 'GET /%68ealthz HTTP/1.1\r\nHost: x\r\n\r\n', expect: 401 },
  { name: 'an Upgrade request', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', expect: 400 },
  { name: 'a request with a body the server does not read', bytes: `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n${'b'.repeat(1000)}`, expect: 200 },
  { name: 'a bad percent-escape in the query', bytes: 'GET /readyz?verbose=%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n', expect: 200 },
  { name: 'a NUL byte in the target', bytes: Buffer.from('GET /heal\0thz HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'), expect: 400 },
  { name: 'a NUL byte in a header', bytes: Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', 'latin1'), expect: 400 },
  { name: 'a path of 3,000 characters', bytes: `GET /${'a'.repeat(3_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, expect: 414 },
  { name: 'a path longer than the header limit', bytes: `GET /${LONG} HTTP/1.1\r\nHost: x\r\n\r\n`, expect: 431 },
  { name: 'one huge header', bytes: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${LONG}\r\n\r\n`, expect: 431 },
  { name: '5,000 headers', bytes: `GET /healthz HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 5_000 }, (_, i) => `X-${i}: v`).join('\r\n')}\r\n\r\n`, expect: 431 },
  { name: 'a duplicated Host', bytes: 'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', expect: 400 },
  { name: 'no Host in HTTP/1.1', bytes: 'GET /healthz HTTP/1.1\r\n\r\n', expect: 400 },
  { name: 'Content-Length and Transfer-Encoding together', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', expect: 400 },
  { name: 'two different Content-Lengths', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', expect: 400 },
  { name: 'a negative Content-Length', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', expect: 400 },
  { name: 'a Transfer-Encoding that is not chunked', bytes: 'POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, identity\r\n\r\n', expect: 405 },
  { name: 'a malformed chunk size', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', expect: 200 },
  { name: 'a header without a colon', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n', expect: 400 },
  { name: 'a request line of garbage', bytes: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n', expect: 400 },
  { name: 'an HTTP/2 preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: 400 },
  { name: 'an unknown HTTP version', bytes: 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n', expect: 400 },
  { name: 'a Bearer token of 10,000 characters on /metrics', bytes: `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'t'.repeat(10_000)}\r\n\r\n`, expect: 401 },
];
