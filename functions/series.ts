import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { seriesHandlerOf } from "../edge/query/query-handlers.ts";

/** GET /api/v1/series — the stored series, answered by a worker over NATS. */
export default netlifyFunction(seriesHandlerOf);

export const config: Config = {
  path: "/api/v1/series",
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
