/**
 * The one order in which output lists paths (plan, VaultSync status, Events, condition messages): the byte
 * order of their UTF-8 form. It does not depend on the locale, on the order Vault answered in or on the
 * order a record was written, so the same state always prints the same text.
 */

/**
 * Compares two strings as their UTF-8 bytes would compare. UTF-8 byte order is code point order, so this
 * walks code points instead of encoding (no allocation); plain `<` compares UTF-16 code units, which puts
 * U+E000..U+FFFF after the astral planes.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return i < a.length ? 1 : j < b.length ? -1 : 0;
}

/** A sorted copy (stable: items with the same path keep their order), by the formatted path `pathOf` gives. */
export function sortedByPath<T>(items: readonly T[], pathOf: (item: T) => string): T[] {
  return [...items].sort((x, y) => compareUtf8(pathOf(x), pathOf(y)));
}

/** A sorted copy of texts that begin with a path (or are one). */
export function sortedTexts(texts: readonly string[]): string[] {
  return [...texts].sort(compareUtf8);
}
