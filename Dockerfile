# One image for the worker (the default command) and the self-hosted ingest server
# (`node server/main.ts`): production dependencies only, no compiler, runs as the unprivileged
# user. Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
# The code belongs to root and is only readable by the user that runs it.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared ./shared
COPY edge ./edge
COPY worker ./worker
COPY server ./server
# The SQLite file lives on a volume mounted here; it must belong to the user that writes it.
RUN mkdir -p /data && chown node:node /data
USER node
ENV DATABASE_URL=sqlite:/data/metrics.db
# 9091: the worker's /healthz, /readyz, /metrics (on the container's loopback unless
# WORKER_HTTP_HOST=0.0.0.0, which a probe or scrape from outside the container needs; the health
# check below asks from inside); 8080: the ingest server.
EXPOSE 9091 8080
# The worker's liveness; the slim image has no curl, so Node's fetch asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WORKER_HTTP_PORT || 9091) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=50", "worker/main.ts"]
