import fc from 'fast-check';
import { ListSplitter } from '../../src/kube/list-splitter.js';

/** Feeds `json` cut at the given offsets; returns the parsed items and the skeleton. */
function split(json: string, cuts: number[], limits?: ConstructorParameters<typeof ListSplitter>[1]) {
  const bytes = Buffer.from(json, 'utf8');
  const items: unknown[] = [];
  const splitter = new ListSplitter((item) => items.push(JSON.parse(item.toString('utf8'))), limits);
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    splitter.push(bytes.subarray(from, cut));
    from = cut;
  }
  splitter.push(bytes.subarray(from));
  return { items, skeleton: splitter.end() };
}

// Strings that stress the scanner: quotes, backslash runs, brackets and multi-byte characters inside strings.
const tricky = fc.oneof(fc.string(), fc.constantFrom('"', '\\', '\\\\"', '\\"', '{[', ']}', '"items":[', 'é€😀', ''), fc.base64String());
const item = fc.record({
  metadata: fc.record({ name: tricky, namespace: tricky, resourceVersion: fc.nat().map(String), annotations: fc.dictionary(tricky, tricky, { maxKeys: 3 }) }),
  data: fc.dictionary(tricky, fc.base64String({ maxLength: 200 }), { maxKeys: 4 }),
  nested: fc.array(fc.oneof(fc.integer(), tricky, fc.constant(null), fc.array(tricky, { maxLength: 2 })), { maxLength: 3 }),
});

describe('ListSplitter: the items of a list in chunks, one at a time', () => {
  test('any list cut anywhere gives back exactly its items, in order, and its metadata', () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 8 }), tricky, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (items, cont, cuts, pretty) => {
        const list = { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '42', continue: cont }, items };
        const json = pretty ? JSON.stringify(list, null, 2) : JSON.stringify(list);
        const out = split(json, cuts);
        expect(out.items).toEqual(items);
        expect(out.skeleton).toEqual({ ...list, items: [] });
      }),
      { numRuns: 400 },
    );
  });

  test('items are handed over as they complete, before the list ends', () => {
    const seen: string[] = [];
    const splitter = new ListSplitter((b) => seen.push(JSON.parse(b.toString()).n));
    splitter.push(Buffer.from('{"metadata":{"resourceVersion":"1"},"items":[{"n":"a"},{"n":'));
    expect(seen).toEqual(['a']);
    splitter.push(Buffer.from('"b"}]}'));
    expect(seen).toEqual(['a', 'b']);
    expect(splitter.end()).toEqual({ metadata: { resourceVersion: '1' }, items: [] });
  });

  test('the head (metadata with the continue token) is told once, as the items begin, before the first item', () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 4 }), tricky, fc.array(fc.nat(), { maxLength: 8 }), (items, cont, cuts) => {
        const bytes = Buffer.from(JSON.stringify({ kind: 'SecretList', metadata: { resourceVersion: '42', continue: cont }, items }), 'utf8');
        const told: string[] = [];
        const splitter = new ListSplitter(() => told.push('item'), undefined, (head) => told.push(JSON.stringify(head)));
        let from = 0;
        for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
          splitter.push(bytes.subarray(from, cut));
          from = cut;
        }
        splitter.push(bytes.subarray(from));
        expect(told).toEqual([JSON.stringify({ kind: 'SecretList', metadata: { resourceVersion: '42', continue: cont }, items: [] }), ...items.map(() => 'item')]);
      }),
      { numRuns: 200 },
    );
  });

  test('a list whose metadata follows its items has no head to tell before them', () => {
    const heads: unknown[] = [];
    const splitter = new ListSplitter(() => {}, undefined, (head) => heads.push(head));
    splitter.push(Buffer.from('{"items":[{"a":1}],"metadata":{"continue":"c"}}'));
    expect(heads).toEqual([{ items: [] }]); // told without a continue token: the caller asks after the page
    expect(splitter.end()).toEqual({ items: [], metadata: { continue: 'c' } });
  });

  test('"items" elsewhere (a key inside metadata, a string value) is not taken for the list of items', () => {
    const json = JSON.stringify({ metadata: { items: [{ x: 1 }] }, kind: 'items', items: [{ y: 2 }] });
    expect(split(json, [5, 17]).items).toEqual([{ y: 2 }]);
  });

  test('an item above the bound fails the list instead of growing without limit', () => {
    const json = JSON.stringify({ items: [{ v: 'x'.repeat(100) }] });
    expect(() => split(json, [10, 20, 30], { maxItemBytes: 64, maxSkeletonBytes: 1024 })).toThrow('list item larger than 64 bytes');
  });

  test('metadata above its bound fails the list', () => {
    const json = JSON.stringify({ metadata: { continue: 'c'.repeat(200) }, items: [] });
    expect(() => split(json, [], { maxItemBytes: 64, maxSkeletonBytes: 100 })).toThrow('list metadata larger than 100 bytes');
  });

  test('a truncated list is an error, not a short list', () => {
    const json = JSON.stringify({ metadata: {}, items: [{ a: 1 }, { b: 2 }] });
    expect(() => split(json.slice(0, -3), [])).toThrow('truncated list');
  });

  test('an item that is not an object is an error', () => {
    expect(() => split('{"items":[1]}', [])).toThrow('not an object');
    expect(() => split('{"items":["s"]}', [])).toThrow('not an object');
  });
});
