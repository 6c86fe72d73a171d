// fast-check generators shared by the property tests of the path grammar, the transport and tenancy.
import fc from 'fast-check';

/** Pieces built to hit the edges: grammar characters, separators, dots, escapes, API segments, unicode look-alikes and invisibles. */
export const pathPieces = fc.oneof(
  fc.constantFrom('secret', 'kv', 'sys', 'auth', 'data', 'metadata', 'destroy', 'config', 'team-a', 'team-b', '.', '..', '/', '//', '\\', '%', '%2e', '%2E%2E', '%2f', '?', '#', '*', ' ', '\t', '\n', '\u0085', '\u202E', '\u200B', '\uFF0F', '\u2024', '\u0000', 'é', '{namespace}'),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,8}$/),
);

/** Arbitrary strings made of those pieces. */
export const hostilePath = fc.array(pathPieces, { maxLength: 14 }).map((parts) => parts.join(''));

/** Mostly-valid paths with one hostile piece at the end: where the interesting acceptances are. */
export const nearlyValidPath = fc
  .tuple(fc.constantFrom('secret', 'kv', 'sys'), fc.array(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,8}$/), fc.constantFrom('data', 'metadata', '.', '..')), { minLength: 1, maxLength: 5 }), pathPieces)
  .map(([mount, segments, extra]) => `${mount}/${segments.join('/')}${extra}`);
