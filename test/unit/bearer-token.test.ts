// What the bearer-token file must hold and how an Authorization header is read: pure, so every hostile
// spelling can be tried here; test/unit/ops-server.test.ts and the e2e test try them on the real server.
import fc from 'fast-check';
import { bearerCredential, MAX_TOKEN_LENGTH, tokenFromFile, tokenMatcher } from '../../src/observability/bearer-token.js';

describe('the token file', () => {
  test.each([
    { content: 's3cret\n', token: 's3cret', why: 'a trailing newline (echo, editors) is not part of the token' },
    { content: '\r\n\t s3cret \t\r\n', token: 's3cret', why: 'ASCII blanks around it are dropped' },
    { content: 'a.b_c-d~e+f/g==', token: 'a.b_c-d~e+f/g==', why: 'the b64token alphabet' },
  ])('$why', ({ content, token }) => {
    expect(tokenFromFile(content)).toEqual({ ok: true, token });
  });

  test.each([
    { content: '', says: 'is blank', why: 'an empty file' },
    { content: '\n', says: 'is blank', why: 'a blank line (a rotation gone wrong)' },
    { content: ' \t\r\n', says: 'is blank', why: 'ASCII blanks only' },
    { content: '\u00a0\u00a0\n', says: 'visible ASCII', why: 'no-break spaces are not a token, and not trimmed into an empty one' },
    { content: '\u2003tok', says: 'visible ASCII', why: 'a Unicode space before a token' },
    { content: 'two words', says: 'visible ASCII', why: 'a space inside' },
    { content: 'x'.repeat(MAX_TOKEN_LENGTH + 1), says: `more than ${MAX_TOKEN_LENGTH}`, why: 'an absurd length' },
  ])('refused: $why', ({ content, says }) => {
    const held = tokenFromFile(content);
    expect(held.ok).toBe(false);
    expect(!held.ok && held.reason).toContain(says);
  });

  test('property: a refusal never quotes the content (its reason is one of three fixed sentences)', () => {
    // Asserting "the reason does not contain the content" is vacuous or wrong for short or blank content (every
    // reason contains ''); a reason drawn from a fixed set cannot carry any byte of the content.
    const reasons = new Set(['is blank', `holds more than ${MAX_TOKEN_LENGTH} characters`, tokenFromFile('\u00a0').ok ? '' : (tokenFromFile('\u00a0') as { reason: string }).reason]);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 5000 }), (content) => {
        const held = tokenFromFile(content);
        if (!held.ok) expect(reasons.has(held.reason)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the Authorization header', () => {
  test.each([
    { header: 'Bearer tok', credential: 'tok', why: 'one space' },
    { header: 'bearer tok', credential: 'tok', why: 'the scheme in any case' },
    { header: 'BEARER\ttok', credential: 'tok', why: 'a tab separates too' },
    { header: 'Bearer  \t tok \t', credential: 'tok', why: 'several ASCII blanks, and trailing ones' },
  ])('read: $why', ({ header, credential }) => {
    expect(bearerCredential(header)).toBe(credential);
  });

  test.each([
    { header: undefined, why: 'no header' },
    { header: 'Bearer', why: 'the scheme alone' },
    { header: 'Bearer ', why: 'the scheme and a space' },
    { header: 'Bearer \t ', why: 'the scheme and blanks' },
    { header: 'Bearertok', why: 'no separator' },
    { header: 'Bearer\u00a0tok', why: 'U+00A0 is not a separator' },
    { header: 'Basic dG9rOg==', why: 'another scheme' },
  ])('no credential: $why', ({ header }) => {
    expect(bearerCredential(header)).toBeUndefined();
  });

  test('Unicode spaces are kept in the credential, so they can never make a blank one', () => {
    expect(bearerCredential('Bearer \u00a0\u00a0')).toBe('\u00a0\u00a0');
    expect(bearerCredential('Bearer tok\u00a0')).toBe('tok\u00a0');
    expect(bearerCredential('Bearer \u2003tok')).toBe('\u2003tok');
  });
});

describe('the comparison', () => {
  const matches = tokenMatcher('s3cret');
  test('only the exact token matches', () => {
    expect([matches('s3cret'), matches('s3cre'), matches('s3cret '), matches('S3CRET'), matches(''), matches(undefined)]).toEqual([true, false, false, false, false, false]);
  });

  test('property: whatever header is sent, only "<scheme><ASCII blanks>token<ASCII blanks>" passes', () => {
    const blank = fc.constantFrom(' ', '\t');
    const separator = fc.array(fc.oneof(blank, fc.constantFrom('\u00a0', '\u2000', '\u3000', '\u200b', '\u0085', '')), { minLength: 0, maxLength: 3 }).map((a) => a.join(''));
    fc.assert(
      fc.property(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Bearer:', 'Token'), separator, fc.constantFrom('s3cret', 's3cret\u00a0', '\u00a0', '', 'other'), separator, (scheme, before, token, after) => {
        const header = `${scheme}${before}${token}${after}`;
        const exact = /^bearer$/i.test(scheme) && /^[ \t]+$/.test(before) && token === 's3cret' && /^[ \t]*$/.test(after);
        expect(matches(bearerCredential(header))).toBe(exact);
      }),
      { numRuns: 2_000 },
    );
  });
});
