import { InputLimits } from '../vault/path-grammar.js';
import { sortedTexts } from '../vault/path-order.js';

/** Items one message names before "…and N more". */
export const MAX_LISTED = 20;

/**
 * Names in a message (paths, or problems that each begin with their path), sorted in byte order and at most
 * MAX_LISTED of them ("…and N more"): a message has a bound, and reads the same whatever order Vault
 * answered in. The prefix is not sorted.
 */
export function boundedList(items: readonly string[], prefix = ''): string {
  const shown = sortedTexts(items).slice(0, MAX_LISTED).join('; ');
  return prefix + (items.length > MAX_LISTED ? `${shown}; …and ${items.length - MAX_LISTED} more` : shown);
}

/**
 * Every condition and Event message goes through here (vaultsync-store.ts, cluster.ts createEvent), so a
 * message is bounded whoever wrote it. A message made of problems joined by "; " keeps as many whole
 * problems as fit and ends with "…and N more"; a single long problem is cut (never inside a surrogate pair)
 * and says how much was left out.
 */
export function boundMessage(message: string, max: number = InputLimits.maxMessageLength): string {
  if (message.length <= max) return message;
  const parts = message.split('; ');
  const kept: string[] = [];
  let length = 0;
  for (const part of parts) {
    const suffix = `; …and ${parts.length - kept.length - 1} more`;
    const added = (kept.length > 0 ? 2 : 0) + part.length;
    if (length + added + suffix.length > max) break;
    kept.push(part);
    length += added;
  }
  if (kept.length > 0) return `${kept.join('; ')}; …and ${parts.length - kept.length} more`;
  const note = `…(${message.length} characters)`;
  let cut = max - note.length;
  const code = message.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return message.slice(0, Math.max(0, cut)) + note;
}
