import type { Handlers } from "../edge/http/handlers.ts";
import { ApiError } from "../edge/http/errors.ts";
import { errorResponse } from "../edge/http/http-response.ts";
import type { Handler } from "../edge/http/answer-requests.ts";
import { requestIdOf } from "../edge/http/request-id.ts";
import { createStaticFiles } from "./static-files.ts";

/** The paths the Netlify functions serve (their `config.path`), each to the same handler. */
const ROUTES: ReadonlyMap<string, keyof Handlers> = new Map([
  ["/api/v1/metrics", "ingest"],
  ["/api/v1/health", "health"],
  ["/api/v2/write", "influxWrite"],
  ["/v1/metrics", "otlpMetrics"],
  ["/api/v1/write", "remoteWrite"],
  ["/api/v1/series", "series"],
  ["/api/v1/query_range", "queryRange"],
]);

/**
 * The self-hosted server's routing: each path to its handler, which answers every method itself
 * (405 for the ones it does not take); else a file of the live page (public/, as Netlify
 * publishes it); else a 404 in the API's error shape.
 */
export function createRouter(handlers: Handlers): Handler {
  const staticFiles = createStaticFiles();
  return async (req) => {
    const route = ROUTES.get(new URL(req.url).pathname);
    if (route !== undefined) return handlers[route](req);
    return (await staticFiles(req)) ?? notFound(req);
  };
}

function notFound(req: Request): Response {
  return errorResponse(
    new ApiError(
      "not_found",
      "There is nothing here; the API is POST /api/v1/metrics, GET /api/v1/health, GET /api/v1/series and GET /api/v1/query_range, and for agents POST /api/v2/write (InfluxDB), /v1/metrics (OTLP) and /api/v1/write (Prometheus).",
    ),
    requestIdOf(req),
  );
}
