import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { queryRangeHandlerOf } from "../edge/query/query-handlers.ts";

/** GET /api/v1/query_range — step aggregates over a time range, answered by a worker over NATS. */
export default netlifyFunction(queryRangeHandlerOf);

export const config: Config = {
  path: "/api/v1/query_range",
  // Reads cost the workers more than a write costs the edge: the same 600 a minute per client.
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
