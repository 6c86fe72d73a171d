import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The bearer token of the operations port: what the token file must hold, and how an Authorization header
 * is read. Pure. The server fails closed: a file that is blank, unreadable or not a token refuses every
 * protected request (it never falls back to "no token" nor to the last token it read).
 */

/** RFC 6750 b64token plus any other visible ASCII: what an HTTP header can carry as it is. */
const TOKEN = /^[\x21-\x7e]+$/;
/** Trailing or leading blanks of a file as editors and `echo` leave them; ASCII only (U+00A0 is not blank). */
const ASCII_BLANKS = /^[ \t\r\n]+|[ \t\r\n]+$/g;
/** Longest token accepted from the file (a header is at most 16 KiB anyway). */
export const MAX_TOKEN_LENGTH = 4096;

export type TokenFileContent = { ok: true; token: string } | { ok: false; reason: string };

/** The token a file holds, or why it holds none. The reason names no byte of the content. */
export function tokenFromFile(content: string): TokenFileContent {
  const token = content.replace(ASCII_BLANKS, '');
  if (token === '') return { ok: false, reason: 'is blank' };
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: `holds more than ${MAX_TOKEN_LENGTH} characters` };
  if (!TOKEN.test(token)) return { ok: false, reason: 'holds characters other than visible ASCII (a token is one word: letters, digits and -._~+/=)' };
  return { ok: true, token };
}

/**
 * The credential of an `Authorization: Bearer <token>` header, or undefined. The scheme is matched without
 * regard to case (RFC 9110 §11.1); only ASCII space or tab separate it from the token, and only those are
 * stripped: a Unicode space (U+00A0, U+2000…) is part of the credential, so it can never make a blank one.
 */
export function bearerCredential(header: string | undefined): string | undefined {
  const match = /^bearer[ \t]+(.*?)[ \t]*$/is.exec(header ?? '');
  return match && match[1] !== '' ? match[1] : undefined;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * A check of credentials against one token in constant time: both sides are hashed first, so the comparison
 * takes as long whatever was sent (and however long it was).
 */
export function tokenMatcher(token: string): (credential: string | undefined) => boolean {
  const expected = digest(token);
  return (credential) => {
    // A missing credential is hashed too, so the time does not say whether a header was sent.
    const equal = timingSafeEqual(digest(credential ?? ''), expected);
    return credential !== undefined && equal;
  };
}
