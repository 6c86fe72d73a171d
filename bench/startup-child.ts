// One start-up measurement in a fresh process (so that its RSS is its own), for bench/startup.ts:
//   node [flags] dist/bench/startup-child.js client-node [LIMIT]      one list with @kubernetes/client-node (0: unpaged)
//   node [flags] dist/bench/startup-child.js operator ARGS... -- SEC  the operator until caches synced, then SEC s idle
// Prints one JSON line on stdout.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { startOperator } from '../src/operator.js';
import { loadKubeConfig } from '../src/kube/kube-config.js';

const MiB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The heap that is still reachable: a full GC, then heapUsed. The gc function is taken at run time (not by
 * --expose-gc), so the process runs with exactly the flags under test until this last measurement.
 */
function retainedHeapBytes(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

function memory() {
  const m = process.memoryUsage();
  return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), externalMiB: mib(m.external + m.arrayBuffers), peakRssMiB: mib(process.resourceUsage().maxRSS * 1024) };
}

/**
 * The reference: every Secret listed with @kubernetes/client-node and held as its typed objects. Unpaged (one
 * request, one body) when `pageLimit` is 0 — impossible once the body passes V8's longest string (512 MiB: about
 * 90,000 Secrets of 4 KiB) —, else in pages of `pageLimit` (client-go's default is 500) with continue tokens.
 */
async function clientNode(pageLimit: number) {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const t0 = performance.now();
  const items: V1Secret[] = [];
  let continueToken: string | undefined;
  do {
    const page = await core.listSecretForAllNamespaces(pageLimit > 0 ? { limit: pageLimit, _continue: continueToken } : {});
    items.push(...page.items);
    continueToken = pageLimit > 0 ? page.metadata?._continue || undefined : undefined;
  } while (continueToken);
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, items: items.length, ...memory() };
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
  const retained = retainedHeapBytes(); // after the steady figures: the forced GC would lower them
  await running.stop();
  return { seconds, atSyncRssMiB: atSync.rssMiB, steadyRssMiB: steady.rssMiB, steadyMaxRssMiB: mib(maxSteady), heapUsedMiB: steady.heapUsedMiB, retainedHeapBytes: retained, externalMiB: steady.externalMiB, peakRssMiB: steady.peakRssMiB };
}

const [mode, ...rest] = process.argv.slice(2);
const result =
  mode === 'client-node'
    ? clientNode(Number(rest[0] ?? 0))
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
