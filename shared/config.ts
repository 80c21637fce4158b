import { X509Certificate } from "node:crypto";
import type { ErrorObject } from "ajv";
import { apiKeyProblems, groupApiKeyItems } from "./api-keys.ts";
import { configVariables, validateConfigEnv } from "./gen/compiled-config-validator.js";
import type { ConfigEnv } from "./config-schema.ts";
import { exitWith } from "./startup-error.ts";

/** The service's configuration, parsed once and frozen. */
export interface Config {
  readonly nats: {
    readonly servers: readonly string[];
    readonly creds: string | undefined;
    readonly token: string | undefined;
    readonly user: string | undefined;
    readonly password: string | undefined;
    /** PEM of the CA that signed the NATS servers' certificates (TLS with a private CA). */
    readonly ca: string | undefined;
    readonly connectTimeoutMs: number;
    readonly publishTimeoutMs: number;
  };
  readonly stream: {
    readonly name: string;
    /** Subjects of the stream are `<prefix>.>`; the JSON API publishes to `<prefix>.json`. */
    readonly subjectPrefix: string;
    readonly replicas: number;
    readonly maxAgeSeconds: number;
    readonly maxBytes: number;
    readonly duplicateWindowSeconds: number;
    readonly dlqName: string;
  };
  readonly consumer: {
    readonly name: string;
    readonly ackWaitSeconds: number;
    readonly maxAckPending: number;
    readonly maxDeliver: number;
    /**
     * How long each redelivery waits for its ack, after the first delivery's `ackWaitSeconds`;
     * the last value holds for the deliveries after it.
     */
    readonly backoffSeconds: readonly number[];
  };
  readonly worker: {
    readonly batchSize: number;
    /** Most batches being stored at once. */
    readonly concurrency: number;
    readonly httpPort: number;
    /** The address `/healthz`, `/readyz` and `/metrics` listen on (loopback by default). */
    readonly httpHost: string;
  };
  readonly database: {
    /** `sqlite:<path>` or `postgres://…`. */
    readonly url: string;
    readonly pgPoolMax: number;
    readonly pgStatementTimeoutMs: number;
    /** `require`: TLS without checking the certificate; `verify-full`: TLS, checked. */
    readonly pgSsl: "disable" | "require" | "verify-full";
    /** PEM of the CA that signed the server's certificate, for `verify-full`. */
    readonly pgSslCa: string | undefined;
    /** For `remote-write+…`: sent as `Authorization: Bearer`. */
    readonly remoteWriteBearerToken?: string | undefined;
    /** For `remote-write+https://…`: PEM of the CA that signed the receiver's certificate. */
    readonly remoteWriteCa?: string | undefined;
    /** How long samples are kept (`RETENTION`), in milliseconds; undefined: for ever. */
    readonly retentionMs: number | undefined;
  };
  readonly ingest: {
    /** `INGEST_API_KEYS` entries, each with its `@scopes` (see api-keys.ts). */
    readonly apiKeys: readonly string[];
    readonly authMode: "none" | "local" | "required" | undefined;
    /** Origins whose pages may call the API from a browser; empty: CORS off. */
    readonly corsOrigins: readonly string[];
    /** The self-hosted server's port and address; on a loopback address it counts as local. */
    readonly port: number;
    readonly host: string;
    /** How long the self-hosted server waits for a whole request, body included. */
    readonly requestTimeoutMs: number;
    /** How many server processes the self-hosted server runs on its port (`SERVE_PROCESSES`). */
    readonly processes: number;
    /** How far past its receive time a metric's timestamp may be; later ones are refused. */
    readonly maxFutureMs: number;
  };
  readonly logLevel: string;
}

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    // One problem is one line; several are listed, one a line.
    super(
      problems.length === 1
        ? `invalid configuration: ${problems.join("")}`
        : `invalid configuration:\n  - ${problems.join("\n  - ")}`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Parses the configuration from an environment. Every problem is reported at once, in a
 * `ConfigError`, naming the variables (never their values, which may be secrets).
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const raw: Record<string, string> = {};
  for (const key of configVariables) {
    const value = env[key];
    // An empty variable means "not set", as it does in most shells and .env files.
    if (value !== undefined && value.trim() !== "") raw[key] = value.trim();
  }
  // The rules across variables read the values as given, so that they are checked (and
  // reported) even when the schema refuses some other variable.
  const given: Readonly<Record<string, string>> = { ...raw };
  const problems = validateConfigEnv(raw) ? [] : envProblems(validateConfigEnv.errors ?? []);

  const servers = listOf(given["NATS_URL"] ?? "nats://127.0.0.1:4222");
  servers.forEach((server, i) => {
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+\/?$/.test(server) && !/^[^\s:/]+:\d+$/.test(server)) {
      // The entry itself is not repeated: it may hold a user and password.
      problems.push(`NATS_URL: entry ${i + 1} is not a nats://, tls:// or host:port address`);
    }
  });
  if ((given["NATS_USER"] === undefined) !== (given["NATS_PASSWORD"] === undefined)) {
    problems.push("NATS_USER and NATS_PASSWORD: set both or neither");
  }
  const apiKeys = groupApiKeyItems(listOf(given["INGEST_API_KEYS"] ?? ""));
  problems.push(...apiKeyProblems(apiKeys));
  const authMode = given["INGEST_AUTH"];
  if (apiKeys.length > 0 && (authMode === "none" || authMode === "local")) {
    problems.push(`INGEST_AUTH: is ${authMode} while INGEST_API_KEYS is set; unset one of them`);
  }
  for (const name of ["NATS_CA", "PG_SSL_CA", "REMOTE_WRITE_CA"]) {
    const pem = given[name];
    // Node ignores a CA it cannot read and then reports the server's certificate as untrusted.
    if (pem !== undefined && !isCertificate(pem)) {
      problems.push(`${name}: is not a PEM certificate`);
    }
  }
  listOf(given["CORS_ALLOWED_ORIGINS"] ?? "").forEach((origin, i) => {
    if (origin !== "*" && !/^https?:\/\/[^\s/]+$/.test(origin)) {
      problems.push(
        `CORS_ALLOWED_ORIGINS: entry ${i + 1} is not an origin such as https://app.example.com, or *`,
      );
    }
  });
  if ((given["NATS_STREAM"] ?? "METRICS") === (given["NATS_DLQ_STREAM"] ?? "METRICS_DLQ")) {
    problems.push("NATS_DLQ_STREAM: must differ from NATS_STREAM");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const e = raw as unknown as ConfigEnv;

  return deepFreeze({
    nats: {
      servers,
      creds: e.NATS_CREDS,
      token: e.NATS_TOKEN,
      user: e.NATS_USER,
      password: e.NATS_PASSWORD,
      ca: e.NATS_CA,
      connectTimeoutMs: e.NATS_CONNECT_TIMEOUT_MS,
      publishTimeoutMs: e.PUBLISH_TIMEOUT_MS,
    },
    stream: {
      name: e.NATS_STREAM,
      subjectPrefix: e.NATS_SUBJECT_PREFIX,
      replicas: e.STREAM_REPLICAS,
      maxAgeSeconds: e.STREAM_MAX_AGE_SECONDS,
      maxBytes: e.STREAM_MAX_BYTES,
      duplicateWindowSeconds: e.STREAM_DUPLICATE_WINDOW_SECONDS,
      dlqName: e.NATS_DLQ_STREAM,
    },
    consumer: {
      name: e.NATS_CONSUMER,
      ackWaitSeconds: e.CONSUMER_ACK_WAIT_SECONDS,
      maxAckPending: e.CONSUMER_MAX_ACK_PENDING,
      maxDeliver: e.CONSUMER_MAX_DELIVER,
      backoffSeconds: listOf(e.CONSUMER_BACKOFF_SECONDS).map(Number),
    },
    worker: {
      batchSize: e.WORKER_BATCH_SIZE,
      concurrency: e.WORKER_CONCURRENCY,
      httpPort: e.WORKER_HTTP_PORT,
      httpHost: e.WORKER_HTTP_HOST,
    },
    database: {
      url: e.DATABASE_URL,
      pgPoolMax: e.PG_POOL_MAX,
      pgStatementTimeoutMs: e.PG_STATEMENT_TIMEOUT_MS,
      pgSsl: e.PG_SSL,
      pgSslCa: e.PG_SSL_CA,
      remoteWriteBearerToken: e.REMOTE_WRITE_BEARER_TOKEN,
      remoteWriteCa: e.REMOTE_WRITE_CA,
      retentionMs: e.RETENTION === undefined ? undefined : durationMs(e.RETENTION),
    },
    ingest: {
      apiKeys,
      authMode: e.INGEST_AUTH,
      corsOrigins: listOf(e.CORS_ALLOWED_ORIGINS ?? ""),
      port: e.PORT,
      host: e.HOST,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      processes: e.SERVE_PROCESSES,
      maxFutureMs: e.MAX_FUTURE_SECONDS * 1000,
    },
    logLevel: e.LOG_LEVEL,
  });
}

/**
 * The configuration of a process that cannot do anything without one: on a bad configuration,
 * every problem goes to stderr under the program's name and the process exits 1, before it has
 * connected to anything.
 */
export function loadConfigOrExit(
  program: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    exitWith(program, err.message);
  }
}

function isCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** Milliseconds of a `RETENTION` value: a number and a unit, h, d, w or y (365 days). */
function durationMs(text: string): number {
  const units = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 };
  return Number(text.slice(0, -1)) * units[text.slice(-1) as keyof typeof units];
}

function listOf(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** One line per variable the schema refused, naming the allowed values where there is a list. */
/** What a variable refused by its pattern must look like, said in words rather than a regex. */
const PATTERN_HINTS: Readonly<Record<string, string>> = {
  DATABASE_URL:
    "must be sqlite:<path of a file>, postgres://user:password@host:port/database or remote-write+http(s)://host:port/path",
  RETENTION: "must be a number and a unit, h, d, w or y (e.g. 30d)",
};

function envProblems(errors: readonly ErrorObject[]): string[] {
  return errors.map((e) => {
    const variable = e.instancePath.slice(1) || "environment";
    const allowed =
      e.keyword === "enum" ? (e.params as { allowedValues?: unknown[] }).allowedValues : undefined;
    if (allowed) return `${variable}: must be one of ${allowed.join(", ")}`;
    const hint = e.keyword === "pattern" ? PATTERN_HINTS[variable] : undefined;
    return `${variable}: ${hint ?? e.message ?? "is invalid"}`;
  });
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (typeof child === "object" && child !== null) deepFreeze(child as object);
  }
  return Object.freeze(value);
}
