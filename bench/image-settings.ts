// The Node settings the image runs the operator with, read from the Dockerfile's runtime stage (its ENV
// instruction), so that the bench's `image` variant cannot drift from what ships.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Pure: the variables an ENV instruction of the last stage of `dockerfile` sets (KEY=VALUE form). */
export function runtimeEnvOf(dockerfile: string): Map<string, string> {
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ') // continuation lines
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const lastFrom = instructions.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true);
  if (lastFrom < 0) throw new Error('the Dockerfile has no FROM instruction');
  const env = new Map<string, string>();
  for (const line of instructions.slice(lastFrom + 1)) {
    const match = /^ENV\s+(.*)$/i.exec(line);
    if (!match) continue;
    for (const pair of match[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"\\]|\\.)*"|\S*)/g)) {
      const raw = pair[2];
      env.set(pair[1], raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
    }
  }
  return env;
}

/** The image's NODE_OPTIONS and MALLOC_ARENA_MAX, as environment variables for a child process. */
export function imageNodeSettings(repoRoot: string): Record<string, string> {
  const env = runtimeEnvOf(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const picked: Record<string, string> = {};
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    const value = env.get(name);
    if (value === undefined) throw new Error(`the Dockerfile's runtime stage sets no ${name}: the bench's image variant would not be the image`);
    picked[name] = value;
  }
  return picked;
}
