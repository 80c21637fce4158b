import { answerRequests, type Handler } from "../http/answer-requests.ts";
import type { Authenticator } from "../http/auth.ts";
import { createCors, NO_CORS, type Cors } from "../http/cors.ts";
import { ApiError } from "../http/errors.ts";
import type { ServiceContext } from "../http/service-context.ts";
import { jsonResponse } from "../http/http-response.ts";
import type { Logger } from "../../shared/logger.ts";
import { createQueryClient, type QueryClient } from "./query-client.ts";
import { rangeQueryOf, seriesQueryOf } from "./query-params.ts";

export interface QueryHandlerOptions {
  readonly client: QueryClient;
  readonly authenticate: Authenticator;
  readonly logger: Logger;
  /** The time a range without `end` ends at; defaults to `Date.now`. */
  readonly now?: () => number;
  readonly cors?: Cors;
}

/** A read endpoint: GET only, the key checked, then `read` answered with `{status, series}`. */
function readEndpoint(
  options: QueryHandlerOptions,
  read: (params: URLSearchParams) => Promise<unknown[]>,
): Handler {
  const answer = answerRequests(options.logger, async (req, requestId) => {
    if (req.method !== "GET") {
      throw new ApiError("method_not_allowed", `${req.method} is not allowed here; use GET.`);
    }
    const refusal = options.authenticate(req);
    if (refusal) throw refusal;
    const series = await read(new URL(req.url).searchParams);
    return jsonResponse(
      200,
      { status: "ok", series },
      { "x-request-id": requestId, "cache-control": "no-store" },
    );
  });
  const cors = options.cors ?? NO_CORS;
  return async (req) => {
    const preflight = cors.preflight(req);
    if (preflight) return preflight;
    const res = await answer(req);
    if (res.status === 405) res.headers.set("allow", "GET");
    return cors.decorate(req, res);
  };
}

/** `GET /api/v1/series`: the series stored under a name (every name without one). */
export function createSeriesHandler(options: QueryHandlerOptions): Handler {
  return readEndpoint(options, (params) => options.client.series(seriesQueryOf(params)));
}

/** `GET /api/v1/query_range`: one aggregate per step bucket holding samples, per series. */
export function createQueryRangeHandler(options: QueryHandlerOptions): Handler {
  const now = options.now ?? Date.now;
  return readEndpoint(options, (params) => options.client.range(rangeQueryOf(params, now())));
}

function optionsOf(context: ServiceContext): QueryHandlerOptions {
  return {
    client: createQueryClient({
      connections: context.connections,
      streamName: context.config.stream.name,
    }),
    authenticate: context.authenticator("read"),
    logger: context.logger.child({ endpoint: "query" }),
    cors: createCors(context.config.ingest.corsOrigins, "GET"),
  };
}

/** The series endpoint as every host makes it, from the service's context. */
export function seriesHandlerOf(context: ServiceContext): Handler {
  return createSeriesHandler(optionsOf(context));
}

/** The query_range endpoint as every host makes it, from the service's context. */
export function queryRangeHandlerOf(context: ServiceContext): Handler {
  return createQueryRangeHandler(optionsOf(context));
}
