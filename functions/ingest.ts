import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { ingestHandlerOf } from "../edge/json/ingest-handler.ts";

/** POST /api/v1/metrics — every method reaches the handler, which answers 405 for all but POST. */
export default netlifyFunction(ingestHandlerOf);

export const config: Config = {
  path: "/api/v1/metrics",
  // Netlify's rate limiting, before the function runs: at most 600 requests a minute from one
  // client IP to this site's domain; more are answered 429 by Netlify and never reach NATS.
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
