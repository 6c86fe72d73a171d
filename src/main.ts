#!/usr/bin/env node
import { ConfigError, loadConfig, usage } from './config.js';
import { createLogger } from './observability/logger.js';
import { startOperator } from './operator.js';

/** Composition root: configuration, logger, operator; drain on SIGTERM. */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
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
  const operator = startOperator(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining in-flight work');
    operator.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await operator.ready;
  } catch (error) {
    log.fatal({ err: error instanceof Error ? error.message : String(error) }, 'could not start');
    await operator.stop().catch(() => undefined);
    return 1;
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
