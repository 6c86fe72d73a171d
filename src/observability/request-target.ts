/**
 * The request-target of an operations request, parsed without a URL parser (a URL parser throws on some
 * inputs and rewrites others: `\` to `/`, dot segments). Only the origin form (`/path?query`) is served;
 * anything else is a 400, decided here, before any other work.
 */
export const MAX_TARGET_LENGTH = 2048;

export type ParsedTarget =
  | { ok: true; path: string; query: URLSearchParams }
  | { ok: false; status: 400 | 414; reason: string };

// RFC 3986 pchar plus "/" and "?" (query): unreserved, sub-delims, ":", "@", and percent-escapes.
const ORIGIN_FORM = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$/;

export function parseRequestTarget(target: string | undefined): ParsedTarget {
  if (target === undefined || target === '') return { ok: false, status: 400, reason: 'missing request-target' };
  if (target.length > MAX_TARGET_LENGTH) return { ok: false, status: 414, reason: `request-target longer than ${MAX_TARGET_LENGTH} characters` };
  if (!ORIGIN_FORM.test(target)) return { ok: false, status: 400, reason: 'request-target must be a path (origin form) of URL characters' };
  const queryAt = target.indexOf('?');
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  // No percent-decoding of the path: every served path is plain ASCII, so an escaped one is simply unknown.
  const path = rawPath.replace(/\/+$/, '') || '/';
  // URLSearchParams decodes leniently and never throws (a bad escape stays as it is).
  const query = new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1));
  return { ok: true, path, query };
}
