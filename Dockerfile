# syntax=docker/dockerfile:1
# vault-sync-operator: a two-stage build. The runtime image is distroless Node 20 (no shell, no package
# manager), runs as the unprivileged user 65532 and needs no writable root filesystem (the chart mounts a
# small /tmp). Build: docker build -t vault-sync-operator:0.1.0 .

ARG NODE_VERSION=20

# --- build: compile TypeScript, then keep only the production dependencies ---
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# Only src/ is compiled: the local test environment (testenv/, `npm run local`) is not part of the image.
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime ---
FROM gcr.io/distroless/nodejs20-debian12:nonroot AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vault-sync-operator" \
      org.opencontainers.image.description="Syncs the Kubernetes Secrets used by annotated Deployments into Vault / OpenBao KV" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
COPY --from=build --chown=65532:65532 /src/package.json ./package.json
COPY --from=build --chown=65532:65532 /src/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/dist/src ./dist/src
USER 65532:65532
# /metrics, /healthz, /readyz, /health and the dashboard (METRICS_PORT)
EXPOSE 8080
# distroless/nodejs's entrypoint is node itself.
CMD ["dist/src/main.js"]
