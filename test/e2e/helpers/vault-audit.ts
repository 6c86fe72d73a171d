// Counts real requests that reached OpenBao, from its file audit device (one JSON line per request).
import { readFileSync, statSync } from 'node:fs';
import { loadTestEnv } from './env.js';

export interface AuditedRequest {
  path: string;
  operation: string;
  /** Made with the root token: the test itself, not the operator. */
  byRoot: boolean;
  /** The token's display name (not HMAC'd in the audit log): tells one operator's requests from another's. */
  displayName?: string;
  /** When OpenBao logged it: ms since the epoch on Vault's clock, sub-millisecond digits kept. */
  at: number;
  /** The client's address as Vault saw it (tells apart proxies that connect from different loopback addresses). */
  remoteAddress?: string;
}

/** An audit entry's RFC 3339 time (nanoseconds) in ms since the epoch, keeping the digits Date.parse drops. */
function auditTime(time: string | undefined): number {
  if (!time) return NaN;
  const fraction = /\.(\d+)Z$/.exec(time);
  return Date.parse(time.replace(/\.\d+Z$/, 'Z')) + (fraction ? Number(`0.${fraction[1]}`) * 1000 : 0);
}

/** A mark in the audit log; `requestsSince(mark)` returns what was logged after it. */
export function auditMark(): number {
  return statSync(loadTestEnv().vaultAuditLogPath).size;
}

export function requestsSince(mark: number, pathFilter: (path: string) => boolean = () => true): AuditedRequest[] {
  const text = readFileSync(loadTestEnv().vaultAuditLogPath).subarray(mark).toString('utf8');
  const requests: AuditedRequest[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let entry: { time?: string; type?: string; auth?: { policies?: string[]; display_name?: string }; request?: { path?: string; operation?: string; remote_address?: string } };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a line still being written
    }
    if (entry.type !== 'request' || !entry.request?.path) continue;
    if (pathFilter(entry.request.path)) {
      requests.push({ path: entry.request.path, operation: entry.request.operation ?? '', byRoot: entry.auth?.policies?.includes('root') ?? false, displayName: entry.auth?.display_name, at: auditTime(entry.time), remoteAddress: entry.request.remote_address });
    }
  }
  return requests;
}

/** The operator's requests (not the test's root-token ones) on KV paths below `secret/<prefix>` (data, metadata, detailed listings). */
export function kvRequestsSince(mark: number, prefix: string): AuditedRequest[] {
  return requestsSince(mark, (path) => path.startsWith(`secret/data/${prefix}`) || path.startsWith(`secret/metadata/${prefix}`) || path.startsWith(`secret/detailed-metadata/${prefix}`)).filter((r) => !r.byRoot);
}

export const isWrite = (r: AuditedRequest) => r.operation === 'create' || r.operation === 'update' || r.operation === 'delete';
export const isDataRead = (r: AuditedRequest) => r.operation === 'read' && r.path.startsWith('secret/data/');
