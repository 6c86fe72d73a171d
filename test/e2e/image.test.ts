// The image users install (`helm install` pulls it), built here as users would build it (the Dockerfile, by
// `npm run image`: buildah, stand-in bases from Debian, no Docker daemon, no registry) and run as a pod would
// run it: read-only root filesystem, uid 65532, no capabilities, the chart's environment, the ServiceAccount
// token where the kubelet puts it, the projected Vault token where the chart mounts it; host network to reach
// the test environment on loopback. What is in it is checked from the OCI archive itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { buildImage, podmanArgs, requirePodman, readOciArchive, ulimitArgs, type ImageBuild, type LayerEntry, type OciLayer } from './helpers/image.js';
import { createSecret, deploymentUsing, waitForVault } from './helpers/objects.js';
import { find, freePort, kubectlApply, renderChart, repoRoot, sumMetric, tokenFor } from './helpers/ops.js';
import { auditMark, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

let image: ImageBuild;
let layers: OciLayer[];
let config: any;
let appLayers: OciLayer[];
let appFiles: LayerEntry[];
let unpacked: string; // the app layers, unpacked

beforeAll(() => {
  image = buildImage();
  ({ config, layers } = readOciArchive(image.archive));
  const fromBase = new Set(image.info.layers.filter((l) => l.fromBase).map((l) => l.diffId));
  appLayers = layers.filter((l) => !fromBase.has(l.diffId));
  appFiles = appLayers.flatMap((l) => l.entries);
  unpacked = mkdtempSync(join(tmpdir(), 'vso-image-app-'));
  for (const l of appLayers) {
    const r = spawnSync('tar', ['-xz', '-C', unpacked, '--no-same-owner', '-f', '-'], { input: readBlob(l.digest), maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`unpacking ${l.digest}: ${r.stderr}`);
  }
}, 15 * 60_000);

afterAll(() => {
  if (unpacked) rmSync(unpacked, { recursive: true, force: true });
});

function readBlob(digest: string): Buffer {
  const r = spawnSync('tar', ['-xOf', image.archive, `blobs/sha256/${digest.replace(/^sha256:/, '')}`], { maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`reading ${digest} from ${image.archive}: ${r.stderr}`);
  return r.stdout;
}

/** Installed packages under a node_modules folder: "name@version" -> folder (nested node_modules included). */
function installedPackages(nodeModules: string, out = new Map<string, string>()): Map<string, string> {
  if (!existsSync(nodeModules)) return out;
  for (const name of readdirSync(nodeModules)) {
    if (name.startsWith('.')) continue;
    const dirs = name.startsWith('@') ? readdirSync(join(nodeModules, name)).map((n) => join(name, n)) : [name];
    for (const d of dirs) {
      const pj = join(nodeModules, d, 'package.json');
      if (!existsSync(pj)) continue;
      const p = JSON.parse(readFileSync(pj, 'utf8'));
      out.set(`${p.name}@${p.version}`, join(nodeModules, d));
      installedPackages(join(nodeModules, d, 'node_modules'), out);
    }
  }
  return out;
}

describe('what is in the image', () => {
  test('the application layer holds /app only: root-owned, read-only to everyone else, compiled src/ and production dependencies', () => {
    expect(appLayers.length).toBeGreaterThanOrEqual(1);
    const outside = appFiles.filter((e) => e.path !== 'app' && !e.path.startsWith('app/'));
    expect(outside.map((e) => e.path)).toEqual([]);
    // uid 65532 can read and run everything, and change nothing (even were the root filesystem writable).
    expect(appFiles.filter((e) => e.uid !== 0 || e.gid !== 0).map((e) => `${e.path} ${e.uid}:${e.gid}`)).toEqual([]);
    expect(appFiles.filter((e) => e.type !== 'symlink' && (e.mode & 0o022) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
    expect(appFiles.filter((e) => e.type === 'file' && (e.mode & 0o444) !== 0o444).map((e) => e.path)).toEqual([]);

    const paths = appFiles.map((e) => e.path);
    // Our code: compiled src/ only. No tests, test environment, benchmarks, local state, TypeScript sources.
    const ours = paths.filter((p) => !p.startsWith('app/node_modules/'));
    expect(ours.filter((p) => !/^app(\/package\.json|\/node_modules|\/dist(\/src(\/.*\.js|\/[a-z-]+)?)?)?$/.test(p))).toEqual([]);
    expect(ours).toContain('app/dist/src/main.js');
    expect(paths.filter((p) => /(^|\/)(\.local|testenv|test-artifacts|coverage)(\/|$)/.test(p) || /\.test\.[jt]s$/.test(p))).toEqual([]);
    expect(paths.filter((p) => /^app\/(test|bench|scripts|helm|src)(\/|$)/.test(p))).toEqual([]);
    // Source maps are not wanted: the sources they point at are not in the image (ours nor the packages').
    expect(paths.filter((p) => p.endsWith('.map'))).toEqual([]);
    // Nor what Node never loads from packages: type declarations, their test folders.
    expect(paths.filter((p) => /\.d\.[mc]?ts$/.test(p))).toEqual([]);
    expect(paths.filter((p) => /^app\/node_modules\/(@[^/]+\/)?[^/@][^/]*\/(test|tests|__tests__)(\/|$)/.test(p))).toEqual([]);
  });

  test('node_modules is exactly the production closure of package-lock.json: every production package, no dev one', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8'));
    const entries = Object.entries(lock.packages as Record<string, { version?: string; dev?: boolean; optional?: boolean; devOptional?: boolean; link?: boolean }>)
      .filter(([path, p]) => path.startsWith('node_modules/') && !p.link);
    const nameOf = (path: string) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const prod = new Set(entries.filter(([, p]) => !p.dev && !p.devOptional).map(([path, p]) => `${nameOf(path)}@${p.version}`));
    const required = new Set(entries.filter(([, p]) => !p.dev && !p.devOptional && !p.optional).map(([path, p]) => `${nameOf(path)}@${p.version}`));
    const dev = new Set(entries.filter(([, p]) => p.dev).map(([path]) => nameOf(path)));
    const installed = [...installedPackages(join(unpacked, 'app', 'node_modules')).keys()];

    expect(installed.filter((id) => !prod.has(id))).toEqual([]);
    expect([...required].filter((id) => !installed.includes(id))).toEqual([]);
    for (const d of ['jest', 'ts-jest', 'typescript', 'fast-check', 'playwright-core', '@types/jest']) expect(dev.has(d)).toBe(true);
    expect(installed.filter((id) => dev.has(id.slice(0, id.lastIndexOf('@'))) && !prod.has(id))).toEqual([]);
    // No empty folder left where a dev dependency would have been.
    expect(readdirSync(join(unpacked, 'app', 'node_modules')).filter((n) => !n.startsWith('.') && readdirSync(join(unpacked, 'app', 'node_modules', n)).length === 0)).toEqual([]);
  });

  test('the runtime base is shaped like distroless/nodejs: node at /nodejs/bin/node, user 65532, no shell, no package manager', () => {
    const base = layers.filter((l) => !appLayers.includes(l)).flatMap((l) => l.entries.map((e) => e.path));
    expect(base).toContain('nodejs/bin/node');
    for (const absent of ['bin/sh', 'usr/bin/sh', 'bin/bash', 'usr/bin/bash', 'usr/bin/dash', 'usr/bin/apt', 'usr/bin/dpkg', 'usr/bin/perl']) {
      expect(base).not.toContain(absent);
    }
    // The build machine's CA bundle is for npm in the build stage only.
    expect([...base, ...appFiles.map((e) => e.path)].filter((p) => p.includes('build-host-ca'))).toEqual([]);
    expect(config.config.Env.filter((e: string) => e.startsWith('NODE_EXTRA_CA_CERTS'))).toEqual([]);

    expect(config.config).toMatchObject({ User: '65532:65532', Entrypoint: ['/nodejs/bin/node'], Cmd: ['dist/src/main.js'], WorkingDir: '/app' });
    expect(config.config.Env).toContain('NODE_ENV=production');
    expect(config.config.Env).toContain('MALLOC_ARENA_MAX=2'); // the memory figures of PERFORMANCE.md assume it
    // NODE_OPTIONS kept minimal: at most heap sizing (no --enable-source-maps, --inspect, --require, ...).
    const nodeOptions = config.config.Env.filter((e: string) => e.startsWith('NODE_OPTIONS=')).flatMap((e: string) => e.slice('NODE_OPTIONS='.length).split(/\s+/).filter(Boolean));
    expect(nodeOptions.filter((o: string) => !/^--max-(old|semi)-space-size=\d+$/.test(o))).toEqual([]);
    expect(nodeOptions).toContain('--max-semi-space-size=2');
    expect(config.config.Labels).toMatchObject({ 'org.opencontainers.image.version': image.info.version, 'org.opencontainers.image.licenses': 'Apache-2.0' });
  });

  test('the SBOM beside the archive lists exactly the packages in the image, and none of them is copyleft', () => {
    const sbom = JSON.parse(readFileSync(image.sbomPath, 'utf8'));
    expect(sbom).toMatchObject({ bomFormat: 'CycloneDX', metadata: { component: { name: 'vault-sync-operator', version: image.info.version } } });
    const installed = installedPackages(join(unpacked, 'app', 'node_modules'));
    const listed: string[] = sbom.components.map((c: { name: string; version: string }) => `${c.name}@${c.version}`);
    expect([...listed].sort()).toEqual([...installed.keys()].sort());

    // Permissive licences only (SPDX ids). Copyleft (GPL, LGPL, AGPL, MPL, EPL, EUPL, CDDL, SSPL, OSL,
    // CC-BY-SA, ...) or anything unknown fails, naming the package.
    const permissive = new Set(['MIT', 'ISC', 'Apache-2.0', 'BSD-2-Clause', 'BSD-3-Clause', '0BSD', 'Unlicense', 'CC0-1.0', 'Python-2.0', 'BlueOak-1.0.0', 'Public Domain']);
    const licenceOf = (c: any): string[] => {
      const fromSbom = (c.licenses ?? []).flatMap((l: any) => (l.license?.id ?? l.license?.name ?? l.expression ?? '').split(/\s+(?:OR)\s+|[()]/).filter(Boolean));
      if (fromSbom.length) return fromSbom;
      // npm sbom reads only an SPDX `license` string; older packages (tv4) declare [{ type }] objects.
      const p = JSON.parse(readFileSync(join(installed.get(`${c.name}@${c.version}`)!, 'package.json'), 'utf8'));
      const legacy = [p.license, p.licenses].flat().filter(Boolean).map((l: any) => (typeof l === 'string' ? l : l.type));
      return legacy;
    };
    const offending = sbom.components
      .map((c: any) => ({ id: `${c.name}@${c.version}`, licences: licenceOf(c) }))
      // A choice of licences ("MIT OR GPL-2.0", or several legacy entries) is fine when one of them is permissive.
      .filter((c: { licences: string[] }) => !c.licences.some((l) => permissive.has(l)));
    expect(offending).toEqual([]);
  });
});

describe('the image running as the chart runs it', () => {
  const containerName = `vso-image-e2e-${randomBytes(3).toString('hex')}`;
  let proc: ChildProcess | undefined;
  let logPath: string;

  afterAll(() => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    spawnSync('podman', podmanArgs('rm', '--force', '--ignore', containerName));
  });

  test('logs in with Kubernetes auth, syncs an annotated Deployment, serves /readyz and /metrics, and drains on SIGTERM, exiting 0 within 5 s', async () => {
    expect(requirePodman()).toMatch(/^runc /);
    const env = loadTestEnv();
    const releaseNamespace = await freshNamespace('image-release');
    const appNamespace = await freshNamespace('image-app');
    const release = `img-${randomBytes(3).toString('hex')}`;
    const objects = renderChart(release, releaseNamespace, [
      '--set', `vault.address=${env.vaultAddr}`,
      '--set', `watchNamespaces={${appNamespace}}`,
      '--set', `vault.auth.kubernetes.role=${release}`,
      '--set', 'clusterName=e2e-image',
    ]);
    kubectlApply(objects.map((o) => stringify(o)).join('---\n'));
    const deployment = find(objects, 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];

    // The image the chart pulls by default is the one in the archive (DEPLOYMENT.md: build, push, install).
    const index = JSON.parse(spawnSync('tar', ['-xOf', image.archive, 'index.json'], { encoding: 'utf8' }).stdout);
    expect(container.image).toBe(index.manifests[0].annotations['org.opencontainers.image.ref.name']);

    // Vault: a Kubernetes-auth role for this release's ServiceAccount, bound to the chart's token audience.
    const serviceAccount: string = pod.serviceAccountName;
    const vaultTokenVolume = pod.volumes.find((v: any) => v.name === 'vault-token');
    const audience: string = vaultTokenVolume.projected.sources[0].serviceAccountToken.audience;
    const role = await vaultHttp(`auth/kubernetes/role/${release}`, {
      body: { bound_service_account_names: [serviceAccount], bound_service_account_namespaces: [releaseNamespace], audience, token_policies: [env.vaultKubernetesAuth.policy], token_ttl: '1h' },
    });
    expect(role.status).toBe(204);

    // What the kubelet would mount: the ServiceAccount's token, CA and namespace; the projected Vault token.
    const volumes = mkdtempSync(join(tmpdir(), 'vso-image-volumes-'));
    const saDir = join(volumes, 'serviceaccount');
    const vaultTokenDir = join(volumes, 'vault-token');
    const readable = (dir: string, files: Record<string, string>) => {
      mkdirSync(dir, { recursive: true });
      for (const [name, content] of Object.entries(files)) {
        writeFileSync(join(dir, name), content, { mode: 0o440 });
        chownSync(join(dir, name), 0, pod.securityContext.fsGroup); // as fsGroup makes them: root, the pod's group
      }
    };
    readable(saDir, { token: await tokenFor(releaseNamespace, serviceAccount), 'ca.crt': readFileSync(env.caCertPath, 'utf8'), namespace: releaseNamespace });
    readable(vaultTokenDir, { token: await tokenFor(releaseNamespace, serviceAccount, [audience]) });
    const vaultTokenMount = container.volumeMounts.find((m: any) => m.name === 'vault-token').mountPath;

    // The chart's environment, as the kubelet resolves it; on the host network the metrics port must be free
    // and stays on loopback (the pod's 0.0.0.0:8080 would be every interface of this machine).
    const port = await freePort();
    const podEnv: Record<string, string> = {};
    for (const e of container.env) {
      if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') podEnv[e.name] = `${release}-image-0`;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') podEnv[e.name] = releaseNamespace;
      else podEnv[e.name] = e.value;
    }
    expect(podEnv.VAULT_KUBERNETES_TOKEN_PATH).toBe(`${vaultTokenMount}/token`);
    podEnv.METRICS_PORT = String(port);
    podEnv.METRICS_BIND_ADDRESS = '127.0.0.1';
    const api = new URL(env.apiServerUrl);
    podEnv.KUBERNETES_SERVICE_HOST = api.hostname;
    podEnv.KUBERNETES_SERVICE_PORT = api.port;

    // The chart's security context, as podman flags.
    const sc = container.securityContext;
    expect(sc).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext).toMatchObject({ runAsUser: 65532, runAsGroup: 65532 });
    const tmpVolume = pod.volumes.find((v: any) => v.name === 'tmp');
    const tmpSize = String(tmpVolume.emptyDir.sizeLimit).replace(/Mi$/, 'm');

    const args = podmanArgs(
      'run', '--name', containerName, '--pull=never', '--network', 'host',
      '--read-only', '--user', `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`,
      '--group-add', String(pod.securityContext.fsGroup),
      '--cap-drop', 'all', '--security-opt', 'no-new-privileges',
      '--tmpfs', `/tmp:rw,size=${tmpSize},mode=1777`,
      '-v', `${saDir}:/var/run/secrets/kubernetes.io/serviceaccount:ro`,
      '-v', `${vaultTokenDir}:${vaultTokenMount}:ro`,
      ...ulimitArgs(),
      ...Object.entries(podEnv).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      `oci-archive:${image.archive}`,
    );
    logPath = join(volumes, 'container.log');
    const log = createWriteStream(logPath);
    const started = spawn('podman', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = started;
    started.stdout!.pipe(log);
    started.stderr!.pipe(log);
    let spawnError: Error | undefined;
    const exited = new Promise<{ code: number | null; at: number }>((res) => {
      started.once('exit', (code) => res({ code, at: Date.now() }));
      started.once('error', (e) => { spawnError = e; res({ code: null, at: Date.now() }); });
    });
    const logs = () => readFileSync(logPath, 'utf8');
    const url = `http://127.0.0.1:${port}`;

    // podman copies the image into its (vfs) storage first: allow for it.
    await waitFor(
      async () => {
        if (spawnError) throw new Error(`podman could not be started: ${spawnError.message}`);
        if (started.exitCode !== null) throw new Error(`the container exited with ${started.exitCode}:\n${logs().slice(-3000)}`);
        return (await fetch(`${url}/readyz`)).status === 200;
      },
      { timeoutMs: 90_000, description: `the container's ${url}/readyz answering 200 (log: ${logPath})` },
    );

    // An annotated Deployment is synced.
    await createSecret(appNamespace, 'db', { user: 'app', password: 'from-the-image' });
    await kubeClients().apps.createNamespacedDeployment({
      namespace: appNamespace,
      body: deploymentUsing(appNamespace, 'web', { 'vault-sync.io/path': `secret/${appNamespace}/web` }, ['db']),
    });
    const synced = await waitForVault(`${appNamespace}/web/db`);
    expect(synced.data).toEqual({ user: 'app', password: 'from-the-image' });

    // The reconcile is counted once its writes have landed and its status is recorded: wait for it.
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${url}/metrics`)).text();
        return sumMetric(text, 'vault_sync_operations_total', { kind: 'Deployment', result: 'synced' }) >= 1 ? text : undefined;
      },
      { description: `vault_sync_operations_total{kind="Deployment",result="synced"} >= 1 at ${url}/metrics` },
    );
    expect(sumMetric(metrics, 'vault_auth_total', { event: 'login', result: 'success' })).toBeGreaterThanOrEqual(1);
    expect(sumMetric(metrics, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    // SIGTERM while a Deployment of 12 Secrets is being written (one LIST of their folder, then per path the
    // data and the marks; at the chart's 10 requests/s after a burst of 20: under 2 s of work): what is in
    // flight lands, then the process exits 0.
    const secrets = Array.from({ length: 12 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    for (const s of secrets) await createSecret(appNamespace, s, { value: `v-${s}` });
    const mark = auditMark();
    await kubeClients().apps.createNamespacedDeployment({
      namespace: appNamespace,
      body: deploymentUsing(appNamespace, 'batch', { 'vault-sync.io/path': `secret/${appNamespace}/batch` }, secrets),
    });
    const operatorWrites = () => kvRequestsSince(mark, `${appNamespace}/batch/`).filter(isWrite).length;
    await waitFor(() => operatorWrites() > 0, { timeoutMs: 20_000, intervalMs: 20, description: 'the first write of the 12-Secret Deployment' });
    const sigterm = Date.now();
    const kill = spawnSync('podman', podmanArgs('kill', '--signal', 'TERM', containerName), { encoding: 'utf8' });
    expect(kill.status).toBe(0);
    const writesAtSigterm = operatorWrites();
    const exit = await exited;

    process.stderr.write(`[image e2e] SIGTERM -> exit ${exit.code} in ${exit.at - sigterm} ms; ${writesAtSigterm} of ${secrets.length * 2} writes had landed at SIGTERM\n`);
    expect(exit.code).toBe(0);
    expect(exit.at - sigterm).toBeLessThan(5_000);
    expect(writesAtSigterm).toBeLessThan(secrets.length * 2); // work was in flight when the signal came
    expect(logs()).toContain('shutting down: draining in-flight work');
    for (const s of secrets) {
      expect((await vaultHttp(`secret/data/${appNamespace}/batch/${s}`)).json?.data?.data).toEqual({ value: `v-${s}` });
    }
  }, 240_000);
});
