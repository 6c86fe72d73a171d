// The Helm chart, deploy/ and the monitoring assets: helm lint and template over several value sets,
// drift between deploy/ and the chart, promtool on the alert rules, and a server-side apply of the
// rendered chart (monitoring objects included) to the real apiserver.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { usage } from '../../src/config.js';
import { freshNamespace, kubeClients } from './helpers/env.js';
import { chartDir, find, kubectlApply, renderChart, repoRoot, run, runOk, tools, type KubeObject } from './helpers/ops.js';

const VAULT = ['--set', 'vault.address=https://vault.vault.svc:8200'];

/** Value sets that cover the chart's branches; each must lint and render. */
const VALUE_SETS: Record<string, string[]> = {
  defaults: VAULT,
  namespaced: [...VAULT, '--set', 'rbac.scope=namespaced', '--set', 'watchNamespaces={team-a,team-b}'],
  'ha-sharded': [...VAULT, '--set', 'replicaCount=4', '--set', 'sharding.shards=3', '--set', 'vault.rateLimit=30', '--set', 'vault.rateBurst=60'],
  'single-no-leader-election': [...VAULT, '--set', 'replicaCount=1', '--set', 'leaderElection.enabled=false', '--set', 'podDisruptionBudget.enabled=false'],
  'monitoring-tls-token': [
    ...VAULT,
    '--set', 'serviceMonitor.enabled=true', '--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true',
    '--set', 'metrics.tls.enabled=true', '--set', 'metrics.tls.secretName=vso-metrics-tls',
    '--set', 'metrics.bearerToken.enabled=true', '--set', 'metrics.bearerToken.secretName=vso-metrics-token',
    '--set', 'serviceMonitor.tlsConfig.caSecret.name=vso-metrics-ca', '--set', 'prometheusRule.disabledAlerts={VaultSyncLargeSecrets}',
  ],
  'approle-networkpolicy-ca': [
    ...VAULT,
    '--set', 'vault.auth.method=approle', '--set', 'vault.auth.approle.roleId=r-123', '--set', 'vault.auth.approle.existingSecret=approle',
    '--set', 'vault.caCert.configMapName=vault-ca', '--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.vault.cidrs={10.20.0.0/16}',
    '--set-json', 'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
  ],
  'token-auth-enterprise-namespace': [...VAULT, '--set', 'vault.auth.method=token', '--set', 'vault.auth.token.existingSecret=vault-token', '--set', 'vault.namespace=team-ns'],
};

const envOf = (deployment: KubeObject): Record<string, any> =>
  Object.fromEntries(deployment.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe('helm lint and helm template over several value sets', () => {
  test.each(Object.entries(VALUE_SETS))('%s: lints clean and renders', (_name, args) => {
    const lint = run(tools.helm(), ['lint', chartDir, '--strict', ...args]);
    expect(lint.stdout + lint.stderr).toContain('0 chart(s) failed');
    const objects = renderChart('vso', 'vault-sync-system', args);
    // Every object carries the standard labels.
    for (const o of objects) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'vault-sync-operator',
        'app.kubernetes.io/instance': 'vso',
        'app.kubernetes.io/version': expect.any(String),
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/part-of': 'vault-sync-operator',
      });
    }
  });

  test('the pod runs as non-root with a read-only root filesystem, no privilege escalation, no capabilities', () => {
    const deployment = find(renderChart('vso', 'vault-sync-system', VAULT), 'Deployment');
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0].securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(pod.containers[0].livenessProbe.httpGet.path).toBe('/healthz');
    expect(pod.containers[0].readinessProbe.httpGet.path).toBe('/readyz');
    // Vault's Kubernetes auth uses a short-lived token bound to Vault's audience, not the apiserver token.
    expect(pod.volumes.find((v: any) => v.name === 'vault-token').projected.sources[0].serviceAccountToken).toEqual({ path: 'token', audience: 'vault', expirationSeconds: 3600 });
  });

  test('every setting of the operator has a value in the chart (its environment variable is set by the Deployment)', () => {
    const settings = [...usage().matchAll(/^\s+--[a-z0-9-]+\s+([A-Z0-9_]+)\s/gm)].map((m) => m[1]);
    expect(settings.length).toBeGreaterThan(30);
    const rendered = new Set<string>();
    for (const args of Object.values(VALUE_SETS)) {
      for (const name of Object.keys(envOf(find(renderChart('vso', 'vault-sync-system', args), 'Deployment')))) rendered.add(name);
    }
    const missing = settings.filter((s) => !rendered.has(s));
    expect(missing).toEqual([]);
  });

  test('DEPLOYMENT.md documents every setting', () => {
    const settings = [...usage().matchAll(/^\s+--[a-z0-9-]+\s+([A-Z0-9_]+)\s/gm)].map((m) => m[1]);
    const guide = readFileSync(join(repoRoot, 'DEPLOYMENT.md'), 'utf8');
    expect(settings.filter((s) => !guide.includes(`\`${s}\``))).toEqual([]);
  });

  test('cluster scope: one ClusterRole with exactly the verbs the operator needs', () => {
    const objects = renderChart('vso', 'vault-sync-system', VAULT);
    const rules = find(objects, 'ClusterRole', 'vso-vault-sync-operator').rules;
    const verbs = (group: string, resource: string) => rules.find((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource))?.verbs;
    expect(verbs('apps', 'deployments')).toEqual(['get', 'list', 'watch', 'patch', 'update']);
    expect(verbs('', 'secrets')).toEqual(['get', 'list', 'watch', 'patch', 'update']);
    expect(verbs('', 'events')).toEqual(['create', 'patch']);
    expect(verbs('vault-sync.io', 'vaultsyncs')).toEqual(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']);
    expect(verbs('vault-sync.io', 'vaultsyncs/status')).toEqual(['get', 'update', 'patch']);
    expect(verbs('vault-sync.io', 'vaultsyncpolicies')).toEqual(['get', 'list', 'watch']);
    expect(verbs('', 'namespaces')).toEqual(['get']);
    expect(rules.flatMap((r: any) => r.verbs)).not.toContain('*');
    // Leases and the hash-key Secret only in the release namespace, get/update only by name.
    const self = find(objects, 'Role', 'vso-vault-sync-operator-self', 'vault-sync-system').rules;
    expect(self).toContainEqual({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['vso-vault-sync-operator'], verbs: ['get', 'update'] });
    expect(self).toContainEqual({ apiGroups: [''], resources: ['secrets'], resourceNames: ['vso-vault-sync-operator-hash-key'], verbs: ['get'] });
  });

  test('namespaced scope: Roles only in the watched namespaces, and no cluster-wide Secret or Deployment access', () => {
    const objects = renderChart('vso', 'vault-sync-system', VALUE_SETS.namespaced);
    expect(objects.filter((o) => o.kind === 'Role' && o.metadata.name === 'vso-vault-sync-operator').map((o) => o.metadata.namespace)).toEqual(['team-a', 'team-b']);
    const clusterRoles = objects.filter((o) => o.kind === 'ClusterRole');
    expect(clusterRoles.map((o) => o.metadata.name)).toEqual(['vso-vault-sync-operator-cluster-reads']);
    const resources = clusterRoles[0].rules.flatMap((r: any) => r.resources);
    expect(resources).toEqual(['vaultsyncpolicies', 'namespaces']);
    expect(clusterRoles[0].rules[1].resourceNames).toEqual(['team-a', 'team-b']);
    expect(envOf(find(objects, 'Deployment')).WATCH_NAMESPACES).toBe('team-a,team-b');
  });

  test('sharding: one Lease per shard in the RBAC, the budget and shard count passed on', () => {
    const objects = renderChart('vso', 'vault-sync-system', VALUE_SETS['ha-sharded']);
    const leases = find(objects, 'Role', 'vso-vault-sync-operator-self').rules.find((r: any) => r.resourceNames && r.resources.includes('leases'));
    // The shard Leases and the shared budget's Lease (the holders' shares, compare-and-swap), get/update by name only.
    expect(leases.resourceNames).toEqual(['vso-vault-sync-operator-shard-0', 'vso-vault-sync-operator-shard-1', 'vso-vault-sync-operator-shard-2', 'vso-vault-sync-operator-budget']);
    expect(leases.verbs).toEqual(['get', 'update']);
    expect(envOf(find(objects, 'Deployment'))).toMatchObject({ SHARDS: '3', LEADER_ELECT: 'true', VAULT_RATE_LIMIT: '30', VAULT_RATE_BURST: '60', VAULT_BUDGET_SHARING: 'shared', VAULT_BUDGET_FLOOR: '0.2', VAULT_BUDGET_PERIOD: '1s' });
    // A static split needs no budget Lease.
    const statics = renderChart('vso', 'vault-sync-system', [...VALUE_SETS['ha-sharded'], '--set', 'sharding.budget.sharing=static']);
    expect(find(statics, 'Role', 'vso-vault-sync-operator-self').rules.find((r: any) => r.resourceNames && r.resources.includes('leases')).resourceNames).not.toContain('vso-vault-sync-operator-budget');
  });

  test('monitoring: ServiceMonitor scrapes over TLS with the bearer token; PrometheusRule and dashboard come from the files', () => {
    const objects = renderChart('vso', 'vault-sync-system', VALUE_SETS['monitoring-tls-token']);
    const endpoint = find(objects, 'ServiceMonitor').spec.endpoints[0];
    expect(endpoint).toMatchObject({ port: 'http-metrics', path: '/metrics', scheme: 'https', authorization: { type: 'Bearer', credentials: { name: 'vso-metrics-token', key: 'token' } } });
    expect(endpoint.tlsConfig.ca).toEqual({ secret: { name: 'vso-metrics-ca', key: 'ca.crt' } });
    const alerts = find(objects, 'PrometheusRule').spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
    expect(alerts).toEqual(expect.arrayContaining(['VaultSyncErrors', 'VaultSyncVaultUnreachable', 'VaultSyncAuthFailures', 'VaultSyncRateLimitSaturated', 'VaultSyncQueueGrowing', 'VaultSyncDriftCorrected', 'VaultSyncNoLeader']));
    expect(alerts).not.toContain('VaultSyncLargeSecrets'); // disabledAlerts
    const dashboard = find(objects, 'ConfigMap', 'vso-vault-sync-operator-dashboard');
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(dashboard.data['vault-sync-operator.json'])).toEqual(JSON.parse(readFileSync(join(chartDir, 'files', 'grafana-dashboard.json'), 'utf8')));
    const pod = find(objects, 'Deployment').spec.template.spec.containers[0];
    expect(pod.readinessProbe.httpGet.scheme).toBe('HTTPS');
    expect(envOf(find(objects, 'Deployment'))).toMatchObject({ METRICS_TLS_CERT_FILE: '/etc/vault-sync/metrics-tls/tls.crt', METRICS_BEARER_TOKEN_FILE: '/etc/vault-sync/metrics-token/token' });
  });

  test('by default the pod listens on every address behind a NetworkPolicy that lets only Prometheus in (issue 8)', () => {
    const objects = renderChart('vso', 'vault-sync-system', VAULT);
    expect(envOf(find(objects, 'Deployment')).METRICS_BIND_ADDRESS).toBe('0.0.0.0');
    const policy = find(objects, 'NetworkPolicy', 'vso-vault-sync-operator').spec;
    expect(policy.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.ingress).toEqual([
      {
        ports: [{ port: 'http-metrics', protocol: 'TCP' }],
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }],
      },
    ]);
    // Egress as before: DNS, the apiserver, Vault.
    expect(policy.egress.map((rule: any) => rule.ports.map((p: any) => p.port))).toEqual([[53, 53], [443, 6443], [8200]]);
    // Selectors are configurable (Helm merges maps: a default label is dropped with null); extra peers are
    // added; no peer at all means no pod may connect.
    const custom = find(renderChart('vso', 'vault-sync-system', [...VAULT, '--set-json', 'networkPolicy.prometheus.namespaceSelector={"matchLabels":{"kubernetes.io/metadata.name":null,"team":"obs"}}', '--set-json', 'networkPolicy.prometheus.podSelector={"matchLabels":null}', '--set-json', 'networkPolicy.metricsFrom=[{"ipBlock":{"cidr":"10.9.0.0/16"}}]']), 'NetworkPolicy').spec;
    expect(custom.ingress[0].from).toEqual([{ namespaceSelector: { matchLabels: { team: 'obs' } }, podSelector: {} }, { ipBlock: { cidr: '10.9.0.0/16' } }]);
    const closed = find(renderChart('vso', 'vault-sync-system', [...VAULT, '--set', 'networkPolicy.prometheus.enabled=false']), 'NetworkPolicy').spec;
    expect(closed.ingress).toEqual([]);
    expect(renderChart('vso', 'vault-sync-system', [...VAULT, '--set', 'networkPolicy.enabled=false']).filter((o) => o.kind === 'NetworkPolicy')).toEqual([]);
  });

  test.each([
    { reason: 'no Vault address', args: [], says: 'vault.address is required' },
    { reason: 'namespaced RBAC without namespaces', args: [...VAULT, '--set', 'rbac.scope=namespaced'], says: 'needs watchNamespaces' },
    { reason: 'two replicas without leader election (two writers)', args: [...VAULT, '--set', 'leaderElection.enabled=false'], says: 'needs leaderElection.enabled=true' },
    { reason: 'fewer replicas than shards (namespaces nobody syncs)', args: [...VAULT, '--set', 'sharding.shards=3'], says: 'must be at least sharding.shards' },
    { reason: 'a shared budget with less burst than shards (a holder could send nothing)', args: [...VAULT, '--set', 'replicaCount=4', '--set', 'sharding.shards=4', '--set', 'vault.rateBurst=3'], says: 'vault.rateBurst (3) must be at least sharding.shards (4)' },
    { reason: 'a rate of 0 (schema)', args: [...VAULT, '--set', 'vault.rateLimit=0'], says: 'vault.rateLimit' },
    { reason: 'an unknown log level (schema)', args: [...VAULT, '--set', 'logLevel=chatty'], says: 'logLevel' },
    { reason: 'a typo in a value name (schema: no unknown keys)', args: [...VAULT, '--set', 'vault.rateLimt=5'], says: 'rateLimt' },
  ])('refuses $reason', ({ args, says }) => {
    const r = run(tools.helm(), ['template', 'vso', chartDir, ...args]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(says);
  });
});

describe('deploy/ and the monitoring assets', () => {
  test('deploy/ is what the chart renders (fails on drift: run scripts/render-deploy.sh)', () => {
    const r = run('bash', [join(repoRoot, 'scripts', 'render-deploy.sh'), '--check']);
    expect(r.stderr + r.stdout).toContain('deploy/ matches the chart');
    expect(r.status).toBe(0);
  });

  test('the CRDs of the chart are the files in crds/ (one source of truth)', () => {
    const objects = renderChart('vso', 'vault-sync-system', VAULT, { includeCrds: true }).filter((o) => o.kind === 'CustomResourceDefinition');
    expect(objects.map((o) => o.metadata.name).sort()).toEqual(['vaultsyncpolicies.vault-sync.io', 'vaultsyncs.vault-sync.io']);
  });

  test('promtool check rules passes on the alert rules', () => {
    const out = runOk(tools.promtool(), ['check', 'rules', join(repoRoot, 'deploy', 'monitoring', 'prometheus-rules.yaml')]);
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  test('promtool test rules: each alert fires on the series it is about, and stays quiet on a healthy operator', () => {
    const out = runOk(tools.promtool(), ['test', 'rules', join(repoRoot, 'test', 'fixtures', 'monitoring', 'prometheus-rules.test.yaml')]);
    expect(out).toContain('SUCCESS');
  });

  test('the Grafana dashboard is valid JSON whose queries use only metrics the operator exports', () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'monitoring', 'grafana-dashboard.json'), 'utf8'));
    expect(dashboard.uid).toBe('vault-sync-operator');
    const exprs: string[] = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
    expect(exprs.length).toBeGreaterThan(20);
    const metricsSource = readFileSync(join(repoRoot, 'src', 'observability', 'metrics.ts'), 'utf8') + readFileSync(join(repoRoot, 'src', 'kube', 'leader-election.ts'), 'utf8') + readFileSync(join(repoRoot, 'src', 'budget', 'shared-budget.ts'), 'utf8');
    const declared = (name: string) => metricsSource.includes(`'${name}'`) || metricsSource.includes(`'${name.replace(/_(bucket|sum|count)$/, '')}'`);
    const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(vault_[a-z0-9_]+)\b/g)].map((m) => m[1])));
    const unknown = [...names].filter((n) => !declared(n));
    expect(unknown).toEqual([]);
    // ...and shows every metric the operator declares (a new metric needs a panel).
    const all = [...metricsSource.matchAll(/name: '(vault_[a-z0-9_]+)'/g)].map((m) => m[1]);
    expect(all.length).toBeGreaterThan(20);
    expect(all.filter((n) => !exprs.some((e) => e.includes(n)))).toEqual([]);
  });
});

describe('a server-side apply of the rendered chart to the real apiserver', () => {
  test('every object of the chart (monitoring and NetworkPolicy included) is accepted by the apiserver', async () => {
    kubectlApply(readFileSync(join(repoRoot, 'test', 'fixtures', 'crds', 'monitoring.coreos.com_servicemonitors.yaml'), 'utf8') + '\n---\n' + readFileSync(join(repoRoot, 'test', 'fixtures', 'crds', 'monitoring.coreos.com_prometheusrules.yaml'), 'utf8'));
    runOk(tools.kubectl(), ['--kubeconfig', (await import('./helpers/env.js')).loadTestEnv().kubeconfigPath, 'wait', '--for=condition=Established', '--timeout=30s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com']);
    const namespace = await freshNamespace('ops-apply');
    const watched = await freshNamespace('ops-apply-team');
    const release = `apply-${namespace.slice(-6)}`;
    const args = [
      ...VALUE_SETS['monitoring-tls-token'],
      '--set', 'networkPolicy.enabled=true', '--set', 'rbac.scope=namespaced', '--set', `watchNamespaces={${watched}}`,
    ];
    const manifests = runOk(tools.helm(), ['template', release, chartDir, '--namespace', namespace, '--include-crds', ...args]);
    const applied = kubectlApply(manifests);
    for (const kind of ['deployment.apps', 'service', 'serviceaccount', 'role.rbac', 'rolebinding.rbac', 'clusterrole.rbac', 'poddisruptionbudget.policy', 'networkpolicy.networking.k8s.io', 'servicemonitor.monitoring.coreos.com', 'prometheusrule.monitoring.coreos.com', 'configmap', 'customresourcedefinition.apiextensions.k8s.io']) {
      expect(applied).toContain(kind);
    }
    // Read back what the apiserver stored.
    const deployment = await kubeClients().apps.readNamespacedDeployment({ name: `${release}-vault-sync-operator`, namespace });
    expect(deployment.spec?.template.spec?.containers[0].securityContext?.readOnlyRootFilesystem).toBe(true);
    // Applying the same manifests again changes nothing (idempotent, no field-manager conflicts).
    expect(kubectlApply(manifests)).not.toMatch(/conflict/i);
  });

  test('helm install, upgrade and uninstall against the real apiserver', async () => {
    const namespace = await freshNamespace('ops-helm');
    const kubeconfig = (await import('./helpers/env.js')).loadTestEnv().kubeconfigPath;
    const release = `h-${namespace.slice(-6)}`;
    const helm = (...args: string[]) => runOk(tools.helm(), ['--kubeconfig', kubeconfig, '--namespace', namespace, ...args]);
    expect(helm('install', release, chartDir, ...VAULT, '--wait=false')).toContain('STATUS: deployed');
    expect(helm('upgrade', release, chartDir, '--reuse-values', '--set', 'vault.rateLimit=20')).toContain('STATUS: deployed');
    const deployment = await kubeClients().apps.readNamespacedDeployment({ name: `${release}-vault-sync-operator`, namespace });
    expect(deployment.spec?.template.spec?.containers[0].env?.find((e) => e.name === 'VAULT_RATE_LIMIT')?.value).toBe('20');
    expect(helm('uninstall', release)).toContain('uninstalled');
  });

  test('deploy/ applies as is (kubectl apply -f deploy/)', async () => {
    const out = runOk(tools.kubectl(), ['--kubeconfig', (await import('./helpers/env.js')).loadTestEnv().kubeconfigPath, 'apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'deploy')]);
    expect(out).toContain('deployment.apps/vault-sync-operator serverside-applied');
  });
});
