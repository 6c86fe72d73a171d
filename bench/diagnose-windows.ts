// Diagnostic (not part of `npm run bench`): a long backlog through the proxy; for every 1-s window after the
// burst that holds more than `rate` requests at the proxy, print what the limiter did around it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { ensureBinaries } from '../testenv/binaries.js';
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, serviceAccountToken, startEnvironment } from '../testenv/environment.js';
import type { LimiterStart } from '../src/vault/limiter.js';
import { wholeMounts } from '../src/vault/scope.js';
import { createVaultStack } from '../src/vault/stack.js';
import { auditLogMark, auditRequestTimes, maxInAnyWindow, startFaultProxy } from '../test/e2e/helpers/fault-proxy.js';

/** The benchmark writes for no source: its requests carry the whole secret/ mount as their scope. */
const benchContext = { scope: wholeMounts(['secret'], 'the benchmark') };

const n = Number(process.argv[2] ?? 1000);
const marginMs = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const stateDir = mkdtempSync(join(tmpdir(), 'vso-diag-'));
ensureBinaries();
const env = await startEnvironment({ stateDir });
const proxy = await startFaultProxy({ upstream: env.vaultAddr });
const tokenPath = join(stateDir, 'token');
writeFileSync(tokenPath, await serviceAccountToken(env.kubeconfigPath, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT));
const config = loadConfig([`--vault-addr=${proxy.url}`, '--vault-auth-method=kubernetes', `--vault-kubernetes-role=${env.vaultKubernetesAuth.role}`, `--vault-kubernetes-token-path=${tokenPath}`], {});
const starts: LimiterStart[] = [];
const stack = createVaultStack(config, pino({ level: 'silent' }), undefined, { onLimiterStart: (e) => starts.push(e), limiterMarginMs: marginMs });
await stack.login();
await new Promise((r) => setTimeout(r, 2200));
const first = proxy.requests.length;
const auditFrom = auditLogMark(env.vaultAuditLogPath);
const s0 = starts.length;
const prefix = `diag-${randomBytes(3).toString('hex')}`;
await Promise.all(Array.from({ length: n }, (_, i) => stack.vault.writeData({ mount: 'secret', key: `${prefix}/s${i}` }, new Map(Object.entries({ v: String(i) })), {}, benchContext)));
await stack.stop();
const wire = proxy.requests.slice(first).map((r) => r.at).sort((a, b) => a - b);
const lim = starts.slice(s0);
let bad = 0;
for (let i = 20; i < wire.length; i++) {
  let j = i;
  while (j < wire.length && wire[j] < wire[i] + 1000) j++;
  if (j - i > 10) {
    bad++;
    if (bad > 5) continue;
    console.log(`window at wire[${i}] holds ${j - i}: wire offsets`, wire.slice(i, j).map((t) => (t - wire[i]).toFixed(1)).join(' '));
    console.log('   limiter (at-wire[i], paced):', lim.slice(Math.max(0, i - 2), j + 2).map((e) => `${(e.at - wire[i]).toFixed(1)}${e.paced ? '' : 'B'}`).join(' '));
    console.log('   wire-limiter delays:', wire.slice(i, j).map((t, k) => (t - lim[i + k].at).toFixed(1)).join(' '));
  }
}
const atVault = auditRequestTimes(env.vaultAuditLogPath, auditFrom, (path) => path.startsWith(`secret/data/${prefix}/`)).sort((a, b) => a - b);
let limBad = 0;
const la = lim.map((e) => e.at);
for (let i = 20; i < la.length; i++) { let j = i; while (j < la.length && la[j] < la[i] + 1000) j++; if (j - i > 10) limBad++; }
const delays = wire.map((t, k) => t - lim[k].at).sort((a, b) => a - b);
console.log({ n, marginMs, badWireWindows: bad, badLimiterWindows: limBad, maxIn1sAtVault: maxInAnyWindow(atVault, 1000, atVault[19] + 0.001), bursts: lim.filter((e) => !e.paced).length, delayP50: delays[delays.length >> 1].toFixed(2), delayP99: delays[Math.floor(delays.length * 0.99)].toFixed(2), delayMax: delays[delays.length - 1].toFixed(2) });
await proxy.close();
await env.stop();
rmSync(join(stateDir, 'etcd-data'), { recursive: true, force: true });
process.exit(0);
