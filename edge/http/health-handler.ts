import { ApiError } from "./errors.ts";
import { errorResponse, internalErrorResponse, jsonResponse } from "./http-response.ts";
import type { Handler } from "./answer-requests.ts";
import type { SourceCheck } from "./auth.ts";
import type { ServiceContext } from "./service-context.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ConnectionProvider } from "../../shared/nats-connection.ts";
import { requestIdOf } from "./request-id.ts";

export interface HealthHandlerOptions {
  readonly connections: ConnectionProvider;
  readonly streamName: string;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Where requests may come from (in local development: a loopback Host); default anywhere. */
  readonly checkSource?: SourceCheck;
}

/**
 * `GET /api/v1/health`: 200 when JetStream answers and the stream exists, else 503. The body
 * holds names and counts only.
 */
export function createHealthHandler(options: HealthHandlerOptions): Handler {
  return async (req) => {
    const requestId = requestIdOf(req);
    if (req.method !== "GET" && req.method !== "HEAD") {
      const res = errorResponse(
        new ApiError("method_not_allowed", `${req.method} is not allowed here; use GET.`),
        requestId,
      );
      res.headers.set("allow", "GET, HEAD");
      return res;
    }
    const refusal = options.checkSource?.(req);
    if (refusal) return errorResponse(refusal, requestId);
    try {
      const stream = await streamInfo(options);
      return jsonResponse(
        200,
        { status: "ok", stream },
        { "x-request-id": requestId, "cache-control": "no-store" },
      );
    } catch (err) {
      if (err instanceof ApiError) {
        options.logger.warn({ requestId, code: err.code }, "health check failed");
        return errorResponse(err, requestId);
      }
      options.logger.error({ requestId, err }, "unexpected error in health check");
      return internalErrorResponse(requestId);
    }
  };
}

async function streamInfo(options: HealthHandlerOptions) {
  let nc;
  try {
    nc = await options.connections.get();
  } catch (err) {
    throw new ApiError("nats_unavailable", "The message broker cannot be reached.", { cause: err });
  }
  try {
    const jsm = await nc.jetstreamManager({ timeout: options.timeoutMs });
    const info = await jsm.streams.info(options.streamName);
    return {
      name: info.config.name,
      messages: info.state.messages,
      bytes: info.state.bytes,
      consumers: info.state.consumer_count,
    };
  } catch (err) {
    throw new ApiError("stream_unavailable", `The stream ${options.streamName} is not available.`, {
      cause: err,
    });
  }
}

/** The health handler as every host makes it, from the service's context. */
export function healthHandlerOf(context: ServiceContext): Handler {
  return createHealthHandler({
    connections: context.connections,
    streamName: context.config.stream.name,
    timeoutMs: context.config.nats.publishTimeoutMs,
    logger: context.logger,
    checkSource: context.checkSource,
  });
}
