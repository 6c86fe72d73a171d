// Tenancy: a namespace writes only under its granted prefixes, compared segment by segment on the parsed
// path. Property tests are seeded and reproducible.
import fc from 'fast-check';
import { allowedPrefixes, checkTenancy, formatPrefix, isInside, parsePrefix } from '../../src/vault/tenancy.js';
import { kvApiPath, parseVaultPath, type KvPath } from '../../src/vault/path.js';
import { requestPathProblem } from '../../src/vault/transport.js';
import { hostilePath, nearlyValidPath } from './arbitraries.js';

const SEED = 8_2026_11;
const mounts = ['secret', 'kv'];
const parse = (text: string): KvPath => {
  const result = parseVaultPath(text, mounts);
  if (!result.ok) throw new Error(result.reason);
  return result.path;
};
const template = 'secret/{namespace}/';

describe('checkTenancy: a namespace writes only under its own prefix unless a policy grants more', () => {
  const grants = [
    { name: 'shared', namespaces: ['team-*'], allowedPathPrefixes: ['secret/shared/'] },
    { name: 'platform', namespaces: ['platform'], allowedPathPrefixes: ['secret/data/infra/{namespace}'] },
    { name: 'apps', namespaces: ['apps-ns'], allowedPathPrefixes: ['secret/apps/data/'] },
  ];
  test.each([
    { reason: 'its own prefix', ns: 'team-a', p: 'secret/team-a/app', ok: true },
    { reason: 'exactly its own prefix', ns: 'team-a', p: 'secret/team-a', ok: true },
    { reason: 'a neighbour whose name starts the same (whole segments only)', ns: 'team', p: 'secret/team-a/app', ok: false },
    { reason: 'another namespace', ns: 'team-a', p: 'secret/team-b/app', ok: false },
    { reason: 'a prefix granted by a wildcard policy', ns: 'team-z', p: 'secret/shared/x', ok: true },
    { reason: 'a policy for another namespace does not apply', ns: 'other', p: 'secret/shared/x', ok: false },
    { reason: 'a granted prefix given in the data/ form with {namespace}', ns: 'platform', p: 'secret/infra/platform/db', ok: true },
    { reason: 'namespace "data": its prefix is the key segment data, not the whole mount', ns: 'data', p: 'secret/anything', ok: false },
    { reason: 'namespace "data": another tenant written in the API form', ns: 'data', p: 'secret/data/team-b/x', ok: false },
    { reason: 'namespace "data": its own key segment (API form plus the segment)', ns: 'data', p: 'secret/data/data/app', ok: true },
    { reason: 'a grant of secret/apps/data/ does not grant secret/apps/', ns: 'apps-ns', p: 'secret/apps/x', ok: false },
    { reason: 'a grant of secret/apps/data/ grants secret/apps/data/x', ns: 'apps-ns', p: 'secret/apps/data/x', ok: true },
    { reason: 'another mount, same key', ns: 'team-a', p: 'kv/team-a/app', ok: false },
  ])('$reason → $ok', ({ ns, p, ok }) => {
    expect(checkTenancy(parse(p), ns, template, grants).ok).toBe(ok);
  });

  test('the refusal names the path, the namespace, what it may write to, and the way out', () => {
    const result = checkTenancy(parse('secret/team-b/app'), 'team-a', template, grants);
    expect(result).toEqual({ ok: false, reason: 'the Vault path "secret/team-b/app" is outside what namespace "team-a" may write to (secret/team-a/, secret/shared/); a cluster admin can grant more with a VaultSyncPolicy' });
  });

  test('a prefix that is not in the grammar grants nothing, and the refusal says it was ignored', () => {
    const bad = [{ name: 'sloppy', namespaces: ['team-a'], allowedPathPrefixes: ['secret/team-b\\..\\x/', 'secret/%2e%2e/'] }];
    const result = checkTenancy(parse('secret/team-b/app'), 'team-a', template, bad);
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('ignored: VaultSyncPolicy "sloppy": the prefix "secret/team-b\\\\..\\\\x/"') });
    expect(allowedPrefixes('team-a', template, bad).prefixes.map(formatPrefix)).toEqual(['secret/team-a/']);
  });

  test('no template ("none") lifts the restriction', () => {
    expect(checkTenancy(parse('secret/anything'), 'x', undefined, []).ok).toBe(true);
    expect(allowedPrefixes('x', undefined, []).prefixes).toEqual([]);
  });
});

describe('parsePrefix: templates and policy prefixes use the path grammar; {namespace} is a literal segment', () => {
  test.each([
    { text: 'secret/{namespace}/', ns: 'data', mount: 'secret', key: ['data'] },
    { text: 'secret/{namespace}/', ns: 'metadata', mount: 'secret', key: ['metadata'] },
    { text: 'secret/data/{namespace}', ns: 'team-a', mount: 'secret', key: ['team-a'] },
    { text: 'secret/data/', ns: 'x', mount: 'secret', key: [] },
    { text: 'secret/apps/data/', ns: 'x', mount: 'secret', key: ['apps', 'data'] },
    { text: 'secret/tenants/t-{namespace}/', ns: 'a', mount: 'secret', key: ['tenants', 't-a'] },
  ])('$text for $ns → $mount / $key', ({ text, ns, mount, key }) => {
    expect(parsePrefix(text, ns)).toEqual({ ok: true, prefix: { mount, key } });
  });

  test.each([
    { text: 'secret/metadata/', says: 'KV API endpoint' },
    { text: '{namespace}/x', says: 'in the mount' },
    { text: 'secret/../x', says: 'path traversal' },
    { text: '/secret/x', says: 'starts with "/"' },
  ])('refuses $text', ({ text, says }) => {
    expect(parsePrefix(text, 'ns')).toEqual({ ok: false, reason: expect.stringContaining(says) });
  });
});

describe('property: no (namespace, path, grants) triple lets a path outside the granted prefixes through', () => {
  const namespace = fc.oneof(fc.constantFrom('data', 'metadata', 'team-a', 'team-b', 'secret', 'sys', 'x'), fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/));
  const prefixText = fc.oneof(
    fc.constantFrom('secret/{namespace}/', 'secret/data/{namespace}/', 'secret/apps/data/', 'secret/data/', 'kv/{namespace}', 'secret/shared/', 'secret/{namespace}/data/', 'sys/', 'secret/metadata/'),
    hostilePath,
    nearlyValidPath,
  );
  const grant = fc.record({ name: fc.constantFrom('g1', 'g2'), namespaces: fc.array(fc.constantFrom('*', 'team-*', 'data', 'team-a', 'x*'), { maxLength: 3 }), allowedPathPrefixes: fc.array(prefixText, { maxLength: 3 }) });

  test('accepted ⇒ the path is inside a prefix granted to that namespace, compared segment by segment', () => {
    let accepted = 0;
    fc.assert(
      fc.property(namespace, fc.oneof(nearlyValidPath, hostilePath, fc.constantFrom('secret/data/data/x', 'secret/data/x', 'secret/apps/x', 'secret/apps/data/x')), fc.constantFrom(template, 'secret/data/{namespace}/'), fc.array(grant, { maxLength: 3 }), (ns, raw, tmpl, grants) => {
        const parsed = parseVaultPath(raw, mounts);
        if (!parsed.ok) return true;
        const decision = checkTenancy(parsed.path, ns, tmpl, grants);
        if (!decision.ok) return true;
        accepted++;
        // An independent statement of the rule: the path's segments start with the segments of one prefix
        // the namespace was granted, where {namespace} is exactly one literal segment.
        const granted = [tmpl, ...grants.filter((g) => g.namespaces.some((p) => p === '*' || p === ns || (p.endsWith('*') && ns.startsWith(p.slice(0, -1))))).flatMap((g) => g.allowedPathPrefixes)];
        const pathSegments = [parsed.path.mount, ...parsed.path.key.split('/')];
        return granted.some((text) => {
          const prefix = parsePrefix(text, ns);
          if (!prefix.ok) return false;
          const segments = [prefix.prefix.mount, ...prefix.prefix.key];
          return segments.every((s, i) => pathSegments[i] === s) && isInside(parsed.path, prefix.prefix);
        });
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    expect(accepted).toBeGreaterThan(200);
  });

  test('the default template alone: a namespace reaches exactly secret/<namespace>/…, whatever its name', () => {
    fc.assert(
      fc.property(namespace, fc.oneof(nearlyValidPath, fc.constantFrom('secret/data/data/x', 'secret/data/x')), (ns, raw) => {
        const parsed = parseVaultPath(raw, mounts);
        if (!parsed.ok) return true;
        const inside = parsed.path.mount === 'secret' && parsed.path.key.split('/')[0] === ns;
        return checkTenancy(parsed.path, ns, template, []).ok === inside;
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });

  test('the whole chain: parsed, then allowed by tenancy ⇒ the request path starts with <mount>/data/<namespace>/ and is canonical', () => {
    let accepted = 0;
    fc.assert(
      fc.property(namespace.chain((n) => fc.tuple(fc.constant(n), fc.oneof(nearlyValidPath, hostilePath, fc.constantFrom(`secret/${n}/app`, `secret/data/${n}/x`, `secret/data/${n}/x\\..\\..\\b`, `secret/${n}/../b`, `secret/data/data/${n}`), fc.tuple(nearlyValidPath).map(([p]) => `secret/${n}/${p}`)))), ([ns, raw]) => {
        const parsed = parseVaultPath(raw, mounts);
        if (!parsed.ok || !checkTenancy(parsed.path, ns, template, []).ok) return true;
        accepted++;
        const wire = kvApiPath(parsed.path, 'data');
        return (wire === `secret/data/${ns}` || wire.startsWith(`secret/data/${ns}/`)) && requestPathProblem(`/v1/${wire}`) === undefined;
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    expect(accepted).toBeGreaterThan(1_000);
  });
});
