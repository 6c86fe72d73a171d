// The Vault path grammar (src/vault/path-grammar.ts), applied by the one parser (src/vault/path.ts): what is
// accepted is byte for byte what is shown and what is sent. Property tests are seeded: a failure prints the
// seed and the shrunk counterexample, and re-running reproduces it.
import fc from 'fast-check';
import { childPath, formatPath, kvApiPath, parseKvPathLoose, parseVaultPath, quoteForMessage, splitPath } from '../../src/vault/path.js';
import { VaultPathGrammar } from '../../src/vault/path-grammar.js';
import { requestPathProblem } from '../../src/vault/transport.js';
import { hostilePath, nearlyValidPath } from './arbitraries.js';

const SEED = 8_2026_11;
const mounts = ['secret', 'kv'];

describe('parseVaultPath: the vault-sync.io/path annotation', () => {
  test.each([
    { reason: 'the short form', raw: 'secret/my-app', key: 'my-app' },
    { reason: 'the KV v2 API form names the same place', raw: 'secret/data/my-app', key: 'my-app' },
    { reason: 'nested keys are kept', raw: 'secret/team/app', key: 'team/app' },
    { reason: 'a trailing slash is tolerated', raw: 'secret/team/app/', key: 'team/app' },
    { reason: 'surrounding ASCII whitespace is tolerated', raw: ' secret/team/app\n', key: 'team/app' },
    { reason: 'dots, underscores and dashes inside a segment', raw: 'secret/a.b_c-d/..x', key: 'a.b_c-d/..x' },
    { reason: 'a key segment named data below the API form', raw: 'secret/data/data/x', key: 'data/x' },
    { reason: 'an API segment name deeper in the key', raw: 'secret/app/metadata', key: 'app/metadata' },
  ])('accepts $reason', ({ raw, key }) => {
    expect(parseVaultPath(raw, mounts)).toEqual({ ok: true, path: { mount: 'secret', key } });
  });

  test.each([
    { reason: 'an empty path', raw: '  ', says: 'empty' },
    { reason: 'a missing annotation', raw: undefined, says: 'empty' },
    { reason: 'traversal with ..', raw: 'secret/team/../other', says: 'path traversal' },
    { reason: 'a . segment', raw: 'secret/./x', says: 'path traversal' },
    { reason: 'traversal with backslashes', raw: 'secret/team-a/x\\..\\..\\team-b/p', says: 'the character "\\\\"' },
    { reason: 'percent-encoded dots', raw: 'secret/team-a/%2e%2e/team-b', says: 'the character "%"' },
    { reason: 'a fullwidth solidus look-alike', raw: 'secret/team-a\uFF0F..\uFF0Fteam-b', says: '\\u{FF0F}' },
    { reason: 'a next-line character (U+0085)', raw: 'secret/team-a/a\u0085b', says: '\\u{0085}' },
    { reason: 'a right-to-left override (U+202E)', raw: 'secret/team-a/a\u202Eb', says: '\\u{202E}' },
    { reason: 'a zero-width space (U+200B)', raw: 'secret/team-a/a\u200Bb', says: '\\u{200B}' },
    { reason: 'an empty segment', raw: 'secret//x', says: 'empty segment' },
    { reason: 'a leading slash', raw: '/secret/x', says: 'must not start' },
    { reason: 'the sys/ backend', raw: 'sys/policies/acl/x', says: 'allowed KV mount' },
    { reason: 'the auth/ backend', raw: 'auth/token/create', says: 'allowed KV mount' },
    { reason: 'another mount', raw: 'kv-other/x', says: 'allowed KV mount' },
    { reason: 'the mount itself', raw: 'secret', says: 'mount itself' },
    { reason: 'the data prefix with nothing after it', raw: 'secret/data', says: 'mount itself' },
    { reason: 'the metadata endpoint', raw: 'secret/metadata/x', says: 'KV API endpoint "metadata/"' },
    { reason: 'the destroy endpoint', raw: 'secret/destroy/x', says: 'KV API endpoint "destroy/"' },
    { reason: 'the engine config', raw: 'secret/config', says: 'KV API endpoint "config/"' },
    { reason: 'query characters', raw: 'secret/x?list=true', says: 'the character "?"' },
    { reason: 'a policy glob', raw: 'secret/x*', says: 'the character "*"' },
    { reason: 'a segment over the limit', raw: `secret/${'a'.repeat(254)}`, says: 'longer than 253' },
    { reason: 'a path over the limit', raw: `secret/${'a/'.repeat(300)}x`, says: 'longer than 512' },
    { reason: 'too many segments', raw: `secret/${'a/'.repeat(40)}x`, says: 'more than 32 segments' },
  ])('refuses $reason, saying why', ({ raw, says }) => {
    const result = parseVaultPath(raw, mounts);
    expect(result).toEqual({ ok: false, reason: expect.stringContaining(says) });
  });

  test('a refusal quotes the input bounded and escaped: no raw control, bidi or zero-width character, at most 80 characters of it', () => {
    const hostile = 'secret/' + '\u202E\u0085\u200B\u0000'.repeat(5000);
    const result = parseVaultPath(hostile, mounts);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason.length).toBeLessThan(1200);
      expect(result.reason).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u200b\u202e]/);
      expect(result.reason).toContain('…(20007 characters)');
    }
  });

  test('quoteForMessage escapes every character outside printable ASCII and bounds the length', () => {
    expect(quoteForMessage('a"b\\c\u202E')).toBe('"a\\"b\\\\c\\u{202E}"');
    expect(quoteForMessage('x'.repeat(100))).toBe(`"${'x'.repeat(80)}…(100 characters)"`);
  });

  test('a child segment (auto-discovered Secret name) is held to the same grammar', () => {
    const parent = { mount: 'secret', key: 'team-a/app' };
    expect(childPath(parent, 'db.creds')).toEqual({ ok: true, path: { mount: 'secret', key: 'team-a/app/db.creds' } });
    expect(childPath(parent, '..')).toEqual({ ok: false, reason: expect.stringContaining('path traversal') });
    expect(childPath(parent, 'a/b')).toEqual({ ok: false, reason: expect.stringContaining('"/"') });
  });
});

describe('kvApiPath: the one builder of request paths', () => {
  test('KV v2 endpoints and KV v1 paths, from the segments', () => {
    const path = { mount: 'secret', key: 'team-a/app' };
    expect(kvApiPath(path, 'data')).toBe('secret/data/team-a/app');
    expect(kvApiPath(path, 'metadata')).toBe('secret/metadata/team-a/app');
    expect(kvApiPath(path, undefined)).toBe('secret/team-a/app');
  });

  test.each(['x\\..\\..\\b', '%2e%2e', '..', 'a//b', 'a?b', 'a\u202Eb'])('refuses a KvPath not built by the parser (key %j) instead of sending it', (key) => {
    expect(() => kvApiPath({ mount: 'secret', key }, 'data')).toThrow('not in canonical form');
  });
});

describe('requestPathProblem: the transport sends only canonical request paths', () => {
  test.each(['/v1/secret/data/a\\..\\b', '/v1/secret/%2e%2e/sys', '/v1/secret/%2E%2E/sys', '/v1/secret/../sys/policy', '/v1/./secret', '/v1//secret', '/v1/secret/x?list=1', '/v1/secret/x#f', '/v1/secret/é'])('refuses %j', (path) => {
    expect(requestPathProblem(path)).toBeDefined();
  });
  test('accepts a canonical path', () => {
    expect(requestPathProblem('/v1/secret/data/team-a/app.v2')).toBeUndefined();
  });
});

describe('property: accepted ⇒ canonical, inside an allowed mount, and sent byte for byte', () => {
  const segment = new RegExp(VaultPathGrammar.segmentPattern);

  test('every accepted path is made of grammar segments under an allowed mount, and its request path is the validated path', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(hostilePath, nearlyValidPath), (raw) => {
        const result = parseVaultPath(raw, mounts);
        if (result.ok) accepted++;
        if (!result.ok) {
          // Refusals are bounded and carry no raw control/bidi/zero-width character.
          return result.reason.length < 1200 && !/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/.test(result.reason);
        }
        const { mount, key } = result.path;
        const segments = key.split('/');
        const wire = kvApiPath(result.path, 'data');
        return (
          mounts.includes(mount) &&
          segments.every((s) => segment.test(s) && s !== '.' && s !== '..') &&
          formatPath(result.path).length <= VaultPathGrammar.maxPathLength + 5 &&
          wire === [mount, 'data', ...segments].join('/') && // the request path is the validated segments, verbatim
          requestPathProblem(`/v1/${wire}`) === undefined &&
          // what is shown (Events, status) parses back to the same place, by the annotation parser and the status reader
          JSON.stringify(parseVaultPath(formatPath(result.path), mounts)) === JSON.stringify(result) &&
          JSON.stringify(parseKvPathLoose(formatPath(result.path))) === JSON.stringify(result.path)
        );
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    expect(accepted).toBeGreaterThan(1_000); // the property is exercised on acceptances, not only refusals
  });

  test('splitPath never accepts a backslash, a percent sign, a dot segment or a non-ASCII character', () => {
    fc.assert(
      fc.property(hostilePath, (raw) => {
        const split = splitPath(raw);
        if (!split.ok) return true;
        return split.segments.every((s) => !/[\\%]/.test(s) && s !== '.' && s !== '..' && /^[\x21-\x7e]+$/.test(s));
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });
});
