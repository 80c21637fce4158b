import { Type, type Static } from "@sinclair/typebox";

/** A string from a fixed list: one `enum`, so that a wrong value makes one clear problem. */
function oneOf<const T extends readonly string[]>(values: T, fallback?: T[number]) {
  return Type.Unsafe<T[number]>({
    type: "string",
    enum: values,
    ...(fallback === undefined ? {} : { default: fallback }),
  });
}

/**
 * Every environment variable the service reads, with its default. The configuration table in
 * docs/configuration.md documents the same list (a test compares them). Values arrive as strings and are coerced to the declared types.
 * Compiled at build time (shared/gen/compiled-config-validator.js, `npm run generate:validators`),
 * so that reading the configuration loads neither TypeBox nor ajv.
 */
export const ConfigEnv = Type.Object({
  NATS_URL: Type.String({ default: "nats://127.0.0.1:4222" }),
  NATS_CREDS: Type.Optional(Type.String({ minLength: 1 })),
  NATS_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  NATS_USER: Type.Optional(Type.String({ minLength: 1 })),
  NATS_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  NATS_CA: Type.Optional(Type.String({ minLength: 1 })),
  NATS_STREAM: Type.String({ default: "METRICS", pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  NATS_SUBJECT_PREFIX: Type.String({ default: "metrics", pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  NATS_CONSUMER: Type.String({ default: "metrics-worker", pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  NATS_DLQ_STREAM: Type.String({ default: "METRICS_DLQ", pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  NATS_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 60_000 }),
  PUBLISH_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100, maximum: 60_000 }),
  STREAM_REPLICAS: Type.Integer({ default: 1, minimum: 1, maximum: 5 }),
  STREAM_MAX_AGE_SECONDS: Type.Integer({ default: 7 * 24 * 3600, minimum: 0 }),
  STREAM_MAX_BYTES: Type.Integer({ default: 1024 ** 3, minimum: -1 }),
  STREAM_DUPLICATE_WINDOW_SECONDS: Type.Integer({ default: 120, minimum: 1 }),
  CONSUMER_ACK_WAIT_SECONDS: Type.Integer({ default: 30, minimum: 1 }),
  CONSUMER_MAX_ACK_PENDING: Type.Integer({ default: 2000, minimum: 1 }),
  CONSUMER_MAX_DELIVER: Type.Integer({ default: 10, minimum: 2 }),
  CONSUMER_BACKOFF_SECONDS: Type.String({
    default: "60,120,300,600",
    pattern: "^\\d+(,\\d+)*$",
  }),
  WORKER_BATCH_SIZE: Type.Integer({ default: 500, minimum: 1, maximum: 10_000 }),
  WORKER_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 16 }),
  WORKER_HTTP_PORT: Type.Integer({ default: 9091, minimum: 0, maximum: 65_535 }),
  WORKER_HTTP_HOST: Type.String({ default: "127.0.0.1", minLength: 1 }),
  DATABASE_URL: Type.String({
    default: "sqlite:.data/metrics.db",
    pattern: "^(sqlite:|postgres(ql)?://|remote-write\\+https?://)",
  }),
  PG_POOL_MAX: Type.Integer({ default: 4, minimum: 1, maximum: 100 }),
  PG_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100 }),
  PG_SSL: oneOf(["disable", "require", "verify-full"] as const, "disable"),
  PG_SSL_CA: Type.Optional(Type.String({ minLength: 1 })),
  REMOTE_WRITE_BEARER_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  REMOTE_WRITE_CA: Type.Optional(Type.String({ minLength: 1 })),
  RETENTION: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,5}[hdwy]$" })),
  INGEST_API_KEYS: Type.Optional(Type.String()),
  CORS_ALLOWED_ORIGINS: Type.Optional(Type.String()),
  INGEST_AUTH: Type.Optional(oneOf(["none", "local", "required"] as const)),
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65_535 }),
  HOST: Type.String({ default: "127.0.0.1", minLength: 1 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 1000 }),
  SERVE_PROCESSES: Type.Integer({ default: 1, minimum: 1, maximum: 64 }),
  MAX_FUTURE_SECONDS: Type.Integer({ default: 600, minimum: 1 }),
  LOG_LEVEL: oneOf(["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const, "info"),
});
export type ConfigEnv = Static<typeof ConfigEnv>;
