// The bench's `image` variant runs the operator with the Node settings of the image, read from the Dockerfile:
// the parse takes the last stage's ENV only, with continuation lines and quoted values.
import { readFileSync } from 'node:fs';
import { imageNodeSettings, runtimeEnvOf } from '../../bench/image-settings.js';

describe('the image settings the start-up bench runs the operator with', () => {
  test("the repository's Dockerfile: the runtime stage's NODE_OPTIONS and MALLOC_ARENA_MAX", () => {
    const env = runtimeEnvOf(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'));
    expect(env.get('MALLOC_ARENA_MAX')).toBe('2');
    expect(env.get('NODE_OPTIONS')?.split(/\s+/)).toContain('--max-semi-space-size=2');
    expect(imageNodeSettings(new URL('../..', import.meta.url).pathname)).toEqual({ NODE_OPTIONS: env.get('NODE_OPTIONS'), MALLOC_ARENA_MAX: '2' });
  });

  test('only the last stage counts; continuation lines, comments and quoted values are read as Docker does', () => {
    const dockerfile = [
      'FROM build-base AS build',
      'ENV NODE_OPTIONS=--from-the-build-stage MALLOC_ARENA_MAX=8',
      'FROM runtime-base',
      '# ENV NODE_OPTIONS=--commented-out',
      'ENV NODE_ENV=production \\',
      '    NODE_OPTIONS="--max-semi-space-size=2 --max-old-space-size=256" \\',
      '    MALLOC_ARENA_MAX=2',
      'CMD ["main.js"]',
    ].join('\n');
    expect([...runtimeEnvOf(dockerfile).entries()]).toEqual([
      ['NODE_ENV', 'production'],
      ['NODE_OPTIONS', '--max-semi-space-size=2 --max-old-space-size=256'],
      ['MALLOC_ARENA_MAX', '2'],
    ]);
  });

  test('a Dockerfile without a FROM is an error, not an empty environment', () => {
    expect(() => runtimeEnvOf('ENV A=1')).toThrow('no FROM instruction');
  });
});
