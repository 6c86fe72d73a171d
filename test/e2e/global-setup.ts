// Starts the real environment (etcd + kube-apiserver + OpenBao) once for the whole e2e project.
// No skipping: if it cannot start, this throws and jest fails the run with the reason.
//
// Why the testenv/ modules are transpiled here instead of imported: Jest 29 loads globalSetup outside its
// module system (ts-jest compiles this file to CommonJS and Node's own `require` resolves its imports), so
// neither the `.js` -> `.ts` moduleNameMapper nor ESM (`import.meta`) applies. See ts-jest#4127. Rather than
// depend on a prior `tsc` build (and risk a stale dist/), we transpile testenv/*.ts (no type-check: that
// is `tsc -p tsconfig.test.json`'s job) into node_modules/.cache/vso-testenv and import that. ~0.3 s.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import type * as Binaries from '../../testenv/binaries.js';
import type * as Environment from '../../testenv/environment.js';

declare global {
  // eslint-disable-next-line no-var
  var __VSO_E2E_ENV__: Environment.LocalEnvironment | undefined;
}

async function importTestenv(repoRoot: string): Promise<{ binaries: typeof Binaries; environment: typeof Environment }> {
  const srcDir = join(repoRoot, 'testenv');
  // Under the repository so that '@kubernetes/client-node' resolves from its node_modules.
  const outRoot = join(repoRoot, 'node_modules', '.cache', 'vso-testenv');
  const outDir = join(outRoot, 'testenv');
  mkdirSync(outDir, { recursive: true });
  // Without it Node would treat these .js files as CommonJS (package scopes stop at node_modules).
  writeFileSync(join(outRoot, 'package.json'), '{ "type": "module" }\n');
  for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts'))) {
    const out = ts.transpileModule(readFileSync(join(srcDir, f), 'utf8'), {
      fileName: f,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, sourceMap: false },
    });
    const target = join(outDir, f.replace(/\.ts$/, '.js'));
    writeFileSync(`${target}.${process.pid}.tmp`, out.outputText); // atomic: parallel jest runs share the folder
    renameSync(`${target}.${process.pid}.tmp`, target);
  }
  // `new Function` keeps a real dynamic import(): ts-jest would turn `import()` into `require()` here.
  const dynamicImport = new Function('u', 'return import(u)') as (u: string) => Promise<any>;
  const [binaries, environment] = await Promise.all([
    dynamicImport(pathToFileURL(join(outDir, 'binaries.js')).href),
    dynamicImport(pathToFileURL(join(outDir, 'environment.js')).href),
  ]);
  return { binaries, environment };
}

// Jest passes the project config: its rootDir is the repository (cwd may be a subfolder).
export default async function globalSetup(_globalConfig: unknown, projectConfig?: { rootDir?: string }): Promise<void> {
  const log = (m: string) => process.stderr.write(`[e2e env] ${m}\n`);
  const { binaries, environment } = await importTestenv(resolve(projectConfig?.rootDir ?? process.cwd()));
  binaries.ensureBinaries(log);
  const stateDir = mkdtempSync(join(tmpdir(), 'vso-e2e-'));
  log(`state and logs in ${stateDir}`);
  const env = await environment.startEnvironment({ stateDir, log });
  globalThis.__VSO_E2E_ENV__ = env;
  // Test files run in workers started after this: they inherit these variables.
  process.env.VSO_E2E_ENV_JSON = join(stateDir, 'env.json');
  process.env.KUBECONFIG = env.kubeconfigPath;
  process.env.VAULT_ADDR = env.vaultAddr;
  process.env.VAULT_TOKEN = env.vaultRootToken;
}
