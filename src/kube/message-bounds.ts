import { InputLimits } from '../vault/path-grammar.js';

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
