// The operator's container image, as `npm run image` (scripts/image.sh) builds it: the OCI archive, what is in
// its layers, and podman to run it. No Docker daemon and no registry: podman runs the archive with the
// project's own storage under the binary cache. A tool that cannot run fails the test, naming it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cacheDir, repoRoot } from '../../../testenv/binaries.js';

export interface ImageBuild {
  /** $VSO_CACHE/image/app-<hash>: the archive, the SBOM and image.json. */
  dir: string;
  archive: string;
  sbomPath: string;
  /** image.json written by scripts/image.sh: tag, image id, bases, config, which layers come from the base. */
  info: {
    tag: string;
    version: string;
    imageId: string;
    buildBase: string;
    runtimeBase: string;
    config: { User?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; ExposedPorts?: Record<string, unknown> };
    layers: { diffId: string; fromBase: boolean }[];
  };
}

/**
 * Runs scripts/image.sh (a no-op when the image of these sources is cached; ~4 min the first time on a fresh
 * machine: bases from Debian, then the build). Throws with its output when it fails.
 */
export function buildImage(): ImageBuild {
  const r = spawnSync('bash', [join(repoRoot, 'scripts', 'image.sh')], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const lastLine = r.stdout?.trim().split('\n').pop() ?? '';
  if (r.error || r.status !== 0 || !lastLine.startsWith('/')) {
    throw new Error(
      `scripts/image.sh failed (${r.error?.message ?? `exit ${r.status}`}): the image could not be built. Its output:\n` +
        `${(r.stderr ?? '').split('\n').slice(-40).join('\n')}\n${r.stdout ?? ''}`,
    );
  }
  const dir = lastLine;
  return {
    dir,
    archive: join(dir, 'vault-sync-operator.oci.tar'),
    sbomPath: join(dir, 'sbom.cdx.json'),
    info: JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')),
  };
}

export interface LayerEntry {
  /** Without a leading "/" or "./"; directories end without "/". */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

export interface OciLayer {
  digest: string;
  diffId: string;
  /** Compressed, as stored in the archive (what a registry stores and a node pulls). */
  size: number;
  uncompressedSize: number;
  entries: LayerEntry[];
}

function run(cmd: string, args: string[], input?: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 512 * 1024 * 1024 });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.toString().trim()}`);
  return r.stdout;
}

const blob = (archive: string, digest: string) => run('tar', ['-xOf', archive, `blobs/sha256/${digest.replace(/^sha256:/, '')}`]);

/** The manifest, config and layers (with their file lists) of the one image in an OCI archive. */
export function readOciArchive(archive: string): { config: any; layers: OciLayer[] } {
  const index = JSON.parse(run('tar', ['-xOf', archive, 'index.json']).toString('utf8'));
  const manifest = JSON.parse(blob(archive, index.manifests[0].digest).toString('utf8'));
  const config = JSON.parse(blob(archive, manifest.config.digest).toString('utf8'));
  const layers = (manifest.layers as { digest: string; size: number; mediaType: string }[]).map((l, i) => {
    const compressed = blob(archive, l.digest);
    const tar = l.mediaType.endsWith('+gzip') ? gunzipSync(compressed) : compressed;
    return { digest: l.digest, diffId: config.rootfs.diff_ids[i], size: l.size, uncompressedSize: tar.length, entries: listTar(tar) };
  });
  return { config, layers };
}

/** `tar -tv --numeric-owner` of a layer, parsed: "-rw-r--r-- 0/0  16518 1970-01-01 00:00 app/x.js". */
function listTar(tar: Buffer): LayerEntry[] {
  const text = run('tar', ['-tv', '--numeric-owner', '--full-time', '-f', '-'], tar).toString('utf8');
  return text.split('\n').filter(Boolean).map((line) => {
    const m = /^(\S)(\S{9})\s+(\d+)\/(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse a tar listing line: ${line}`);
    const type = m[1] === '-' ? 'file' : m[1] === 'd' ? 'dir' : m[1] === 'l' ? 'symlink' : 'other';
    const path = (type === 'symlink' ? m[6].replace(/ -> .*$/, '') : m[6]).replace(/^\.?\//, '').replace(/\/$/, '');
    return { path, type, mode: modeBits(m[2]), uid: Number(m[3]), gid: Number(m[4]), size: Number(m[5]) };
  });
}

function modeBits(rwx: string): number {
  let mode = 0;
  for (let i = 0; i < 9; i++) if (rwx[i] !== '-' && rwx[i] !== 'S' && rwx[i] !== 'T') mode |= 1 << (8 - i);
  return mode;
}

/** podman with the project's storage (the one scripts/image.sh builds into) and the flags this machine needs. */
export function podmanArgs(...args: string[]): string[] {
  const root = join(cacheDir(), 'image');
  return [
    '--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs',
    // No systemd here: cgroupfs; crun is not installed, runc is; events to a file, not journald.
    '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
    ...args,
  ];
}

/** Fails loudly, naming the tool and how to get it, when podman (or runc under it) cannot run here. */
export function requirePodman(): string {
  const r = spawnSync('podman', podmanArgs('info', '--format', '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}'), { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `podman cannot run here (${r.error?.message ?? r.stderr.trim()}): the image test needs podman and runc ` +
        '(bash scripts/install-test-tools.sh image installs them; npm test\'s pretest runs it)',
    );
  }
  return r.stdout.trim();
}

/** Ulimits for `podman run`: its defaults are above this machine's hard limits, and it cannot raise them. */
export function ulimitArgs(): string[] {
  const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const hard = Number(r.stdout.trim());
  const nofile = Number.isFinite(hard) && hard > 0 ? Math.min(hard, 65536) : 65536;
  return ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', 'nproc=4096:4096'];
}
