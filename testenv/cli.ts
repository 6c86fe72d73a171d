// `npm run env:up|env:down` (node dist/testenv/cli.js up|down|status): a long-running local environment
// for manual work. `up` starts a detached supervisor (this file with `supervise`) that owns the children and
// stops them on SIGTERM/SIGINT; `down` signals it and waits until nothing of it is left.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinaries, repoRoot } from './binaries.js';
import { logTail, readEnvInfo, startEnvironment, type LocalEnvironmentInfo } from './environment.js';

// repoRoot is found from this file's location (dist/testenv/cli.js), not from cwd.
const stateDir = join(repoRoot, '.local');
const pidFile = join(stateDir, 'env.pid');
const supervisorLog = join(stateDir, 'supervisor.log');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Linux: state and process group of a pid from /proc (undefined when gone or /proc is unavailable). */
function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    // Fields after the ")" that ends the command name: state ppid pgrp ...
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim().split(' ');
    return { state: f[0], pgrp: Number(f[2]) };
  } catch {
    return undefined;
  }
}

/**
 * Alive = exists and is not a zombie. kill(pid, 0) alone is not enough: once `up` has exited, the supervisor's
 * parent is PID 1, and the init of this machine reaps orphans only every second or so.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e: any) {
    if (e.code !== 'EPERM') return false;
  }
  if (!existsSync('/proc/self/stat')) return true; // no /proc (not Linux): kill(pid, 0) is all we have
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z';
}

/** Live (non-zombie) members of the supervisor's process group (it is a group leader: detached). */
function groupMembers(pgid: number): number[] {
  if (!existsSync('/proc/self/stat')) {
    try { process.kill(-pgid, 0); return [pgid]; } catch { return []; } // no /proc: best effort
  }
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => { const s = procStat(p); return s !== undefined && s.pgrp === pgid && s.state !== 'Z'; });
}

/** The supervisor's pid from env.pid, only if that process is alive and still our supervisor (pids get reused). */
function readPid(): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('supervise')) return undefined;
  } catch { /* no /proc: trust the pid file */ }
  return pid;
}

function printInfo(info: LocalEnvironmentInfo): void {
  const rel = relative(process.cwd(), join(stateDir, 'env.sh')) || join(stateDir, 'env.sh');
  console.log(`  kube-apiserver  ${info.apiServerUrl}  (KUBECONFIG=${info.kubeconfigPath})`);
  const server = `${info.vaultServer.product === 'openbao' ? 'OpenBao' : 'Vault'} ${info.vaultServer.version}`;
  console.log(`  ${server.padEnd(16)}${info.vaultAddr}  (root token in env.sh; audit log ${info.vaultAuditLogPath})`);
  console.log(`  Vault k8s auth  role ${info.vaultKubernetesAuth.role} for ${info.vaultKubernetesAuth.serviceAccount.namespace}/${info.vaultKubernetesAuth.serviceAccount.name}`);
  console.log(`  logs            ${stateDir}/*.log`);
  console.log(`\n  source ${rel}`);
}

async function up(): Promise<number> {
  const running = readPid();
  if (running) {
    console.log(`local environment already running (supervisor pid ${running})`);
    const info = readEnvInfo(stateDir);
    if (info) printInfo(info);
    return 0;
  }
  ensureBinaries();
  mkdirSync(stateDir, { recursive: true });
  rmSync(pidFile, { force: true });
  rmSync(join(stateDir, 'env.json'), { force: true }); // we wait for the new one

  const fd = openSync(supervisorLog, 'w');
  // detached: own session and process group, so it survives this command and `down` can check the whole group.
  const sup = spawn(process.execPath, [fileURLToPath(import.meta.url), 'supervise'], {
    detached: true,
    stdio: ['ignore', fd, fd],
    cwd: repoRoot,
  });
  closeSync(fd);
  sup.unref();
  console.log(`starting local environment (supervisor pid ${sup.pid}, log ${supervisorLog})`);

  const deadline = Date.now() + 180_000;
  for (;;) {
    const info = readEnvInfo(stateDir);
    if (info) {
      console.log('local environment is up:');
      printInfo(info);
      return 0;
    }
    if (!alive(sup.pid!)) {
      console.error(`the supervisor exited before the environment was ready. Its log:\n${readFileSync(supervisorLog, 'utf8').trimEnd()}`);
      return 1;
    }
    if (Date.now() > deadline) {
      console.error(`not ready after 180 s; stopping it. Supervisor log:\n${logTail(supervisorLog, 80)}`);
      await down();
      return 1;
    }
    await sleep(200);
  }
}

async function down(): Promise<number> {
  const pid = readPid();
  if (!pid) {
    console.log('local environment is not running');
    rmSync(pidFile, { force: true });
    rmSync(join(stateDir, 'env.json'), { force: true }); // stale, e.g. after the supervisor was SIGKILLed
    return 0;
  }
  const pids = Object.values(readEnvInfo(stateDir)?.pids ?? {});
  process.kill(pid, 'SIGTERM');
  const gone = () => groupMembers(pid).length === 0 && !alive(pid) && pids.every((p) => !alive(p));
  // The supervisor gives children 10 s before SIGKILL; allow a margin, then kill the whole group ourselves.
  for (let i = 0; i < 200 && !gone(); i++) await sleep(100);
  if (!gone()) {
    console.error('supervisor did not stop in 20 s: SIGKILL to its process group');
    try { process.kill(-pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    for (let i = 0; i < 50 && !gone(); i++) await sleep(100);
  }
  if (!gone()) {
    console.error(`processes still alive after SIGKILL: ${[...new Set([...groupMembers(pid), ...pids.filter(alive)])].join(' ')}`);
    return 1;
  }
  // Cosmetic: give init a moment to reap the supervisor's zombie so that `ps` right after shows nothing.
  for (let i = 0; i < 30 && procStat(pid); i++) await sleep(100);
  rmSync(pidFile, { force: true });
  rmSync(join(stateDir, 'env.json'), { force: true });
  console.log('local environment stopped; no process left');
  return 0;
}

async function status(): Promise<number> {
  const pid = readPid();
  const info = readEnvInfo(stateDir);
  if (!pid || !info) {
    console.log(pid ? `starting (supervisor pid ${pid})` : 'not running');
    return pid ? 0 : 1;
  }
  let vault = 'unreachable';
  try {
    vault = `HTTP ${(await fetch(`${info.vaultAddr}/v1/sys/health`)).status}`;
  } catch { /* keep 'unreachable' */ }
  const procs = Object.entries(info.pids).map(([n, p]) => `${n} ${p} ${alive(p) ? 'alive' : 'DEAD'}`).join(', ');
  console.log(`running (supervisor pid ${pid}; ${procs}; Vault health ${vault})`);
  printInfo(info);
  return 0;
}

/** The detached process that owns the environment. */
async function supervise(): Promise<never> {
  writeFileSync(pidFile, String(process.pid));
  const ts = () => new Date().toISOString().slice(11, 23);
  let env: Awaited<ReturnType<typeof startEnvironment>> | undefined;
  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${ts()} ${sig}: stopping`);
    // Before the environment is up, process.exit runs environment.ts's 'exit' handler (SIGKILLs the children).
    if (env) await env.stop();
    rmSync(join(stateDir, 'env.json'), { force: true });
    rmSync(pidFile, { force: true });
    console.log(`${ts()} stopped`);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
  try {
    env = await startEnvironment({ stateDir, log: (m) => console.log(`${ts()} ${m}`) });
  } catch (e) {
    console.error(`${ts()} ${e instanceof Error ? e.message : String(e)}`);
    rmSync(pidFile, { force: true });
    process.exit(1);
  }
  console.log(`${ts()} running; SIGTERM to stop`);
  // The signal handlers keep it alive; a timer keeps the event loop from draining.
  setInterval(() => {}, 1 << 30);
  return new Promise<never>(() => {});
}

const cmd = process.argv[2];
const commands: Record<string, () => Promise<number>> = { up, down, status, supervise };
if (!cmd || !commands[cmd]) {
  console.error('usage: node dist/testenv/cli.js up|down|status');
  process.exit(2);
}
commands[cmd]().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
