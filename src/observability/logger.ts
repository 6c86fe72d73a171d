import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Structured JSON logs. Nothing here ever receives a secret value: the code passes names, paths and
 * hashes only; the redact list is a second line of defence for fields that could carry one.
 */
export function createLogger(level: string, name = 'vault-sync-operator', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    redact: { paths: ['data', '*.data', 'token', '*.token', 'jwt', '*.jwt', 'secret_id', '*.secret_id', 'headers'], censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return destination ? pino(options, destination) : pino(options);
}
