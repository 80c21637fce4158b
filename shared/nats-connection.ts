import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "nats";
import type { Config } from "./config.ts";
import type { Logger } from "./logger.ts";
import { StartupError } from "./startup-error.ts";

/** nats-server's own default `max_payload`, for a server that did not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** The largest message the connected server takes, learned when connecting (1 MiB unless set). */
export function maxPayloadOf(nc: NatsConnection): number {
  return nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
}

/** Connection options from the configuration: servers, authentication, TLS and timeouts. */
export function natsOptions(nats: Config["nats"], name: string): ConnectionOptions {
  const options: ConnectionOptions = {
    servers: [...nats.servers],
    name,
    timeout: nats.connectTimeoutMs,
    // Once connected, keep reconnecting for as long as the process lives; a publish made
    // meanwhile fails after its own timeout rather than waiting forever.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Otherwise every request (each JetStream publish) makes an Error to keep its caller's stack
    // for a failure's trace: measured at ~8% of the ingest handler's CPU for single metrics
    // (bench/, --cpu-prof). Failures still carry their message and code, which is what we use.
    noAsyncTraces: true,
  };
  if (nats.creds !== undefined) {
    // nats.js wants each block's closing line to end in a newline, which a trimmed variable (or
    // `$(cat user.creds)`) has lost; a file saved on Windows has CRLF line ends.
    const creds = `${nats.creds.replace(/\r\n/g, "\n")}\n`;
    options.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
  }
  if (nats.token !== undefined) options.token = nats.token;
  if (nats.user !== undefined) options.user = nats.user;
  if (nats.password !== undefined) options.pass = nats.password;
  // nats.js drops the scheme of a server's address, so `tls://` alone would still let a server
  // without TLS be used in clear: a `tls` option makes the client refuse such a server. A server
  // that requires TLS gets it either way, checked against the system's CAs or NATS_CA.
  if (nats.ca !== undefined) options.tls = { ca: nats.ca };
  else if (nats.servers.some((s) => s.startsWith("tls://"))) options.tls = {};
  return options;
}

/** How the client proves who it is, as `natsOptions` set it up. */
export type NatsAuthMethod = "creds" | "token" | "user/password" | "none";

export function natsAuthMethod(options: ConnectionOptions): NatsAuthMethod {
  // `natsOptions` sets an authenticator for NATS_CREDS only.
  if (options.authenticator !== undefined) return "creds";
  if (options.token !== undefined) return "token";
  if (options.user !== undefined) return "user/password";
  return "none";
}

/** Why connecting failed, in words fit for a log: names variables, never their values. */
export interface ConnectFailure {
  /** `auth`: the server refused the credentials; `tls`: no trusted TLS session was made. */
  readonly kind: "auth" | "tls" | "unreachable" | "other";
  readonly message: string;
}

const CHECK: Record<NatsAuthMethod, string> = {
  creds: "check NATS_CREDS (the contents of the user's .creds file)",
  token: "check NATS_TOKEN",
  "user/password": "check NATS_USER and NATS_PASSWORD",
  none: "the server requires them: set NATS_CREDS, NATS_TOKEN or NATS_USER and NATS_PASSWORD",
};

// Node's codes for a certificate it does not trust (X509_V_ERR_*) or a failed handshake.
const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_)|CERT|CRL|SIGNATURE|INVALID_CA|HOSTNAME_MISMATCH|PATH_LENGTH|INVALID_PURPOSE/;

/** Names what a failed `connect` means: refused credentials, TLS, or no server to reach. */
export function describeConnectError(err: unknown, options: ConnectionOptions): ConnectFailure {
  const method = natsAuthMethod(options);
  const code = codeOf(err);
  const servers = redactServers(options.servers);
  if (code === "BAD_CREDS") {
    return {
      kind: "auth",
      message: `NATS_CREDS is not the contents of a .creds file (BAD_CREDS): it needs the user JWT and the seed, each between its BEGIN and END lines`,
    };
  }
  if (
    code === "AUTHORIZATION_VIOLATION" ||
    code === "AUTHENTICATION_EXPIRED" ||
    code === "AUTHENTICATION_TIMEOUT" ||
    code === "ACCOUNT_EXPIRED" ||
    code === "BAD_AUTHENTICATION"
  ) {
    const configured = method === "none" ? "none configured" : method;
    return {
      kind: "auth",
      message: `NATS at ${servers} refused the credentials (authentication: ${configured}; ${code}); ${CHECK[method]}`,
    };
  }
  if (code === "SERVER_OPT_NA" && messageOf(err) === "tls") {
    return {
      kind: "tls",
      message: `NATS at ${servers} does not offer TLS, which NATS_URL (tls://) or NATS_CA asks for`,
    };
  }
  if (code === "TLS" || (code !== undefined && TLS_CODE.test(code))) {
    const trusted = options.tls?.ca === undefined ? "the system's CAs" : "NATS_CA";
    return {
      kind: "tls",
      message: `TLS with NATS at ${servers} failed (${code}): the server's certificate is not trusted by ${trusted} or does not name the host in NATS_URL; set NATS_CA to the PEM of the CA that signed it`,
    };
  }
  if (code === "CONNECTION_REFUSED" || code === "CONNECTION_TIMEOUT" || code === "TIMEOUT") {
    return { kind: "unreachable", message: `cannot reach NATS at ${servers} (${code})` };
  }
  return {
    kind: "other",
    message: `cannot connect to NATS at ${servers} (${code ?? messageOf(err)})`,
  };
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The servers for a log, without any `user:password@` a URL may carry. */
export function redactServers(servers: ConnectionOptions["servers"]): string {
  const list = typeof servers === "string" ? [servers] : (servers ?? []);
  return list.map((s) => s.replace(/\/\/[^/@]*@/, "//[redacted]@")).join(",");
}

/** What a failed connection attempt rejects with: a clear message, the client's error as cause. */
export class NatsConnectError extends Error {
  readonly kind: ConnectFailure["kind"];
  constructor(failure: ConnectFailure, cause: unknown) {
    super(failure.message, { cause });
    this.name = "NatsConnectError";
    this.kind = failure.kind;
  }
}

/** Hands out one shared connection, making it on first use and again after it has closed. */
export interface ConnectionProvider {
  /** Rejects with a `NatsConnectError` when connecting fails. */
  get(): Promise<NatsConnection>;
  close(): Promise<void>;
}

/**
 * With a `logger`, a failed attempt is logged at error level; the same failure again is not,
 * until a connection succeeds or the failure changes, so that an outage or a wrong secret makes
 * one line rather than one per request.
 */
export function createConnectionProvider(
  options: ConnectionOptions,
  logger?: Logger,
): ConnectionProvider {
  let current: Promise<NatsConnection> | undefined;
  let lastLogged: string | undefined;

  async function attempt(): Promise<NatsConnection> {
    try {
      const nc = await connect(options);
      lastLogged = undefined;
      return nc;
    } catch (err) {
      const failure = describeConnectError(err, options);
      if (logger && failure.message !== lastLogged) {
        lastLogged = failure.message;
        logger.error({ nats: failure.kind }, failure.message);
      }
      throw new NatsConnectError(failure, err);
    }
  }

  return {
    async get() {
      if (current) {
        const nc = await current.catch(() => undefined);
        if (nc && !nc.isClosed()) return nc;
      }
      current = attempt();
      // A failed attempt is not cached: the next request tries again.
      current.catch(() => {
        current = undefined;
      });
      return current;
    },
    async close() {
      const nc = await current?.catch(() => undefined);
      current = undefined;
      if (nc && !nc.isClosed()) await nc.drain();
    },
  };
}

/**
 * The connection's JetStream manager, or a `StartupError` saying the server has no JetStream
 * (a plain nats-server, started without -js): nothing of this service works without it.
 */
export async function jetStreamManagerOf(nc: NatsConnection, where: string) {
  try {
    return await nc.jetstreamManager();
  } catch {
    throw new StartupError(
      `the NATS server at ${where} has no JetStream: start it with -js (or a jetstream {} block in its configuration)`,
    );
  }
}
