// Fair shares of the rate budget and values first (issue 9 item 3), through the real Vault pipeline against
// OpenBao. Each run gets a fresh stack (a full bucket) and queues work the way a reconcile does: every data
// write of a source at once (cas=0 on a new path), each path's ownership metadata as soon as its data landed,
// with the source key as the request's context.
//
//  - smallChangeWait: 10 sources x 40 new paths queued; once the backlog flows, one new path of another
//    source. Seconds from asking to its value being in Vault (target: within 2 s). The same with no source
//    given (one flow, first come first served) shows what the fair line saves.
//  - valuesFirst: 200 new paths of one source: seconds until every value is in Vault (ideal (200-20)/10 =
//    18 s: data before marks) and until every path is marked too (ideal (400-20)/10 = 38 s).
import { randomBytes } from 'node:crypto';
import type { KvPath } from '../src/vault/path.js';
import type { VaultStackParts } from '../src/vault/stack.js';

const RATE = 10;
const BURST = 20;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface FairShareContext {
  /** A fresh, not yet logged-in stack on the bench's Vault. */
  newStack(): Promise<VaultStackParts>;
  say(message: string): void;
}

async function loggedIn(ctx: FairShareContext): Promise<VaultStackParts> {
  const stack = await ctx.newStack();
  await stack.login();
  await sleep(1000 * (BURST / RATE) + 200); // the login and mount lookup took two tokens: refill to a full bucket
  return stack;
}

/** A reconcile's new paths: all data at once, each path's marks once its data landed. Resolves when every value is in. */
function syncNewPaths(stack: VaultStackParts, source: string | undefined, paths: KvPath[]) {
  const context = source === undefined ? undefined : { source };
  const marks: Array<Promise<unknown>> = [];
  const values = Promise.allSettled(
    paths.map(async (path) => {
      await stack.vault.writeData(path, new Map([['value', path.key]]), { cas: 0 }, context);
      marks.push(stack.vault.writeMetadata(path, { 'managed-by': 'vault-sync-operator' }, context).catch(() => undefined));
    }),
  );
  return { values, marked: values.then(() => Promise.allSettled(marks)) };
}

async function smallChangeWait(ctx: FairShareContext, fair: boolean) {
  const stack = await loggedIn(ctx);
  const prefix = `bench/fair-${randomBytes(3).toString('hex')}`;
  const backlog = Array.from({ length: 10 }, (_, s) =>
    syncNewPaths(stack, fair ? `Deployment/bench/big${s}` : undefined, Array.from({ length: 40 }, (_, i) => ({ mount: 'secret', key: `${prefix}/big${s}/p${i}` }))).values,
  );
  await sleep(3000); // the burst is spent and the backlog flows at the rate
  const t0 = performance.now();
  await stack.vault.writeData({ mount: 'secret', key: `${prefix}/small/p0` }, new Map([['value', 'small']]), { cas: 0 }, fair ? { source: 'Deployment/bench/small' } : undefined);
  const seconds = (performance.now() - t0) / 1000;
  const waitingBehind = stack.vault.waiting;
  await stack.stop(); // the rest of the backlog is not what this measures
  await Promise.all(backlog);
  return { line: fair ? 'fair (per source)' : 'one flow (FIFO)', bigSources: 10, pathsPerSource: 40, smallChangeSeconds: round(seconds), stillQueuedAfter: waitingBehind, targetSeconds: 2 };
}

async function valuesFirst(ctx: FairShareContext, n: number) {
  const stack = await loggedIn(ctx);
  const prefix = `bench/values-first-${randomBytes(3).toString('hex')}`;
  const t0 = performance.now();
  const run = syncNewPaths(stack, 'Deployment/bench/one', Array.from({ length: n }, (_, i) => ({ mount: 'secret', key: `${prefix}/p${i}` })));
  await run.values;
  const valuesSeconds = (performance.now() - t0) / 1000;
  await run.marked;
  const markedSeconds = (performance.now() - t0) / 1000;
  await stack.stop();
  return {
    paths: n,
    allValuesSeconds: round(valuesSeconds),
    idealValuesSeconds: (n - BURST) / RATE,
    allMarkedSeconds: round(markedSeconds),
    idealMarkedSeconds: (2 * n - BURST) / RATE,
  };
}

export async function fairShare(ctx: FairShareContext) {
  ctx.say('fair shares: a one-path change while 10 sources x 40 new paths are queued, fair line vs one FIFO flow (~45 s)');
  const smallChange = [await smallChangeWait(ctx, true), await smallChangeWait(ctx, false)];
  ctx.say('values first: 200 new paths of one source, data (cas=0) then marks (~40 s)');
  return { smallChange, valuesFirst: await valuesFirst(ctx, 200) };
}

export function fairShareTables(results: Awaited<ReturnType<typeof fairShare>>, table: (rows: Array<Record<string, unknown>>) => string): string[] {
  return [
    'Fair shares: a one-path change of another source while 10 sources x 40 new paths wait (seconds until its value is in Vault)',
    table(results.smallChange),
    '',
    'Values first: 200 new paths of one source (seconds until every value is in Vault, then until every path is marked)',
    table([results.valuesFirst]),
    '',
  ];
}
