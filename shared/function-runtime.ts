/**
 * Wiring of the ingest and health handlers, in one place for both hosts: the Netlify functions
 * (made lazily on the first request and kept while the instance stays warm) and the self-hosted
 * server (`server/main.ts`, made once at start). The functions' NATS connection here is the one
 * module-level singleton of the service.
 */
import { createAuthenticator } from "./auth.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { createCors } from "./cors.ts";
import { ApiError } from "./errors.ts";
import { createHealthHandler } from "./health-handler.ts";
import { errorResponse } from "./http-response.ts";
import { createInfluxWriteHandler } from "./influx-write-handler.ts";
import type { Handler } from "./answer-requests.ts";
import { createIngestHandler } from "./ingest-handler.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createConnectionProvider, natsOptions } from "./nats-connection.ts";
import { createOtlpMetricsHandler } from "./otlp-metrics-handler.ts";
import { createJetStreamPublisher } from "./publisher.ts";
import { requestIdOf } from "./request-id.ts";
import { createRemoteWriteHandler } from "./remote-write-handler.ts";
import { agentSubject, jsonSubject, type AgentProtocol } from "./stream-setup.ts";

export interface Handlers {
  readonly ingest: Handler;
  readonly health: Handler;
  readonly influxWrite: Handler;
  readonly otlpMetrics: Handler;
  readonly remoteWrite: Handler;
}

export interface HandlerSetupOptions {
  /**
   * True where unauthenticated requests count as local development when no key is configured:
   * under netlify dev, or a self-hosted server listening on a loopback address only.
   */
  readonly isLocal: boolean;
  readonly logger: Logger;
  /** The NATS connection's name, as the server's monitoring shows it. */
  readonly connectionName: string;
}

/** The handlers, and what closes the NATS connection they share (drained, so nothing is lost). */
export interface HandlerSet extends Handlers {
  close(): Promise<void>;
}

/** Makes both handlers over one shared, lazily opened NATS connection. */
export function createHandlers(config: Config, options: HandlerSetupOptions): HandlerSet {
  const { isLocal, logger } = options;
  // With the logger, a refused connection is logged once, not once per request.
  const connections = createConnectionProvider(
    natsOptions(config.nats, options.connectionName),
    logger,
  );
  if (config.ingest.apiKeys.length === 0 && !isLocal && config.ingest.authMode !== "none") {
    logger.error(
      "no API keys configured: every request is refused with auth_not_configured; set INGEST_API_KEYS, or INGEST_AUTH=none to accept unauthenticated requests",
    );
  }
  const publisher = createJetStreamPublisher(connections, {
    timeoutMs: config.nats.publishTimeoutMs,
  });
  const authenticate = createAuthenticator({ ...config.ingest, isLocal });
  const agent = (protocol: AgentProtocol) => ({
    publisher,
    authenticate,
    subject: agentSubject(config.stream, protocol),
    logger: logger.child({ protocol }),
  });
  return {
    ingest: createIngestHandler({
      publisher,
      authenticate,
      subject: jsonSubject(config.stream),
      logger,
      cors: createCors(config.ingest.corsOrigins, "POST"),
    }),
    influxWrite: createInfluxWriteHandler(agent("influx")),
    otlpMetrics: createOtlpMetricsHandler(agent("otlp")),
    remoteWrite: createRemoteWriteHandler(agent("prometheus")),
    health: createHealthHandler({
      connections,
      streamName: config.stream.name,
      timeoutMs: config.nats.publishTimeoutMs,
      logger,
    }),
    close: () => connections.close(),
  };
}

let handlers: Handlers | ConfigError | undefined;

function setup(env: NodeJS.ProcessEnv): Handlers | ConfigError {
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`ingest function: ${err.message}`);
      return err;
    }
    throw err;
  }
  return createHandlers(config, {
    // netlify dev sets NETLIFY_DEV; on Netlify itself it is never set.
    isLocal: env["NETLIFY_DEV"] === "true",
    logger: createLogger("ingest", config.logLevel),
    connectionName: "metrics-ingest",
  });
}

/** The function entry point for one handler: a configuration error answers 500 on every request. */
export function netlifyFunction(
  pick: (h: Handlers) => Handler,
): (req: Request) => Promise<Response> {
  return async (req) => {
    handlers ??= setup(process.env);
    if (handlers instanceof ConfigError) {
      return errorResponse(
        new ApiError(
          "configuration_error",
          `The service is misconfigured: ${handlers.problems.join("; ")}.`,
        ),
        requestIdOf(req),
      );
    }
    return pick(handlers)(req);
  };
}
