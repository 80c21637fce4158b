# The worker's image: production dependencies only, no compiler, runs as the unprivileged user.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared ./shared
COPY worker ./worker
# The SQLite file lives on a volume mounted here; it must belong to the user that writes it.
RUN mkdir -p /data && chown node:node /data
USER node
ENV DATABASE_URL=sqlite:/data/metrics.db
CMD ["node", "worker/main.ts"]
