// Issue 8, item 3: nothing a client sends to the operations port stops the operator. The real operator
// process (`node main.js`, as in its container, with a bearer token on the protected endpoints) is fed
// malformed request lines, absurd headers, slow and half-closed connections and a connection flood over raw
// sockets; afterwards it is still alive, serves /healthz, /readyz and /metrics, and still syncs.
import { rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { MAX_CONNECTIONS } from '../../src/observability/server.js';
import { freshNamespace, kubeClients, loadTestEnv, waitFor } from './helpers/env.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { operatorArgs } from './helpers/operator.js';
import { startOperatorProcess, type OperatorProcess } from './helpers/ops.js';
import { closedByServer, HOSTILE_REQUESTS, openSocket, rawRequest } from './helpers/raw-http.js';
import { tokenFile } from './helpers/supervised.js';

const TOKEN = 'hostile-e2e-token';
const TOKEN_FILE = tokenFile(TOKEN);
let op: OperatorProcess;
let namespace: string;
let port: number;

beforeAll(async () => {
  namespace = await freshNamespace('ops-hostile');
  op = await startOperatorProcess('hostile-http', [...(await operatorArgs([namespace])), `--metrics-bearer-token-file=${TOKEN_FILE}`], {
    KUBECONFIG: loadTestEnv().kubeconfigPath,
  });
  port = Number(new URL(op.url).port);
  await waitFor(async () => (await fetch(`${op.url}/readyz`)).ok, { description: 'the operator ready' });
});
afterAll(async () => {
  op?.kill('SIGTERM');
  await op?.exited;
});
afterEach(() => {
  if (process.env.VSO_TEST_SHOW_LOGS) process.stderr.write(`--- ${op.name}\n${op.logs()}\n`);
});

const alive = () => op.proc.exitCode === null && op.proc.signalCode === null;

async function servesEverything(): Promise<void> {
  expect(alive()).toBe(true);
  expect((await fetch(`${op.url}/healthz`)).status).toBe(200);
  expect((await fetch(`${op.url}/readyz`)).status).toBe(200);
  const metrics = await fetch(`${op.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toContain('vault_sync_operations_total');
}

test('every malformed request gets a 4xx (or a closed connection), and the process keeps serving', async () => {
  const answers: Array<{ name: string; status: number | null }> = [];
  for (const request of HOSTILE_REQUESTS) {
    const answer = await rawRequest(port, request.bytes);
    answers.push({ name: request.name, status: answer.status });
    expect(alive()).toBe(true);
  }
  // Each exactly as expected (listed together, so one failure shows them all).
  expect(answers).toEqual(HOSTILE_REQUESTS.map((r) => ({ name: r.name, status: r.expect })));
  // The crash of issue 8, once more, on every path, with and without the token.
  for (const path of ['//[', '//[/metrics', 'http://[::1', '//[healthz']) {
    for (const auth of ['', `Authorization: Bearer ${TOKEN}\r\n`]) {
      expect((await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`)).status).toBe(400);
    }
  }
  await servesEverything();
  expect(op.logs()).not.toMatch(/unhandled|uncaught|"level":60/i);
});

test('slow clients (slowloris) and silent connections are cut off by the header timeout, while probes still answer', async () => {
  const slow: Socket[] = [];
  for (let i = 0; i < 20; i++) slow.push(await openSocket(port));
  const silent: Socket[] = [];
  for (let i = 0; i < 5; i++) silent.push(await openSocket(port));
  // A byte of header every 500 ms: never a complete request.
  for (const s of slow) s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => {
    for (const s of slow) if (!s.destroyed) s.write('X');
  }, 500);
  try {
    // The probes are answered meanwhile.
    expect((await fetch(`${op.url}/healthz`)).status).toBe(200);
    // headersTimeout is 10 s, checked every second: every slow and silent socket is closed by the server.
    const closed = await Promise.all([...slow, ...silent].map((s) => closedByServer(s, 20_000)));
    expect(closed.filter((c) => !c)).toHaveLength(0);
  } finally {
    clearInterval(drip);
    for (const s of [...slow, ...silent]) s.destroy();
  }
  await servesEverything();
}, 60_000);

test('half-closed connections get their answer and are closed', async () => {
  // A whole request is answered; an unfinished one (no blank line before the close) is a 400.
  const requests = [
    { bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', answer: 'HTTP/1.1 200 ' },
    { bytes: 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n', answer: 'HTTP/1.1 400 ' },
    { bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\n', answer: 'HTTP/1.1 400 ' },
  ];
  for (const request of requests) {
    const socket = await openSocket(port);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.end(request.bytes); // half-close: nothing more will come
    expect(await closedByServer(socket, 15_000)).toBe(true);
    expect(text.slice(0, 13)).toBe(request.answer);
  }
  await servesEverything();
});

test('a burst of 600 connections (more than the server holds) is refused or served, then the server recovers', async () => {
  // Every connection asks for /metrics without a token and stays open until all have an answer: a 401 for
  // those the server holds, a close or reset for those beyond its connection limit.
  const sockets: Socket[] = [];
  const answers = await Promise.all(
    Array.from({ length: 600 }, () => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      return new Promise<string>((resolve) => {
        let text = '';
        socket.setEncoding('latin1');
        socket.on('connect', () => socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
        socket.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes('\r\n\r\n')) resolve(text.slice(0, 12));
        });
        socket.on('error', () => resolve('reset'));
        socket.on('close', () => resolve(text.slice(0, 12) || 'closed'));
      });
    }),
  );
  for (const s of sockets) s.destroy();
  const served = answers.filter((a) => a === 'HTTP/1.1 401').length;
  expect(served).toBeGreaterThan(0);
  expect(served).toBeLessThanOrEqual(MAX_CONNECTIONS);
  expect(answers.filter((a) => !['reset', 'closed', 'HTTP/1.1 401'].includes(a))).toEqual([]);
  await waitFor(async () => (await fetch(`${op.url}/healthz`).catch(() => undefined))?.ok, { description: '/healthz after the flood' });
  await servesEverything();
}, 60_000);

test('the bearer token fails closed at run time: a token file rotated to a blank line, or gone, refuses every protected request with 503', async () => {
  const PROTECTED = ['/metrics', '/health', '/'];
  const CREDENTIALS = ['', `Authorization: Bearer ${TOKEN}\r\n`, 'Authorization: Bearer \u00a0\u00a0\r\n', 'Authorization: Bearer\u00a0\u00a0\r\n', 'Authorization: Bearer \r\n'];
  /** Status per credential and path; sent as latin1 bytes, so U+00A0 is the byte 0xA0. */
  const statuses = async () => {
    const seen: number[][] = [];
    for (const auth of CREDENTIALS) {
      const row: number[] = [];
      for (const path of PROTECTED) row.push((await rawRequest(port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 'latin1'))).status!);
      seen.push(row);
    }
    return seen;
  };
  const all = (status: number) => CREDENTIALS.map(() => PROTECTED.map(() => status));
  const probes = async () => [(await fetch(`${op.url}/healthz`)).status, (await fetch(`${op.url}/readyz`)).status];
  try {
    // With the token: only the right credential passes (the U+00A0 ones are not blank, they are wrong).
    expect(await statuses()).toEqual([[401, 401, 401], [200, 200, 200], [401, 401, 401], [401, 401, 401], [401, 401, 401]]);

    writeFileSync(TOKEN_FILE, '\n');
    expect(await statuses()).toEqual(all(503));
    expect(await probes()).toEqual([200, 200]);

    rmSync(TOKEN_FILE);
    expect(await statuses()).toEqual(all(503));
    expect(await probes()).toEqual([200, 200]);
    expect(alive()).toBe(true);
    // Said once per problem in the log, naming no token.
    expect(op.logs()).toContain('the metrics bearer token file is blank: refusing every protected request (503)');
    expect(op.logs()).toContain('the metrics bearer token file cannot be read (ENOENT)');
    expect(op.logs()).not.toContain(TOKEN);
  } finally {
    writeFileSync(TOKEN_FILE, `${TOKEN}\n`);
  }
  expect(await statuses()).toEqual([[401, 401, 401], [200, 200, 200], [401, 401, 401], [401, 401, 401], [401, 401, 401]]);
  await servesEverything();
});

test('after all of it, the operator still syncs a new source', async () => {
  await createSecret(namespace, 'db', { user: 'app' });
  await kubeClients().apps.createNamespacedDeployment({ namespace, body: deploymentUsing(namespace, 'web', { 'vault-sync.io/path': `secret/${namespace}/web` }, ['db']) });
  const written = await waitForVault(`${namespace}/web/db`);
  expect(written.data).toEqual({ user: 'app' });
  await servesEverything();
});
