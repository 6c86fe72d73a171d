#!/usr/bin/env node
import { ConfigError, loadConfig, usage } from './config.js';
import { createLogger } from './observability/logger.js';
import { runPlanCommand } from './plan/command.js';
import { startSupervisor, type Supervisor } from './supervisor.js';

/**
 * Composition root: configuration, logger, the supervised operator (HTTP server, leader election); drain on
 * SIGTERM. `vault-sync-operator plan ...` prints what the operator would do instead, and exits.
 */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'plan') {
    const code = await runPlanCommand(argv.slice(1), process.env, { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) });
    // process.exit() would cut a piped stdout short: let the plan drain first.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    return code;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`${usage()}\n\nvault-sync-operator plan --help: what the operator would do, without doing it (read-only).`);
    return 0;
  }
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`vault-sync-operator: invalid configuration: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  let supervisor: Supervisor | undefined;
  let stopping = false;
  const stop = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'shutting down: draining in-flight work');
    // A drain that hangs must not keep the pod in Terminating forever.
    setTimeout(() => process.exit(code || 1), 60_000).unref();
    (supervisor?.stop() ?? Promise.resolve()).then(
      () => process.exit(code),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  try {
    supervisor = await startSupervisor(config, log, { onFatal: (reason) => stop(reason, 1) });
    await supervisor.started;
  } catch (error) {
    log.fatal({ err: error instanceof Error ? error.message : String(error) }, 'could not start');
    stop('could not start', 1);
    return await new Promise<number>(() => undefined);
  }
  return await new Promise<number>(() => undefined); // runs until a signal
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`vault-sync-operator: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
