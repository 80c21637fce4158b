/**
 * A Netlify function's entry point (`netlifyFunction`): it makes the service's context on its
 * first request and keeps it while the instance stays warm. Each function imports only its own
 * handler, so that a function starts without loading the others' code (the protobuf messages of
 * OTLP and remote write cost ~60 ms at a cold start). The self-hosted server makes all the
 * handlers over one context (`handlers.ts`).
 */
import type { Handler } from "./answer-requests.ts";
import { ConfigError, loadConfig } from "../../shared/config.ts";
import { ApiError } from "./errors.ts";
import { errorResponse } from "./http-response.ts";
import { createLogger } from "../../shared/logger.ts";
import { requestIdOf } from "./request-id.ts";
import { createServiceContext, type ServiceContext } from "./service-context.ts";

function setup(env: NodeJS.ProcessEnv): ServiceContext | ConfigError {
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
  return createServiceContext(config, {
    // netlify dev sets NETLIFY_DEV; on Netlify itself it is never set.
    isLocal: env["NETLIFY_DEV"] === "true",
    logger: createLogger("ingest", config.logLevel),
    connectionName: "metrics-ingest",
    // Netlify's edge sets it (and netlify dev sets it to the connection's address).
    clientAddress: (req) => req.headers.get("x-nf-client-connection-ip") ?? undefined,
  });
}

/**
 * A function's entry point: its handler, made on the first request from the function's
 * context, which `env` (the process's environment on Netlify) configures. The context and its
 * NATS connection are kept while the instance stays warm; a configuration error answers 500 on
 * every request.
 */
export function netlifyFunction(
  make: (context: ServiceContext) => Handler,
  env: NodeJS.ProcessEnv = process.env,
): (req: Request) => Promise<Response> {
  let context: ServiceContext | ConfigError | undefined;
  let handler: Handler | undefined;
  return async (req) => {
    context ??= setup(env);
    if (context instanceof ConfigError) {
      return errorResponse(
        new ApiError(
          "configuration_error",
          `The service is misconfigured: ${context.problems.join("; ")}.`,
        ),
        requestIdOf(req),
      );
    }
    handler ??= make(context);
    return handler(req);
  };
}
