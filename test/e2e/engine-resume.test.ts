// Progress is durable (docs/adr/0003): an 80-path sync (two Deployments of 40 Secrets: one source may sync
// at most 64) interrupted by a Vault reset, or by a SIGKILL of the operator process, resumes where it stopped. Proof from Vault itself: every path ends at KV version 1 (no
// path was written twice), with our marks, and the VaultSync records all 80 with no intent left open.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { freshNamespace, kubeClients, loadTestEnv, vaultHttp, waitFor } from './helpers/env.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { createSecret, deploymentUsing } from './helpers/objects.js';
import { operatorArgs, runOperator, type TestOperator } from './helpers/operator.js';
import { startOperatorProcess, type OperatorProcess } from './helpers/ops.js';
import { auditMark, isWrite, kvRequestsSince } from './helpers/vault-audit.js';

const PATHS = 80;
const { kc, apps } = kubeClients();
const custom = kc.makeApiClient(CustomObjectsApi);

const SOURCES = ['big', 'wide'];

/** Two Deployments of 40 Secrets each, writing `secret/<ns>/<deployment>/sNN`; returns the 80 paths below `<ns>/`. */
async function bigSources(ns: string): Promise<string[]> {
  const names = Array.from({ length: PATHS / SOURCES.length }, (_, i) => `s${String(i).padStart(2, '0')}`);
  await Promise.all(names.map((name) => createSecret(ns, name, { value: `${name}-value` })));
  for (const source of SOURCES) await apps.createNamespacedDeployment({ namespace: ns, body: deploymentUsing(ns, source, { 'vault-sync.io/path': `secret/${ns}/${source}` }, names) });
  return SOURCES.flatMap((source) => names.map((name) => `${source}/${name}`));
}

const statusOf = async (ns: string, source: string) =>
  ((await custom.getNamespacedCustomObject({ group: 'vault-sync.io', version: 'v1alpha1', namespace: ns, plural: 'vaultsyncs', name: `deployment-${source}` }).catch(() => undefined)) as any)?.status;

/** Every path at exactly one KV version, marked as ours; the records complete with no intent left open. */
async function expectEachWrittenOnce(ns: string, paths: string[]) {
  for (const source of SOURCES) {
    await waitFor(
      async () => {
        const status = await statusOf(ns, source);
        return status?.conditions?.[0]?.status === 'True' && status.entries?.length === PATHS / SOURCES.length && status.intents?.length === 0 ? status : undefined;
      },
      { timeoutMs: 90_000, description: `all paths of ${source} recorded, Ready=True, no intent open` },
    );
  }
  const versions = new Map<string, number>();
  for (const name of paths) {
    const metadata = (await vaultHttp(`secret/metadata/${ns}/${name}`)).json?.data;
    versions.set(name, Object.keys(metadata?.versions ?? {}).length);
    expect(metadata?.custom_metadata?.['managed-by']).toBe('vault-sync-operator');
  }
  expect([...versions.entries()].filter(([, count]) => count !== 1)).toEqual([]); // zero duplicate versions
}

describe('durable progress', () => {
  let proxy: FaultProxy | undefined;
  let operator: TestOperator | undefined;
  let child: OperatorProcess | undefined;
  afterEach(async () => {
    child?.kill('SIGKILL');
    await operator?.stop();
    await proxy?.close();
    operator = undefined;
    proxy = undefined;
    child = undefined;
  });

  test('a Vault reset in the middle of an 80-path sync: the retry writes only what had not landed', async () => {
    const ns = await freshNamespace('resume-reset');
    proxy = await startFaultProxy({ upstream: loadTestEnv().vaultAddr });
    // Few retries inside one request, so the reconcile itself fails while Vault is away.
    operator = await runOperator([ns], [`--vault-addr=${proxy.url}`, '--vault-max-retries=1', '--vault-retry-max-delay=1s']);
    const names = await bigSources(ns);
    const dataWrites = () => proxy!.requests.filter((r) => r.method !== 'GET' && r.path.startsWith(`/v1/secret/data/${ns}/`)).length;
    await waitFor(() => dataWrites() >= 30, { description: '30 data writes sent' });
    await proxy.stop(); // connections reset, then refused
    // The failed sync is recorded: what landed, and which paths failed and why.
    const failed = await waitFor(
      async () => {
        const statuses = await Promise.all(SOURCES.map((source) => statusOf(ns, source)));
        return statuses.some((status) => status?.conditions?.[0]?.reason === 'VaultUnavailable') ? statuses : undefined;
      },
      { timeoutMs: 60_000, description: 'Ready=False VaultUnavailable' },
    );
    const message = failed.find((status) => status?.conditions?.[0]?.reason === 'VaultUnavailable').conditions[0].message as string;
    expect(message).toMatch(new RegExp(`^(\\d+ path\\(s\\) written; )?secret/${ns}/(big|wide)/s\\d\\d: no response \\(ECONN[A-Z]+\\); retrying`));
    // Progress kept while Vault is away: what landed before the reset is in the records (at most 1 s behind).
    await waitFor(async () => (await Promise.all(SOURCES.map((source) => statusOf(ns, source)))).reduce((sum, status) => sum + (status?.entries?.length ?? 0), 0) > 0, { description: 'landed paths recorded' });
    await proxy.start();
    await expectEachWrittenOnce(ns, names);
  });

  test('a SIGKILL of the operator process in the middle of an 80-path sync: the next operator resumes, zero duplicate versions', async () => {
    const ns = await freshNamespace('resume-kill');
    child = await startOperatorProcess('resume-kill', [...(await operatorArgs([ns])), '--log-level=info'], { KUBECONFIG: loadTestEnv().kubeconfigPath });
    const mark = auditMark();
    const names = await bigSources(ns);
    await waitFor(() => kvRequestsSince(mark, `${ns}/`).filter((r) => isWrite(r) && r.path.startsWith('secret/data/')).length >= 30, { description: '30 values in Vault' });
    child.kill('SIGKILL');
    expect((await child.exited).signal).toBe('SIGKILL');
    const landedBeforeKill = kvRequestsSince(mark, `${ns}/`).filter((r) => isWrite(r) && r.path.startsWith('secret/data/')).length;
    expect(landedBeforeKill).toBeLessThan(PATHS); // really in the middle

    operator = await runOperator([ns]);
    await expectEachWrittenOnce(ns, names);
  });
});
