// The arrows between the source folders point one way: config owns plain settings; src/vault (paths,
// tenancy prefixes, the port and the client) knows no cluster; src/kube knows no sync decision; only one file
// imports the Vault SDK. Read from the sources' own imports (type-only ones included) by TypeScript's parser.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const SRC = resolve(process.cwd(), 'src');

/** Every module a file imports or re-exports: repository-relative for our own files, the package name otherwise. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return ts.preProcessFile(text, true, false).importedFiles.map(({ fileName }) =>
    fileName.startsWith('.') ? relative(process.cwd(), resolve(join(file, '..'), fileName)).replace(/\.js$/, '.ts') : fileName,
  );
}

function sourcesIn(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? sourcesIn(join(folder, entry.name)) : entry.name.endsWith('.ts') ? [join(folder, entry.name)] : []))
    .sort();
}

/** `file -> import` for each import of the files in `folder` that starts with one of `forbidden`. */
function arrows(files: readonly string[], forbidden: readonly string[]): string[] {
  return files.flatMap((file) => importsOf(file).filter((target) => forbidden.some((prefix) => target.startsWith(prefix))).map((target) => `${relative(process.cwd(), file)} -> ${target}`));
}

describe('the layers of src/', () => {
  test('src/config.ts imports nothing of the operator but leaf parsers: it owns plain settings', () => {
    // A leaf parser (one that imports only Node's own modules) may be shared by config, which checks a
    // setting at start, and the module that reads the same input at run time: one parser, no upward arrow.
    const ours = importsOf(join(SRC, 'config.ts')).filter((target) => !target.startsWith('node:'));
    expect(ours).toEqual(['src/observability/bearer-token.ts']);
    for (const leaf of ours) expect(importsOf(resolve(process.cwd(), leaf)).filter((target) => !target.startsWith('node:'))).toEqual([]);
  });

  test('src/vault imports no cluster, sync, plan or observability module (only config settings)', () => {
    expect(arrows(sourcesIn(join(SRC, 'vault')), ['src/kube/', 'src/sync/', 'src/plan/', 'src/observability/', 'src/queue/', 'src/operator', 'src/supervisor'])).toEqual([]);
  });

  test('src/kube imports no sync decision, plan, operator or supervisor', () => {
    expect(arrows(sourcesIn(join(SRC, 'kube')), ['src/sync/', 'src/plan/', 'src/operator', 'src/supervisor'])).toEqual([]);
  });

  test('only src/vault/node-vault-client.ts imports node-vault', () => {
    const importers = sourcesIn(SRC).filter((file) => importsOf(file).includes('node-vault'));
    expect(importers.map((file) => relative(process.cwd(), file))).toEqual(['src/vault/node-vault-client.ts']);
  });

  test('the import reader sees type-only imports and re-exports (it would catch the arrows it guards)', () => {
    expect(importsOf(join(SRC, 'vault', 'auth.ts'))).toContain('src/config.ts');
    expect(importsOf(join(SRC, 'kube', 'annotation-rules.ts'))).toEqual(expect.arrayContaining(['src/vault/tenancy.ts', 'src/config.ts']));
  });
});
