// What one source with many Secrets costs the operator, to size `--max-secrets-per-source` (not part of
// `npm run bench`: pure CPU and memory, no cluster). For N Secrets used by one Deployment's pod template,
// each with 5 keys of 32-byte values: the time and heap of one reconcile's decisions (derive the targets,
// materialize the entries, hash them, plan against the last record), and the size of the VaultSync status
// that records them (the apiserver/etcd refuse an object above ~1.5 MiB). Vault requests are not counted:
// they are rate-limited and scheduled fairly whatever N is.
//   node --expose-gc dist/bench/source-size.js [N ...]
import { randomBytes } from 'node:crypto';
import { recordStatus } from '../src/kube/vaultsync-store.js';
import { inputFingerprint } from '../src/sync/change-detection.js';
import { deriveTargets, materialize, secretNamesOf, type SyncSource } from '../src/sync/desired.js';
import { Fingerprinter } from '../src/sync/fingerprint.js';
import { planSync } from '../src/sync/plan.js';
import { formatPath } from '../src/vault/path.js';
import { KEYS_PER_PATH_DEFAULTS } from '../src/vault/server-limits.js';

const sizes = process.argv.slice(2).map(Number);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const fingerprint = new Fingerprinter(randomBytes(32));

function sourceWith(n: number, base: string): SyncSource {
  const envFrom = Array.from({ length: n }, (_, i) => ({ secretRef: { name: `app-secret-${String(i).padStart(5, '0')}` } }));
  return { kind: 'Deployment', namespace: 'team-a', name: 'web', uid: 'u', annotations: { 'vault-sync.io/path': base }, podSpec: { containers: [{ name: 'app', image: 'x', envFrom }] } };
}

function secretsFor(names: string[]) {
  const value = () => new TextEncoder().encode(randomBytes(16).toString('hex'));
  return new Map(names.map((name) => [name, new Map(['user', 'password', 'host', 'port', 'token'].map((k) => [k, value()]))] as const));
}

function measure(n: number, base: string, maxSecretsPerSource: number) {
  const source = sourceWith(n, base);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const start = process.hrtime.bigint();
  const derived = deriveTargets(source, { allowedMounts: ['secret'], maxSecretsPerSource, maxKeysPerPath: KEYS_PER_PATH_DEFAULTS.openbao });
  if (!derived.ok) throw new Error(derived.problem.message);
  const names = secretNamesOf(derived.targets);
  const secrets = secretsFor(names);
  const fp = inputFingerprint(derived.targets, names, (s) => s, undefined);
  const materialized = materialize(derived.targets, secrets, { maxEntryBytes: 32 * 1024 ** 2, maxKeysPerPath: KEYS_PER_PATH_DEFAULTS.openbao });
  if (!materialized.ok) throw new Error('materialize');
  const desired = materialized.entries.map((entry) => ({ entry, hash: fingerprint.entry(entry) }));
  const first = planSync(desired, [], { changeDetection: true, force: false });
  const recorded = desired.map((d, i) => ({ path: d.entry.path, hash: d.hash, version: i + 1 }));
  const again = planSync(desired, recorded, { changeDetection: true, force: false });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 1024 ** 2;
  const entries = recorded.map((e) => ({ path: formatPath(e.path), hash: e.hash, version: e.version }));
  const status = (withIntents: boolean) =>
    Buffer.byteLength(JSON.stringify({ status: recordStatus({ inputFingerprint: fp, entries, intents: withIntents ? entries.map((e) => ({ ...e, version: e.version + 1 })) : [], lastSyncTime: new Date().toISOString() }) }));
  if (first.length !== n || again.some((op) => op.type !== 'unchanged')) throw new Error('unexpected plan');
  return { n, pathChars: formatPath(recorded[0].path).length, ms: ms.toFixed(1), heapMiB: heapMiB.toFixed(1), statusKiB: (status(false) / 1024).toFixed(0), statusWithIntentsKiB: (status(true) / 1024).toFixed(0) };
}

const typical = 'secret/team-a/web';
// The longest path the grammar allows is 512 characters: a base that leaves room for the Secret name.
const longest = `secret/${'p'.repeat(200)}/${'q'.repeat(230)}`;
const rows = [];
for (const n of sizes.length ? sizes : [64, 500, 1000, 2000, 5000, 10000]) {
  measure(Math.min(n, 100), typical, 100_000); // warm up the JIT
  rows.push({ base: 'typical', ...measure(n, typical, 100_000) }, { base: 'longest', ...measure(n, longest, 100_000) });
}
console.table(rows);
