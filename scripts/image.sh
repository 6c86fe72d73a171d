#!/usr/bin/env bash
# `npm run image`: builds the operator's container image from the Dockerfile without a Docker daemon and
# without a container registry, into an OCI archive, with an SBOM of its runtime stage beside it.
#
#   1. Two stand-in base images made from Debian packages with mmdebstrap (the Dockerfile's defaults are the
#      registry images node:20-bookworm-slim and distroless/nodejs20, pinned by digest):
#        build base   - Debian with nodejs (>= 20) and npm, and this machine's CA bundle for npm (build only);
#        runtime base - shaped like distroless/nodejs: node at /nodejs/bin/node as the entrypoint, user
#                       65532 (nonroot), no shell, no package manager.
#   2. `buildah bud` of the Dockerfile with those bases as build arguments (vfs storage, chroot isolation).
#   3. `buildah push` to an OCI archive; `npm sbom --omit=dev` (CycloneDX) of the runtime stage's /app.
#
# Everything is cached under $VSO_CACHE/image, keyed by a hash of its inputs: the bases by their package lists
# (and the CA bundle), the image by the Dockerfile, .dockerignore, package*.json, tsconfig.json, src/ and the
# bases. A second run with the same inputs does nothing. The last line of stdout is the output folder:
#   $VSO_CACHE/image/app-<hash>/{vault-sync-operator.oci.tar, sbom.cdx.json, image.json}
# and dist/image points at it. Offline (no Debian mirror, no npm registry) it works once the cache is warm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
. "$here/testenv/versions.sh"

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bash "$here/install-test-tools.sh" image >&2

root="$VSO_CACHE/image"
mkdir -p "$root/bases"
# Buildah/podman storage of the project (not the machine's): vfs needs no kernel overlay support.
store_args=(--root "$root/storage" --runroot "$root/run" --storage-driver vfs)
bah() { buildah "${store_args[@]}" "$@"; }

sha() { sha256sum | cut -c1-16; }

# One build at a time per cache (parallel test runs in several worktrees share it).
exec 8>"$root/.lock"
if ! flock -n 8; then log "another image build is running; waiting for it"; flock 8; fi

mirror="${VSO_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="$IMAGE_DEBIAN_SUITE"
build_packages="nodejs,npm,ca-certificates"
runtime_packages="nodejs,ca-certificates,tzdata"
host_ca=/etc/ssl/certs/ca-certificates.crt
[ -r "$host_ca" ] || die "$host_ca (the machine's CA bundle, for npm inside the build) is missing"

# Everything in this file that shapes a base (the base functions themselves) goes into its hash.
fn_hash() { declare -f "$@" | sha; }

has_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

# Builds `FROM scratch; ADD rootfs.tar /` plus config lines into the local storage as $1.
import_rootfs() {
  local name="$1" rootfs="$2" config="$3"
  local ctx; ctx=$(mktemp -d "$root/ctx.XXXXXX")
  ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\n%s\n' "$config" > "$ctx/Containerfile"
  bah bud --quiet --isolation chroot --pull=never --timestamp 0 -f "$ctx/Containerfile" -t "$name" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# The stand-in for node:20-bookworm-slim: Debian's nodejs and npm, and this machine's CA bundle, which npm
# needs to reach the registry through the TLS-intercepting network here (build base only, never runtime).
build_base_rootfs() {
  local out="$1"
  mmdebstrap --quiet --mode=root --variant=apt --include="$build_packages" --format=tar \
    --customize-hook="cp '$host_ca' \"\$1/etc/ssl/certs/build-host-ca.crt\"" \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc "$1"/usr/share/man' \
    "$suite" "$out" "$mirror"
}

# The stand-in for gcr.io/distroless/nodejs20-debian12:nonroot. `--variant=extract` unpacks nodejs and its
# libraries without running any maintainer script (nor customize hooks: they are ignored for extract), so the
# result is shaped here: merged-/usr links, the CA bundle that ca-certificates' postinst would make, the
# passwd/group of distroless, node at /nodejs/bin/node, and no shell, package manager or docs.
runtime_base_rootfs() {
  local out="$1"
  local dir; dir=$(mktemp -d "$root/rootfs.XXXXXX")
  mmdebstrap --quiet --mode=root --variant=extract --include="$runtime_packages" --format=directory \
    "$suite" "$dir" "$mirror"
  ( cd "$dir"
    for d in bin lib lib64 sbin; do [ -e "$d" ] || ln -s "usr/$d" "$d"; done
    mkdir -p etc/ssl/certs nodejs/bin home/nonroot tmp
    find usr/share/ca-certificates -name '*.crt' | sort | xargs cat > etc/ssl/certs/ca-certificates.crt
    ln -s ../../usr/bin/node nodejs/bin/node
    rm -rf usr/bin/debconf* usr/bin/openssl usr/bin/c_rehash usr/sbin/* usr/share/perl5 usr/share/doc usr/share/man \
      usr/share/lintian usr/share/debconf etc/apt etc/dpkg etc/debconf.conf var/lib/dpkg var/cache/debconf var/lib/apt dev/*
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > etc/passwd
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > etc/group
    chown 65532:65532 home/nonroot; chmod 1777 tmp
    for sh in bin/sh bin/bash bin/dash usr/bin/sh usr/bin/bash usr/bin/dash usr/bin/perl usr/bin/apt usr/bin/dpkg; do
      [ ! -e "$sh" ] || { echo "runtime base: $sh must not be there" >&2; exit 1; }
    done
    /usr/sbin/chroot . /nodejs/bin/node -e 'if (+process.versions.node.split(".")[0] < 20) process.exit(1)' \
      || { echo "runtime base: /nodejs/bin/node does not run or is older than 20" >&2; exit 1; } )
  tar --sort=name --numeric-owner --mtime=@0 -C "$dir" -cf "$out" .
  rm -rf "$dir"
}

# Ensures a base image exists in the storage; prints its name. $1: build|runtime.
ensure_base() {
  local kind="$1" fn packages config
  case "$kind" in
    build) fn=build_base_rootfs; packages="$build_packages"
      config=$'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/build-host-ca.crt\nCMD ["/bin/bash"]' ;;
    runtime) fn=runtime_base_rootfs; packages="$runtime_packages"
      config=$'USER 65532:65532\nWORKDIR /home/nonroot\nENTRYPOINT ["/nodejs/bin/node"]' ;;
  esac
  local extra=""; [ "$kind" = build ] && extra=$(sha < "$host_ca")
  local hash; hash=$( { echo "$suite $mirror $packages $extra"; echo "$config"; fn_hash "$fn" import_rootfs; } | sha)
  local name="localhost/vso-$kind-base:$hash"
  if has_image "$name"; then echo "$name"; return; fi
  local rootfs="$root/bases/$kind-$hash.rootfs.tar"
  if [ ! -s "$rootfs" ]; then
    log "$kind base: mmdebstrap ($suite: $packages) - first time only"
    local start=$SECONDS
    "$fn" "$rootfs.tmp" >&2 || { rm -f "$rootfs.tmp"; die "$kind base: mmdebstrap failed"; }
    mv "$rootfs.tmp" "$rootfs"
    log "$kind base: rootfs in $((SECONDS - start)) s ($(du -h "$rootfs" | cut -f1))"
    # Older rootfs of this kind are for inputs that changed.
    find "$root/bases" -name "$kind-*.rootfs.tar" ! -name "$kind-$hash.rootfs.tar" -delete
  fi
  import_rootfs "$name" "$rootfs" "$config"
  rm -f "$rootfs" # the storage holds it now (as the image); a rootfs tar is only the hand-over
  # Older bases of this kind in the storage are for inputs that changed (an image still using one keeps it).
  for stale in $(bah images --format '{{.Name}}:{{.Tag}}' --filter reference="localhost/vso-$kind-base" | grep -v ":$hash\$" || true); do
    bah rmi "$stale" >/dev/null 2>&1 || true
  done
  echo "$name"
}

build_base=$(ensure_base build)
runtime_base=$(ensure_base runtime)

version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
# The image's inputs: what the Dockerfile copies (per .dockerignore), the Dockerfile and the bases. The output
# folder also depends on this script (what it writes there), the image in the storage does not.
app_hash=$( {
  cd "$repo"
  sha256sum Dockerfile .dockerignore package.json package-lock.json tsconfig.json
  find src -type f ! -name '*.test.ts' | LC_ALL=C sort | xargs sha256sum
  for b in "$build_base" "$runtime_base"; do bah inspect --type image --format '{{.FromImageID}}' "$b"; done
} | sha)
out="$root/app-$( { echo "$app_hash"; sha256sum < "$0"; } | sha)"
tag="localhost/vault-sync-operator:$version-$app_hash"

if [ -s "$out/vault-sync-operator.oci.tar" ] && [ -s "$out/sbom.cdx.json" ] && [ -s "$out/image.json" ]; then
  log "up to date: $out"
else
  # (Under the lock: a *.tmp folder left here is from a build that failed.)
  rm -rf "$out" "$root"/app-*.tmp; mkdir -p "$out.tmp"
  if has_image "$tag"; then log "$tag is in the storage already"; else
    log "buildah bud (BUILD_IMAGE=$build_base RUNTIME_IMAGE=$runtime_base)"
    start=$SECONDS
    # --network host: npm ci in the build stage reaches the registry as this machine does. Explicit ulimits:
    # buildah's defaults (nofile 1048576) are above this machine's hard limits and it cannot raise them.
    nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
    nproc=4096
    # TMPDIR: buildah keeps RUN --mount=type=cache folders (npm's cache) there, under the project's cache.
    # VSO_IMAGE_OFFLINE=1: the build runs in a network namespace of its own with no interface but loopback
    # (chroot isolation cannot take --network none), so npm can only use that cache: proof of an offline build.
    offline=(); [ -n "${VSO_IMAGE_OFFLINE:-}" ] && offline=(unshare --net) && log "offline: no network in the build"
    mkdir -p "$root/tmp"
    TMPDIR="$root/tmp" "${offline[@]}" buildah "${store_args[@]}" bud --isolation chroot --pull=never --network host --layers=false --timestamp 0 \
      --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
      --build-arg BUILD_IMAGE="$build_base" --build-arg RUNTIME_IMAGE="$runtime_base" --build-arg VERSION="$version" \
      -f "$repo/Dockerfile" -t "$tag" "$repo" >&2
    log "built $tag in $((SECONDS - start)) s"
  fi
  bah push --quiet "$tag" "oci-archive:$out.tmp/vault-sync-operator.oci.tar:vault-sync-operator:$version" >&2

  # The runtime stage's /app, unpacked from the image, for its SBOM (npm reads the installed tree). The folder
  # is named after the package: npm sbom names the root component after its folder.
  ctr=$(bah from --pull-never "$tag")
  mnt=$(bah mount "$ctr")
  app="$out.tmp/vault-sync-operator"
  cp -a "$mnt/app" "$app"
  bah umount "$ctr" >/dev/null; bah rm "$ctr" >/dev/null
  # npm sbom checks the tree against every declared dependency, dev ones included, even with --omit=dev:
  # the copy's package.json loses its devDependencies (none of them is installed, which is the point).
  node -e 'const f=process.argv[1], p=JSON.parse(require("fs").readFileSync(f)); delete p.devDependencies; require("fs").writeFileSync(f, JSON.stringify(p))' "$app/package.json"
  ( cd "$app" && npm sbom --omit=dev --sbom-format=cyclonedx --sbom-type=application ) > "$out.tmp/sbom.cdx.json" \
    || die "npm sbom failed"
  rm -rf "$app"

  # Facts for DEPLOYMENT.md and the tests: the image's digest, its layers, the bases it was built on.
  bah inspect --type image "$tag" > "$out.tmp/inspect.json"
  node -e '
    const [inspect, tag, version, buildBase, runtimeBase, runtimeLayers] = process.argv.slice(1);
    const i = JSON.parse(require("fs").readFileSync(inspect, "utf8"));
    const base = new Set(runtimeLayers.split(" ").filter(Boolean));
    const layers = i.OCIv1.rootfs.diff_ids.map((diffId) => ({ diffId, fromBase: base.has(diffId) }));
    console.log(JSON.stringify({ tag, version, imageId: i.FromImageID, buildBase, runtimeBase, config: i.OCIv1.config, layers }, null, 2));
  ' "$out.tmp/inspect.json" "$tag" "$version" "$build_base" "$runtime_base" \
    "$(bah inspect --type image --format '{{range .OCIv1.RootFS.DiffIDs}}{{.}} {{end}}' "$runtime_base")" > "$out.tmp/image.json"
  rm "$out.tmp/inspect.json"
  mv "$out.tmp" "$out"

  # Keep the cache small: the 5 newest outputs stay (several checkouts may share the cache), and in the
  # storage only their images; the others are for sources that changed.
  ls -1dt "$root"/app-* 2>/dev/null | grep -v '\.tmp$' | tail -n +6 | xargs -r rm -rf
  keep=$(cat "$root"/app-*/image.json 2>/dev/null | sed -n 's/^  "tag": "\(.*\)",$/\1/p')
  for old in $(bah images --format '{{.Name}}:{{.Tag}}' --filter reference='localhost/vault-sync-operator'); do
    grep -qxF "$old" <<< "$keep" || bah rmi "$old" >/dev/null 2>&1 || true
  done
fi

mkdir -p "$repo/dist"
ln -sfn "$out" "$repo/dist/image"
log "image: $tag"
log "archive: $out/vault-sync-operator.oci.tar ($(du -h "$out/vault-sync-operator.oci.tar" | cut -f1)); SBOM: $out/sbom.cdx.json"
echo "$out"
