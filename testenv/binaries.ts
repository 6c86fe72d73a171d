// Paths of the locally built/installed binaries of the test environment.
// scripts/testenv/versions.sh is the single source of truth for versions and the cache folder:
// we parse it here instead of duplicating constants that could drift.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: walk up from this file (testenv/ under ts-jest, dist/testenv/ when compiled). */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'testenv', 'versions.sh'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`testenv: cannot find scripts/testenv/versions.sh above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
})();

const versionsFile = join(repoRoot, 'scripts', 'testenv', 'versions.sh');
const buildScript = join(repoRoot, 'scripts', 'testenv', 'build-binaries.sh');

/** NAME=value lines of versions.sh (values up to whitespace/comment; shell expansions are not evaluated). */
function readVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(versionsFile, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=([^\s#]+)/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  for (const k of ['KUBE_VERSION', 'ETCD_VERSION', 'OPENBAO_VERSION', 'KUBECTL_LAYER_VERSION']) {
    if (!out[k]) throw new Error(`testenv: ${k} not found in ${versionsFile}`);
  }
  return out;
}

export const versions = readVersions();

/** Same rule as versions.sh: VSO_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/vault-sync-operator. */
export function cacheDir(): string {
  return process.env.VSO_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vault-sync-operator');
}

export type BinaryName = 'etcd' | 'kubeApiserver' | 'bao' | 'kubectl' | 'helm';

/** Per-binary override (e.g. to test a failing start without touching the cache, or to use a system etcd). */
const overrideVar: Record<BinaryName, string> = {
  etcd: 'VSO_ETCD_BIN',
  kubeApiserver: 'VSO_KUBE_APISERVER_BIN',
  bao: 'VSO_BAO_BIN',
  kubectl: 'VSO_KUBECTL_BIN',
  helm: 'VSO_HELM_BIN',
};

export type Binaries = Record<BinaryName, string>;

/** Resolved binary paths (layout of build-binaries.sh), honouring the VSO_*_BIN overrides. */
export function binaryPaths(): Binaries {
  const c = cacheDir();
  const v = versions;
  const cached: Binaries = {
    etcd: join(c, `etcd-${v.ETCD_VERSION}`, 'etcd'),
    kubeApiserver: join(c, `kube-apiserver-${v.KUBE_VERSION}`, 'kube-apiserver'),
    bao: join(c, `openbao-${v.OPENBAO_VERSION}`, 'bao'),
    // Built from the same k8s.io/kubernetes module and version as kube-apiserver: no skew warning.
    kubectl: join(c, `kubectl-${v.KUBE_VERSION}`, 'kubectl'),
    helm: join(c, `kubectl-layer-${v.KUBECTL_LAYER_VERSION}`, 'helm'),
  };
  for (const k of Object.keys(cached) as BinaryName[]) {
    const o = process.env[overrideVar[k]];
    if (o) cached[k] = o;
  }
  return cached;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Names and paths of the binaries that are not there (or not executable). */
export function missingBinaries(b: Binaries = binaryPaths()): string[] {
  return (Object.keys(b) as BinaryName[]).filter((k) => !isExecutable(b[k])).map((k) => `${k} (${b[k]})`);
}

/**
 * Makes sure every binary exists, running `build-binaries.sh all` when one is missing (it only builds
 * what is missing; a cold kube-apiserver build takes 10-20 min). Throws naming what is still missing.
 * Set VSO_NO_BUILD=1 to fail instead of building.
 */
export function ensureBinaries(log: (msg: string) => void = (m) => process.stderr.write(`[testenv] ${m}\n`)): Binaries {
  const b = binaryPaths();
  const missing = missingBinaries(b);
  if (missing.length === 0) return b;

  // A missing overridden path cannot be fixed by building into the cache: say so instead of building.
  const overridden = (Object.keys(b) as BinaryName[]).filter((k) => process.env[overrideVar[k]] && !isExecutable(b[k]));
  if (overridden.length > 0) {
    throw new Error(
      `testenv: binary override points at a missing/non-executable file: ` +
        overridden.map((k) => `${overrideVar[k]}=${b[k]}`).join(', '),
    );
  }
  if (process.env.VSO_NO_BUILD) {
    throw new Error(`testenv: missing binaries: ${missing.join(', ')} (VSO_NO_BUILD is set; run \`npm run env:build\`)`);
  }

  log(`missing: ${missing.join(', ')}; running scripts/testenv/build-binaries.sh all (cache: ${cacheDir()})`);
  // stdout goes to our stderr too so that progress shows without polluting a caller's stdout.
  const r = spawnSync('bash', [buildScript, 'all'], { stdio: ['ignore', 2, 'inherit'], env: process.env });
  const still = missingBinaries(b);
  if (r.error || r.status !== 0 || still.length > 0) {
    const why = r.error ? r.error.message : `exit code ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}`;
    throw new Error(
      `testenv: build-binaries.sh all failed (${why}); still missing: ${still.join(', ') || 'none'}. ` +
        `Its output is above; rerun \`bash scripts/testenv/build-binaries.sh <part>\` to retry one part.`,
    );
  }
  return b;
}
