# syntax=docker/dockerfile:1
# vault-sync-operator: a two-stage build. The runtime image is distroless Node 20 (no shell, no package
# manager), runs as the unprivileged user 65532 and needs no writable root filesystem (the chart mounts a
# small /tmp). Every file of the application is owned by root and read-only to the user it runs as.
#
# With a registry:   docker build -t vault-sync-operator:0.1.0 .      (or: podman build / buildah bud)
# Without one:       npm run image   (stand-in bases made from Debian packages; see DEPLOYMENT.md)
#
# The bases are build arguments pinned by digest (a tag can be moved under you; a digest cannot). Bump them
# deliberately, e.g. `skopeo inspect docker://docker.io/library/node:20-bookworm-slim | jq -r .Digest`.
ARG BUILD_IMAGE=docker.io/library/node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot@sha256:2cd820156cf039c8b54ae2d2a97e424b6729070714de8707a6b79f20d56f6a9a

# --- build: compile TypeScript; install the production dependencies alone into a clean folder ---
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm's cache is a build cache mount: not in any layer, kept between builds, so that a rebuild with the same
# package-lock.json needs no registry (--prefer-offline) and is faster.
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --no-audit --no-fund --ignore-scripts --prefer-offline
COPY tsconfig.json ./
COPY src ./src
# Only src/ is compiled (the local test environment in testenv/ is not part of the image), without source
# maps: the sources they point at are not in the image. Then /app is assembled from scratch: production
# dependencies by `npm ci --omit=dev` (npm still makes the empty scope folders of dev dependencies, @jest,
# @babel...: removed), less what Node never loads (source maps, type declarations, the test folders of
# packages: 40 of their 75 MB), and nothing in it writable by anyone but root.
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npx tsc -p tsconfig.json --sourceMap false \
 && mkdir -p /app \
 && cp package.json package-lock.json /app/ \
 && cp -r dist /app/dist \
 && cd /app \
 && npm ci --omit=dev --no-audit --no-fund --ignore-scripts --prefer-offline \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && find node_modules -regextype posix-extended -type d -regex 'node_modules/(@[^/]+/)?[^/@][^/]*/(test|tests|__tests__)' \
      -prune -exec rm -rf {} + \
 && find node_modules -mindepth 1 -type d -empty -delete \
 && rm -f /app/package-lock.json \
 && chmod -R u=rwX,go=rX /app

# --- runtime ---
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vault-sync-operator" \
      org.opencontainers.image.description="Syncs the Kubernetes Secrets used by annotated Deployments into Vault / OpenBao KV" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Memory (PERFORMANCE.md, "Start-up and memory"): a 2 MiB young generation and two malloc arenas keep steady
# RSS at 149 MiB with 100k Secrets cached, instead of 192 MiB with Node's defaults, under the chart's 160Mi.
# The bench reads these two settings from here (bench/image-settings.ts): keep them in this form.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=2 \
    MALLOC_ARENA_MAX=2
# Owned by root (uid 0), mode 644/755: uid 65532 reads and runs them, and cannot change them. (COPY before
# WORKDIR: WORKDIR would create /app as the base's user, 65532.)
COPY --from=build --chown=0:0 /app /app
WORKDIR /app
USER 65532:65532
# /metrics, /healthz, /readyz, /health and the dashboard (METRICS_PORT)
EXPOSE 8080
# distroless/nodejs's entrypoint is node itself (/nodejs/bin/node).
CMD ["dist/src/main.js"]
