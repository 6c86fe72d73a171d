// A real Kubernetes API server (+ etcd) and a real Vault (OpenBao dev server) on loopback, without Docker.
// Used by the e2e globalSetup and by `npm run env:up`. See /work/shared/TESTENV.md for the recipe.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { binaryPaths } from './binaries.js';
import { installCrds } from './crds.js';

export interface LocalEnvironment {
  stateDir: string;
  kubeconfigPath: string; // admin user, static token, CA of the apiserver
  apiServerUrl: string; // https://127.0.0.1:PORT
  /** etcd's client URL (http://127.0.0.1:PORT), e.g. to compact its history so that old resourceVersions expire. */
  etcdUrl: string;
  caCertPath: string;
  vaultAddr: string; // http://127.0.0.1:PORT
  vaultRootToken: string;
  /** Which server VSO_BAO_BIN is (OpenBao by default; HashiCorp Vault when pointed at a `vault` binary). */
  vaultServer: VaultServer;
  /** The file audit device: one JSON line per request and one per response. */
  vaultAuditLogPath: string;
  vaultKubernetesAuth: {
    mount: 'kubernetes';
    role: string;
    serviceAccount: { namespace: string; name: string };
    policy: string;
  };
  /** Child process ids, so that `env:down` can verify they are gone. */
  pids: { etcd: number; kubeApiserver: number; bao: number };
  stop(): Promise<void>; // kills every child, waits for them to exit; idempotent
}

export interface VaultServer {
  product: 'openbao' | 'vault';
  /** e.g. "2.7.2" */
  version: string;
}

/** What env.json holds. */
export type LocalEnvironmentInfo = Omit<LocalEnvironment, 'stop'>;

export const OPERATOR_NAMESPACE = 'vault-sync-system';
export const OPERATOR_SERVICE_ACCOUNT = 'vault-sync-operator';
export const VAULT_ROLE = 'vault-sync-operator';
export const VAULT_POLICY = 'vault-sync-operator';
const REVIEWER_SERVICE_ACCOUNT = 'vault-token-reviewer';

// What the operator needs on KV v2 at secret/ (data, metadata, detailed listings and scans, soft delete, destroy) and mount discovery.
const POLICY_HCL = `
path "secret/data/*"     { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/metadata/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/detailed-metadata/*" { capabilities = ["list", "scan"] }
path "secret/delete/*"   { capabilities = ["create", "update"] }
path "secret/destroy/*"  { capabilities = ["create", "update"] }
path "sys/mounts"        { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
`;

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Last lines of a log file, for error messages (kube-apiserver logs are long; the end says why). */
export function logTail(path: string, lines = 40): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    if (!text) return '(the log is empty)';
    const all = text.split('\n');
    return all.slice(-lines).map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l)).join('\n');
  } catch (e) {
    return `(cannot read ${path}: ${errMsg(e)})`;
  }
}

/** Distinct free loopback ports: hold all listeners open until every port is known, then release them. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((res, rej) => s.once('error', rej).listen(0, '127.0.0.1', () => res()));
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

interface Child {
  name: string;
  bin: string;
  proc: ChildProcess;
  logPath: string;
  spawnError?: Error;
  exited: Promise<void>;
}

const running = (c: Child) => c.proc.pid !== undefined && c.proc.exitCode === null && c.proc.signalCode === null;

/** A failure about one child, with the tail of its log. */
function childError(c: Child, why: string): Error {
  return new Error(`${c.name} ${why}\n--- last lines of ${c.logPath} ---\n${logTail(c.logPath)}`);
}

/** Polls `check` until it returns true; fails early if the child died, with its log tail on timeout. */
async function waitReady(c: Child, what: string, timeoutMs: number, check: () => Promise<boolean | string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  if (c.proc.pid === undefined) await c.exited; // spawn failed: the 'error' event comes asynchronously
  for (;;) {
    if (c.spawnError) throw childError(c, `could not be started (${c.bin}): ${c.spawnError.message}`);
    if (!running(c)) throw childError(c, `exited during startup (code ${c.proc.exitCode}, signal ${c.proc.signalCode})`);
    try {
      const r = await check();
      if (r === true) return;
      last = typeof r === 'string' ? r : 'not ready';
    } catch (e) {
      last = errMsg(e);
    }
    if (Date.now() > deadline) throw childError(c, `not ready after ${timeoutMs / 1000}s (${what}; last: ${last})`);
    await sleep(100);
  }
}

/** GET over https with a given CA (fetch cannot take a custom CA without undici dispatcher plumbing). */
function httpsGet(url: string, ca: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** One call to Vault's HTTP API; throws with the status and Vault's error text. */
async function vaultApi(addr: string, token: string | null, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${addr}/v1/${path}`, {
    method,
    headers: { ...(token ? { 'X-Vault-Token': token } : {}), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Vault ${method} /v1/${path} -> ${res.status}: ${text.trim()}`);
  return text ? JSON.parse(text) : null;
}

/** OpenBao or HashiCorp Vault, from what `<bin> version` prints ("OpenBao v2.7.2 (…)" / "Vault v1.21.4 (…)"). */
export function parseVaultServerVersion(printed: string): VaultServer | undefined {
  const m = /^(OpenBao|Vault) v(\d+\.\d+\.\d+\S*)/m.exec(printed);
  return m ? { product: m[1] === 'OpenBao' ? 'openbao' : 'vault', version: m[2] } : undefined;
}

export async function vaultServerOf(bin: string): Promise<VaultServer> {
  const { stdout } = await execFileAsync(bin, ['version']);
  const server = parseVaultServerVersion(stdout);
  if (!server) throw new Error(`${bin} version printed neither "OpenBao v…" nor "Vault v…": ${stdout.trim().slice(0, 200)}`);
  return server;
}

/**
 * Makes sure the file audit device logs to `path`, whichever way the server accepts it: OpenBao 2.x takes
 * the declarative `audit` stanza of its config file (and refuses `PUT sys/audit/...`: "use declarative
 * config"); HashiCorp Vault ignores that stanza in dev mode and takes `PUT sys/audit/file`.
 */
async function ensureFileAudit(addr: string, token: string, path: string): Promise<'config' | 'api'> {
  const devices = await vaultApi(addr, token, 'GET', 'sys/audit');
  const listed = (devices?.data ?? devices ?? {}) as Record<string, { type?: string; options?: { file_path?: string } }>;
  if (Object.values(listed).some((d) => d?.type === 'file' && d.options?.file_path === path)) return 'config';
  await vaultApi(addr, token, 'PUT', 'sys/audit/file', { type: 'file', options: { file_path: path } });
  return 'api';
}

async function openssl(stateDir: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd: stateDir });
  } catch (e: any) {
    throw new Error(`openssl ${args.join(' ')}: ${e.stderr?.toString().trim() || errMsg(e)}`);
  }
}

/** CA, apiserver serving certificate (127.0.0.1 / localhost SANs) and the service-account signing key pair. */
async function generatePki(pki: string): Promise<void> {
  const o = (args: string[]) => openssl(pki, args);
  // EC keys: generated instantly, unlike RSA. The SA key is RSA because that is the most common signer (RS256).
  await Promise.all([
    o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
      '-days', '3650', '-subj', '/CN=vso-local-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign']),
    o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'apiserver.key',
      '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver']),
    o(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']),
  ]);
  writeFileSync(
    join(pki, 'apiserver.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' +
      'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  await Promise.all([
    o(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt',
      '-days', '3650', '-extfile', 'apiserver.ext']),
    o(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']),
  ]);
}

function kubeconfigYaml(server: string, caPem: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: vso-local
  cluster:
    server: ${server}
    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: vso-local
  context:
    cluster: vso-local
    user: admin
    namespace: default
current-context: vso-local
`;
}

/** A TokenRequest token (default audience = the apiserver's issuer, which is what TokenReview checks). */
export async function serviceAccountToken(kubeconfigPath: string, namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const r = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const token = r.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

// Children are SIGKILLed if the process exits (even on an uncaught error): 'exit' handlers must be synchronous.
// For a parent killed with SIGKILL (no handler runs), a detached watchdog shell kills them within a second.
const WATCHDOG = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; [ -f "$2" ] && kill -9 $(cat "$2") 2>/dev/null; rm -f "$2"';

export async function startEnvironment(opts: { stateDir: string; log?: (msg: string) => void }): Promise<LocalEnvironment> {
  const { stateDir } = opts;
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const bins = binaryPaths();

  // Start from a clean slate for what we own (the folder may hold the supervisor's log and pid file).
  const pki = join(stateDir, 'pki');
  const etcdData = join(stateDir, 'etcd-data');
  // (children.pids too: a stale one would point our watchdog at pids that may belong to someone else by now.)
  for (const f of ['env.json', 'env.sh', 'vault-audit.log', 'children.pids']) rmSync(join(stateDir, f), { force: true });
  for (const d of [pki, etcdData]) rmSync(d, { recursive: true, force: true });
  mkdirSync(pki, { recursive: true });

  const children: Child[] = [];
  let stopping: Promise<void> | undefined;
  const pidsFile = join(stateDir, 'children.pids');
  const watchdog = spawn('sh', ['-c', WATCHDOG, 'vso-testenv-watchdog', String(process.pid), pidsFile], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  const killAllSync = () => {
    for (const c of children) if (running(c)) try { process.kill(c.proc.pid!, 'SIGKILL'); } catch { /* already gone */ }
    try { process.kill(watchdog.pid!, 'SIGKILL'); } catch { /* gone */ }
    try { unlinkSync(pidsFile); } catch { /* not there */ }
  };
  process.on('exit', killAllSync);

  const startChild = (name: string, bin: string, args: string[]): Child => {
    if (stopping) throw new Error(`not starting ${name}: the environment is being stopped`);
    const logPath = join(stateDir, `${name}.log`);
    const fd = openSync(logPath, 'w');
    // Own stdout/stderr to a file: a pipe we stop reading would block the child; inherit would flood jest's output.
    const proc = spawn(bin, args, { cwd: stateDir, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const c: Child = { name, bin, proc, logPath, exited: Promise.resolve() };
    c.exited = new Promise<void>((res) => {
      proc.once('exit', () => res());
      proc.once('error', (e) => { c.spawnError = e; res(); });
    });
    children.push(c);
    writeFileSync(pidsFile, children.map((x) => x.proc.pid).filter(Boolean).join(' '));
    return c;
  };

  const stop = () =>
    (stopping ??= (async () => {
      // Reverse start order, one at a time: kube-apiserver stops in ~1 s while etcd is still there, but hangs
      // for >10 s retrying etcd if both get SIGTERM together. SIGKILL whatever ignores SIGTERM for 10 s.
      for (const c of [...children].reverse()) {
        if (!running(c)) continue;
        c.proc.kill('SIGTERM');
        // unref'd: a pending 10 s timer would otherwise keep the caller (e.g. jest) alive after stop().
        const timer = setTimeout(() => running(c) && c.proc.kill('SIGKILL'), 10_000).unref();
        await c.exited;
        clearTimeout(timer);
      }
      try { process.kill(watchdog.pid!, 'SIGKILL'); } catch { /* gone */ }
      try { unlinkSync(pidsFile); } catch { /* gone */ }
      process.off('exit', killAllSync);
    })());

  // Runs one named part of the startup; any failure names the part.
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      const r = await fn();
      log(`${what}: ok (${since()})`);
      return r;
    } catch (e) {
      throw new Error(`${what} failed: ${errMsg(e)}`);
    }
  };

  try {
    const [etcdPort, etcdPeerPort, apiPort, vaultPort] = await freePorts(4);
    const apiServerUrl = `https://127.0.0.1:${apiPort}`;
    const vaultAddr = `http://127.0.0.1:${vaultPort}`;
    const vaultRootToken = `root-${randomBytes(12).toString('hex')}`;
    const adminToken = `admin-${randomBytes(16).toString('hex')}`;
    const vaultAuditLogPath = join(stateDir, 'vault-audit.log');
    const caCertPath = join(pki, 'ca.crt');
    const kubeconfigPath = join(stateDir, 'kubeconfig');

    // etcd and OpenBao need no certificates: start them while openssl works.
    const etcd = startChild('etcd', bins.etcd, [
      '--name=default', `--data-dir=${etcdData}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`, `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      '--unsafe-no-fsync=true', // throwaway data: fsync only slows tests down (envtest does the same)
    ]);
    // OpenBao 2.x refuses to enable audit devices over the API ("use declarative ... config"), so declare it
    // in a config file (ensureFileAudit falls back to the API for Vault, which ignores it); -dev still
    // provides the in-memory storage, listener, root token and KV v2 at secret/.
    const vaultServer = await step(`Vault server of ${bins.bao}`, () => vaultServerOf(bins.bao));
    const baoConfig = join(stateDir, 'bao-audit.hcl');
    writeFileSync(baoConfig, `audit "file" "file" {\n  options {\n    file_path = ${JSON.stringify(vaultAuditLogPath)}\n  }\n}\n`);
    const bao = startChild('bao', bins.bao, [
      'server', '-dev', `-config=${baoConfig}`, `-dev-root-token-id=${vaultRootToken}`,
      `-dev-listen-address=127.0.0.1:${vaultPort}`, '-dev-no-store-token',
    ]);

    await step('certificates (openssl)', () => generatePki(pki));
    const caPem = readFileSync(caCertPath, 'utf8');
    writeFileSync(join(pki, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`);
    writeFileSync(kubeconfigPath, kubeconfigYaml(apiServerUrl, caPem, adminToken), { mode: 0o600 });

    const serverName = vaultServer.product === 'openbao' ? 'OpenBao' : 'HashiCorp Vault';
    const vaultReady = (async () => {
      await step(`${serverName} ${vaultServer.version} on ${vaultAddr}`, () =>
        waitReady(bao, 'GET /v1/sys/health', 30_000, async () => {
          const r = await fetch(`${vaultAddr}/v1/sys/health`);
          return r.status === 200 || `HTTP ${r.status}`;
        }),
      );
      await step(`file audit device (${vaultAuditLogPath})`, async () => {
        const how = await ensureFileAudit(vaultAddr, vaultRootToken, vaultAuditLogPath);
        log(`audit device enabled by ${how === 'config' ? 'the declarative config stanza' : 'PUT sys/audit/file'}`);
      });
    })();
    const kubeReady = (async () => {
      await step(`etcd on 127.0.0.1:${etcdPort}`, () =>
        waitReady(etcd, 'GET /health', 30_000, async () => {
          const r = await fetch(`http://127.0.0.1:${etcdPort}/health`);
          return r.ok || `HTTP ${r.status}`;
        }),
      );
      const apiserver = startChild('kube-apiserver', bins.kubeApiserver, [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        `--secure-port=${apiPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
        `--cert-dir=${pki}`, `--tls-cert-file=${join(pki, 'apiserver.crt')}`, `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
        // No controller-manager mints SA tokens into pods here, so the admission plugin would only get in the way.
        '--disable-admission-plugins=ServiceAccount', '--authorization-mode=RBAC',
        `--service-account-issuer=${apiServerUrl}/`, `--service-account-key-file=${join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(pki, 'sa.key')}`, `--token-auth-file=${join(pki, 'tokens.csv')}`,
        // ConfigMaps are watched straight from etcd (no watch cache): once etcd is compacted (etcdUrl), a watch
        // from an older version gets a real 410 Gone, as in a cluster. The watch cache would still serve it.
        '--watch-cache-sizes=configmaps#0',
      ]);
      await step(`kube-apiserver on ${apiServerUrl}`, () =>
        waitReady(apiserver, 'GET /readyz', 60_000, async () => {
          const r = await httpsGet(`${apiServerUrl}/readyz`, caPem, adminToken);
          // On failure /readyz lists the checks that fail: keep them for the error message.
          return r.status === 200 || `HTTP ${r.status} ${r.body.split('\n').filter((l) => l.includes('[-]')).join(' ')}`;
        }),
      );
      return apiserver;
    })();
    // Fail fast on whichever breaks first. The other one is abandoned: silence its later rejection (it would
    // crash the process as unhandled); startChild refuses to start anything once stop() has begun.
    vaultReady.catch(() => {});
    kubeReady.catch(() => {});
    const [apiserver] = await Promise.all([kubeReady, vaultReady]);

    const reviewerJwt = await step('Kubernetes objects (namespace, service accounts, auth-delegator binding)', async () => {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      const core = kc.makeApiClient(CoreV1Api);
      const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
      const namespace = OPERATOR_NAMESPACE;
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      for (const name of [REVIEWER_SERVICE_ACCOUNT, OPERATOR_SERVICE_ACCOUNT]) {
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
      }
      // system:auth-delegator allows TokenReview (and SubjectAccessReview), which Vault calls to check a login JWT.
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: `${REVIEWER_SERVICE_ACCOUNT}-auth-delegator` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
          subjects: [{ kind: 'ServiceAccount', name: REVIEWER_SERVICE_ACCOUNT, namespace }],
        },
      });
      // Long-lived: Vault keeps using it for every login while `env:up` runs (no max expiration is configured).
      return serviceAccountToken(kubeconfigPath, namespace, REVIEWER_SERVICE_ACCOUNT, 30 * 24 * 3600);
    });

    await step('Vault Kubernetes auth (auth/kubernetes, policy, role)', async () => {
      const v = (method: string, path: string, body?: unknown) => vaultApi(vaultAddr, vaultRootToken, method, path, body);
      await v('POST', 'sys/auth/kubernetes', { type: 'kubernetes' });
      await v('POST', 'auth/kubernetes/config', {
        kubernetes_host: apiServerUrl,
        kubernetes_ca_cert: caPem,
        token_reviewer_jwt: reviewerJwt,
        disable_local_ca_jwt: true, // Vault does not run in a pod: never read /var/run/secrets/...
      });
      await v('PUT', `sys/policies/acl/${VAULT_POLICY}`, { policy: POLICY_HCL });
      await v('POST', `auth/kubernetes/role/${VAULT_ROLE}`, {
        bound_service_account_names: [OPERATOR_SERVICE_ACCOUNT],
        bound_service_account_namespaces: [OPERATOR_NAMESPACE],
        token_policies: [VAULT_POLICY],
        token_ttl: '1h',
      });
    });

    await step('Vault login with an operator service-account token (TokenReview round trip)', async () => {
      const jwt = await serviceAccountToken(kubeconfigPath, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, 600);
      const r = await vaultApi(vaultAddr, null, 'POST', 'auth/kubernetes/login', { role: VAULT_ROLE, jwt });
      const policies: string[] = r?.auth?.policies ?? [];
      if (!r?.auth?.client_token || !policies.includes(VAULT_POLICY)) {
        throw new Error(`login returned no token with policy ${VAULT_POLICY}: ${JSON.stringify(r?.auth ?? r)}`);
      }
    });

    // The operator's CRDs, as `helm install` would put them there.
    await step('CRDs from crds/ (VaultSync, VaultSyncPolicy)', () => installCrds(kubeconfigPath));

    const info: LocalEnvironmentInfo = {
      stateDir,
      kubeconfigPath,
      apiServerUrl,
      etcdUrl: `http://127.0.0.1:${etcdPort}`,
      caCertPath,
      vaultAddr,
      vaultRootToken,
      vaultServer,
      vaultAuditLogPath,
      vaultKubernetesAuth: {
        mount: 'kubernetes',
        role: VAULT_ROLE,
        serviceAccount: { namespace: OPERATOR_NAMESPACE, name: OPERATOR_SERVICE_ACCOUNT },
        policy: VAULT_POLICY,
      },
      pids: { etcd: etcd.proc.pid!, kubeApiserver: apiserver.proc.pid!, bao: bao.proc.pid! },
    };
    // kubectl first: the helm folder (the npm layer) may still hold that layer's older kubectl from before.
    writeEnvFiles(info, [dirname(bins.kubectl), dirname(bins.helm), dirname(bins.bao)]);
    log(`environment ready in ${since()}`);
    return { ...info, stop };
  } catch (e) {
    await stop();
    rmSync(etcdData, { recursive: true, force: true }); // 60+ MB of preallocated WAL; the logs stay
    throw new Error(`local environment (${stateDir}): ${errMsg(e)}`);
  }
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** env.sh for humans (`source .local/env.sh`), env.json for tests; env.json is written last and atomically. */
function writeEnvFiles(info: LocalEnvironmentInfo, pathDirs: string[]): void {
  const dir = info.stateDir;
  writeFileSync(
    join(dir, 'env.sh'),
    [
      '# generated by testenv/environment.ts',
      `export KUBECONFIG=${shq(info.kubeconfigPath)}`,
      `export VAULT_ADDR=${shq(info.vaultAddr)}`,
      `export VAULT_TOKEN=${shq(info.vaultRootToken)}`,
      // the bao CLI reads BAO_*; kubectl, helm and bao come from the binary cache
      `export BAO_ADDR="$VAULT_ADDR" BAO_TOKEN="$VAULT_TOKEN"`,
      `export PATH=${shq([...new Set(pathDirs)].join(':'))}:"$PATH"`,
      '',
    ].join('\n'),
  );
  const tmp = join(dir, 'env.json.tmp');
  writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n');
  renameSync(tmp, join(dir, 'env.json'));
}

/** Reads env.json written by startEnvironment (undefined when absent). */
export function readEnvInfo(stateDir: string): LocalEnvironmentInfo | undefined {
  const p = join(stateDir, 'env.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as LocalEnvironmentInfo) : undefined;
}
