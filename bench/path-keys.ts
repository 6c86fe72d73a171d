// What one path of many keys costs the operator, to size the bounds of `--max-keys-per-path` (not part of
// `npm run bench`: pure CPU and memory, no cluster). For one Secret of N keys (20-character names, 32-byte
// values) written to one path: the time and heap of the decisions (materialize the entry, hash it) and of
// building the request body (the transport's serializer), and the body's size and JSON strings (OpenBao counts
// those). Vault requests are not counted: one write per path whatever N is.
//   node --expose-gc dist/bench/path-keys.js [N ...]
import { randomBytes } from 'node:crypto';
import { materialize, type Target } from '../src/sync/desired.js';
import { Fingerprinter } from '../src/sync/fingerprint.js';
import { jsonPieces } from '../src/vault/transport.js';
import { MAX_KEYS_PER_PATH_LIMIT } from '../src/vault/server-limits.js';

const sizes = process.argv.slice(2).map(Number);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const fingerprint = new Fingerprinter(randomBytes(32));

function measure(n: number) {
  const secret = new Map(Array.from({ length: n }, (_, i) => [`key-${String(i).padStart(16, '0')}`, new TextEncoder().encode(randomBytes(16).toString('hex'))] as [string, Uint8Array]));
  const target: Target = { path: { mount: 'secret', key: 'team-a/web' }, selections: [{ secretName: 'wide', prefix: '', optional: false }] };
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  const result = materialize([target], new Map([['wide', secret]]), { maxEntryBytes: 32 * 1024 ** 2, maxKeysPerPath: MAX_KEYS_PER_PATH_LIMIT });
  if (!result.ok) throw new Error(result.problems[0].message);
  const entry = result.entries[0];
  const hash = fingerprint.entry(entry);
  const decidedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const bodyStarted = process.hrtime.bigint();
  const body = [...jsonPieces({ data: entry.data, options: { cas: 0 } })].join('');
  const bodyMs = Number(process.hrtime.bigint() - bodyStarted) / 1e6;
  const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 1024 ** 2;
  return { keys: n, decideMs: Math.round(decidedMs * 10) / 10, bodyMs: Math.round(bodyMs * 10) / 10, heapMiB: Math.round(heapMiB * 10) / 10, bodyKiB: Math.round(Buffer.byteLength(body) / 1024), jsonStrings: 2 * n + 3, hashLength: hash.length };
}

measure(1000); // warm-up: the first run pays for compilation
for (const n of sizes.length > 0 ? sizes : [480, 9_900, 100_000]) console.log(JSON.stringify(measure(n)));
