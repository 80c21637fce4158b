/**
 * What every endpoint is made from, for both hosts: the configuration, one lazily opened NATS
 * connection, the publisher and the authenticator over it, and the logger. Each endpoint's
 * handler is made from it by one function (`ingestHandlerOf`, `influxWriteHandlerOf`, …) that
 * a Netlify function (`function-runtime.ts`) and the self-hosted server (`handlers.ts`) both call.
 */
import type { AgentHandlerOptions } from "../publish/agent-publish.ts";
import {
  accessModeOf,
  createAuthenticator,
  createSourceCheck,
  type AccessOptions,
  type Authenticator,
  type KeyScope,
  type SourceCheck,
} from "./auth.ts";
import type { Config } from "../../shared/config.ts";
import type { FutureTimestampOption } from "../publish/future-timestamps.ts";
import type { Logger } from "../../shared/logger.ts";
import {
  createConnectionProvider,
  natsOptions,
  type ConnectionProvider,
} from "../../shared/nats-connection.ts";
import { createJetStreamPublisher, type Publisher } from "../publish/publisher.ts";
import { createRefusalLog } from "./refusal-log.ts";
import { agentSubject, type AgentProtocol } from "../../shared/stream-setup.ts";

export interface ContextOptions {
  /**
   * True where unauthenticated requests count as local development when no key is configured:
   * under netlify dev, or a self-hosted server listening on a loopback address only.
   */
  readonly isLocal: boolean;
  readonly logger: Logger;
  /** The NATS connection's name, as the server's monitoring shows it. */
  readonly connectionName: string;
  /**
   * The address of the client that sent a request, as the host knows it (never from a header
   * a client can set), for the log of refused requests.
   */
  readonly clientAddress?: (req: Request) => string | undefined;
}

/** The parts every handler is made from, and what closes their NATS connection (drained). */
export interface ServiceContext {
  readonly config: Config;
  readonly connections: ConnectionProvider;
  readonly publisher: Publisher;
  /** The access check of the endpoint a key of `scope` opens. */
  authenticator(scope: KeyScope): Authenticator;
  /** The check of where a request comes from, for the endpoint without keys (health). */
  readonly checkSource: SourceCheck;
  readonly logger: Logger;
  close(): Promise<void>;
}

export function createServiceContext(config: Config, options: ContextOptions): ServiceContext {
  const { isLocal, logger } = options;
  // With the logger, a refused connection is logged once, not once per request.
  const connections = createConnectionProvider(
    natsOptions(config.nats, options.connectionName),
    logger,
  );
  const refusals = createRefusalLog(logger);
  const access: AccessOptions = {
    apiKeys: config.ingest.apiKeys,
    authMode: config.ingest.authMode,
    isLocal,
    corsOrigins: config.ingest.corsOrigins,
    onRefused: (req, refusal) => {
      refusals.record(options.clientAddress?.(req), refusal.code);
    },
  };
  if (accessModeOf(access) === "unconfigured") {
    logger.error(
      "no API keys configured: every request is refused with auth_not_configured; set INGEST_API_KEYS, or INGEST_AUTH=none to accept unauthenticated requests",
    );
  }
  return {
    config,
    connections,
    publisher: createJetStreamPublisher(connections, { timeoutMs: config.nats.publishTimeoutMs }),
    authenticator: (scope) => createAuthenticator({ ...access, scope }),
    checkSource: createSourceCheck(access),
    logger,
    close: () => connections.close(),
  };
}

/** The scope of a key that opens each agent protocol's endpoint. */
const AGENT_SCOPES: Readonly<Record<AgentProtocol, KeyScope>> = {
  influx: "influx",
  otlp: "otlp",
  prometheus: "prom",
};

/** The options of an agent protocol's handler: its own subject, and its name on every log line. */
export function agentOptions(
  context: ServiceContext,
  protocol: AgentProtocol,
): AgentHandlerOptions & FutureTimestampOption {
  return {
    publisher: context.publisher,
    authenticate: context.authenticator(AGENT_SCOPES[protocol]),
    subject: agentSubject(context.config.stream, protocol),
    logger: context.logger.child({ protocol }),
    maxFutureMs: context.config.ingest.maxFutureMs,
  };
}
