{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "vso.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart, or the release name when it already contains the chart name. */}}
{{- define "vso.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vso.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The standard app.kubernetes.io labels, on every object. */}}
{{- define "vso.labels" -}}
helm.sh/chart: {{ include "vso.chart" . }}
{{ include "vso.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: vault-sync-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "vso.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vso.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vso.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vso.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vso.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "vso.leaseName" -}}
{{- default (include "vso.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "vso.hashKeySecret" -}}
{{- default (printf "%s-hash-key" (include "vso.fullname" .)) .Values.hashKeySecret -}}
{{- end -}}

{{- define "vso.scheme" -}}
{{- if .Values.metrics.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* Namespace of a monitoring object: its own setting, else the release namespace. */}}
{{- define "vso.monitoringNamespace" -}}
{{- default .root.Release.Namespace .namespace -}}
{{- end -}}

{{/* Refuses value combinations that would deploy something broken. */}}
{{- define "vso.validate" -}}
{{- if not .Values.vault.address -}}
{{- fail "vault.address is required (VAULT_ADDR), e.g. --set vault.address=https://vault.vault.svc:8200" -}}
{{- end -}}
{{- if and (eq .Values.rbac.scope "namespaced") (not .Values.watchNamespaces) -}}
{{- fail "rbac.scope=namespaced needs watchNamespaces: the namespaces the operator may read and write" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: two replicas would both write to Vault" -}}
{{- end -}}
{{- if and (gt (int .Values.sharding.shards) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "sharding.shards > 1 needs leaderElection.enabled=true (each shard is a Lease)" -}}
{{- end -}}
{{- if and (gt (int .Values.sharding.shards) 1) (eq .Values.sharding.budget.sharing "shared") (lt (int .Values.vault.rateBurst) (int .Values.sharding.shards)) -}}
{{- fail (printf "vault.rateBurst (%d) must be at least sharding.shards (%d) with sharding.budget.sharing=shared: each shard holder needs one request of burst" (int .Values.vault.rateBurst) (int .Values.sharding.shards)) -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) (int .Values.sharding.shards) -}}
{{- fail (printf "replicaCount (%d) must be at least sharding.shards (%d): a replica syncs at most one shard, so some namespaces would never sync" (int .Values.replicaCount) (int .Values.sharding.shards)) -}}
{{- end -}}
{{- if and (eq .Values.vault.auth.method "token") (not .Values.vault.auth.token.existingSecret) -}}
{{- fail "vault.auth.method=token needs vault.auth.token.existingSecret (a Secret holding the token)" -}}
{{- end -}}
{{- if and (eq .Values.vault.auth.method "approle") (or (not .Values.vault.auth.approle.roleId) (not .Values.vault.auth.approle.existingSecret)) -}}
{{- fail "vault.auth.method=approle needs vault.auth.approle.roleId and vault.auth.approle.existingSecret" -}}
{{- end -}}
{{- if and .Values.metrics.tls.enabled (not .Values.metrics.tls.secretName) -}}
{{- fail "metrics.tls.enabled needs metrics.tls.secretName (a kubernetes.io/tls Secret)" -}}
{{- end -}}
{{- if and .Values.metrics.bearerToken.enabled (not .Values.metrics.bearerToken.secretName) -}}
{{- fail "metrics.bearerToken.enabled needs metrics.bearerToken.secretName (a Secret holding the token)" -}}
{{- end -}}
{{- end -}}

{{/* RBAC rules for the watched namespaces (cluster-wide or per namespace). */}}
{{- define "vso.workloadRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["vault-sync.io"]
  resources: ["vaultsyncs"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["vault-sync.io"]
  resources: ["vaultsyncs/status"]
  verbs: ["get", "update", "patch"]
{{- end -}}

{{/*
tenancy.pathTemplate as the canonical prefix the operator derives from it (src/vault/tenancy.ts parsePrefix):
trimmed, one trailing "/" dropped, `data` right after the mount dropped (the KV v2 API form), "/" appended;
{namespace} left in place. "" when the template is "none". A template the operator could not parse fails
the render, naming the problem (the grammar comes from files/admission-policy.generated.yaml).
*/}}
{{- define "vso.tenantPrefix" -}}
{{- $grammar := (.Files.Get "files/admission-policy.generated.yaml" | fromYaml).tenantTemplate -}}
{{- $template := .Values.tenancy.pathTemplate | trim -}}
{{- if ne $template "none" -}}
{{- $segments := splitList "/" (trimSuffix "/" $template) -}}
{{- range $segments -}}
{{- if or (not (regexMatch $grammar.segmentPattern .)) (has . $grammar.dotSegments) -}}
{{- fail (printf "tenancy.pathTemplate %q: the segment %q is not a Vault path segment (letters, digits, \".\", \"_\", \"-\" and %s; not \".\" or \"..\")" $template . $grammar.placeholder) -}}
{{- end -}}
{{- end -}}
{{- $mount := first $segments -}}
{{- if contains $grammar.placeholder $mount -}}
{{- fail (printf "tenancy.pathTemplate %q: %s cannot be in the mount" $template $grammar.placeholder) -}}
{{- end -}}
{{- $key := rest $segments -}}
{{- if and $key (eq (first $key) $grammar.dataSegment) -}}
{{- $key = rest $key -}}
{{- else if and $key (has (first $key) $grammar.reservedAfterMount) -}}
{{- fail (printf "tenancy.pathTemplate %q: %q right after the mount is a KV API endpoint" $template (first $key)) -}}
{{- end -}}
{{- printf "%s/" (join "/" (prepend $key $mount)) -}}
{{- end -}}
{{- end -}}

{{/* The CEL expression of the tenant prefix for the object's namespace (the prefix holds only segment characters). */}}
{{- define "vso.tenantPrefixExpression" -}}
{{- $prefix := include "vso.tenantPrefix" . -}}
{{- if eq $prefix "" -}}
''
{{- else -}}
{{- $placeholder := (.Files.Get "files/admission-policy.generated.yaml" | fromYaml).tenantTemplate.placeholder -}}
{{- printf "'%s'.replace('%s', request.namespace)" $prefix $placeholder -}}
{{- end -}}
{{- end -}}
