// One start-up measurement in a fresh process (so that its RSS is its own), for bench/startup.ts:
//   node [flags] dist/bench/startup-child.js client-node              one unpaged list with @kubernetes/client-node
//   node [flags] dist/bench/startup-child.js operator ARGS... -- SEC  the operator until caches synced, then SEC s idle
// Prints one JSON line on stdout.
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { startOperator } from '../src/operator.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

const MiB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function memory() {
  const m = process.memoryUsage();
  return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), externalMiB: mib(m.external + m.arrayBuffers), peakRssMiB: mib(process.resourceUsage().maxRSS * 1024) };
}

async function clientNode() {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const t0 = performance.now();
  const list = await core.listSecretForAllNamespaces();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, items: list.items.length, ...memory() };
}

async function operator(args: string[], idleSeconds: number) {
  const config = loadConfig(args, process.env);
  const t0 = performance.now();
  const running = startOperator(config, pino({ level: 'silent' }));
  await running.ready;
  const seconds = (performance.now() - t0) / 1000;
  const atSync = memory();
  // Steady state: idle with the watches open, sampled each second (no forced GC: as in a pod).
  let maxSteady = 0;
  for (let s = 0; s < idleSeconds; s++) {
    await sleep(1000);
    maxSteady = Math.max(maxSteady, process.memoryUsage().rss);
  }
  const steady = memory();
  await running.stop();
  return { seconds, atSyncRssMiB: atSync.rssMiB, steadyRssMiB: steady.rssMiB, steadyMaxRssMiB: mib(maxSteady), heapUsedMiB: steady.heapUsedMiB, externalMiB: steady.externalMiB, peakRssMiB: steady.peakRssMiB };
}

const [mode, ...rest] = process.argv.slice(2);
const result =
  mode === 'client-node'
    ? clientNode()
    : operator(rest.slice(0, rest.indexOf('--')), Number(rest[rest.indexOf('--') + 1] ?? 10));
result.then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
