# syntax=docker/dockerfile:1
# One image for the API and every worker pool; the command picks the process:
#   node --import tsx api/main.ts       the JSON-RPC API (the default)
#   node --import tsx workers/main.ts   a worker pool, chosen by FLOW_WORKER_POOL=workflow|trajectory|cpu
#   npx prisma migrate deploy           the database migrations (a one-shot job)
#   node --import tsx deploy/registerSearchAttributes.ts   Flow's Temporal search attributes (one-shot)
# TypeScript runs through tsx (a dependency), as `npm run api` / `npm run worker` do, so the
# image holds the same sources the tests ran; the worker bundles workflows/ at start-up.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- Production node modules only (tsx, prisma and the Temporal SDK are dependencies).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- The generated Prisma client (query compiler, no native engine), and a type check.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
# `prisma generate` never connects; the schema names DATABASE_URL, so give it a placeholder.
# Then the dev-only tooling (workers/dev/: dev stack, demo, simulated model server) is dropped:
# nothing the image runs imports it (tests/unit/importBoundaries.test.ts).
RUN DATABASE_URL=postgresql://localhost/unused npx prisma generate \
 && npx tsc --noEmit \
 && rm -rf workers/dev

# --- Runtime: sources, production modules, the generated client; runs as the unprivileged `node` user.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    FLOW_API_HOST=0.0.0.0 \
    FLOW_API_PORT=8080 \
    FLOW_WORKER_HEALTH_PORT=8081 \
    FLOW_BLOB_DIR=/data/blobs \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/generated ./generated
COPY --chown=root:root package.json package-lock.json tsconfig.json prisma.config.ts ./
COPY --chown=root:root prisma ./prisma
COPY --chown=root:root training ./training
COPY --chown=root:root workflows ./workflows
COPY --chown=root:root activities ./activities
COPY --chown=root:root adapters ./adapters
COPY --from=build --chown=root:root /app/workers ./workers
COPY --chown=root:root api ./api
COPY --chown=root:root scripts/flow scripts/flow.ts ./scripts/
COPY --chown=root:root deploy/registerSearchAttributes.ts ./deploy/registerSearchAttributes.ts
# The code is owned by root and read-only to the process; only the blob directory is writable.
RUN mkdir -p /data/blobs && chown 1000:1000 /data/blobs
# Numeric, so Kubernetes can verify runAsNonRoot (1000 is the image's `node` user).
USER 1000:1000
# API (JSON-RPC, /healthz, /readyz) · worker health · OpenTelemetry Prometheus metrics · Temporal SDK metrics
EXPOSE 8080 8081 9464 9465
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "api/main.ts"]
