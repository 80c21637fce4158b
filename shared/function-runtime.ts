/**
 * The functions' lazy setup: configuration, logger, the NATS connection and the handlers, made
 * on the first request and kept for as long as the function instance stays warm. The NATS
 * connection here is the one module-level singleton of the service.
 */
import { createAuthenticator } from "./auth.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { ApiError } from "./errors.ts";
import { createHealthHandler } from "./health-handler.ts";
import { errorResponse } from "./http-response.ts";
import { createIngestHandler, type Handler } from "./ingest-handler.ts";
import { createLogger } from "./logger.ts";
import { createConnectionProvider, natsOptions } from "./nats-connection.ts";
import { createJetStreamPublisher } from "./publisher.ts";
import { requestIdOf } from "./request-id.ts";
import { jsonSubject } from "./stream-setup.ts";

interface Handlers {
  readonly ingest: Handler;
  readonly health: Handler;
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
  const logger = createLogger("ingest", config.logLevel);
  const connections = createConnectionProvider(natsOptions(config.nats, "metrics-ingest"));
  // netlify dev sets NETLIFY_DEV; on Netlify itself it is never set.
  const isLocal = env["NETLIFY_DEV"] === "true";
  if (config.ingest.apiKeys.length === 0 && !isLocal && config.ingest.authMode !== "none") {
    logger.error(
      "no API keys configured: every request is refused with auth_not_configured; set INGEST_API_KEYS, or INGEST_AUTH=none to accept unauthenticated requests",
    );
  }
  return {
    ingest: createIngestHandler({
      publisher: createJetStreamPublisher(connections, { timeoutMs: config.nats.publishTimeoutMs }),
      authenticate: createAuthenticator({ ...config.ingest, isLocal }),
      subject: jsonSubject(config.stream),
      logger,
    }),
    health: createHealthHandler({
      connections,
      streamName: config.stream.name,
      timeoutMs: config.nats.publishTimeoutMs,
      logger,
    }),
  };
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
