// Transpiles src/**/*.ts (no type-check: `tsc -p tsconfig.test.json` does that) into node_modules/.cache,
// so that e2e tests can run the operator as a real child process (`node main.js`), as in a pod, without
// depending on a prior `npm run build` (a stale dist/ would test old code). ~1 s.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const repoRoot = resolve(process.cwd());

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

let built: string | undefined;

/** Returns the path of the transpiled src/main.js. */
export function buildOperator(): string {
  if (built) return built;
  // Under the repository so that packages resolve from its node_modules; one folder per process, so parallel
  // test files never read a half-written file.
  const outRoot = join(repoRoot, 'node_modules', '.cache', `vso-ops-build-${process.pid}`);
  mkdirSync(outRoot, { recursive: true });
  process.once('exit', () => rmSync(outRoot, { recursive: true, force: true })); // the processes it ran are gone by then
  // Jest may end its workers without 'exit' handlers: remove the copies of processes that are gone.
  const cacheDir = dirname(outRoot);
  for (const name of readdirSync(cacheDir)) {
    const pid = Number(/^vso-ops-build-(\d+)$/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !alive(pid)) rmSync(join(cacheDir, name), { recursive: true, force: true });
  }
  writeFileSync(join(outRoot, 'package.json'), JSON.stringify({ name: 'vault-sync-operator', version: '0.0.0-test', type: 'module' }) + '\n');
  for (const file of walk(join(repoRoot, 'src'))) {
    const out = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, sourceMap: false },
    });
    const target = join(outRoot, relative(repoRoot, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(`${target}.tmp`, out.outputText);
    renameSync(`${target}.tmp`, target);
  }
  built = join(outRoot, 'src', 'main.js');
  return built;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
