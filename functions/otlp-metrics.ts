import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { otlpMetricsHandlerOf } from "../edge/otlp/otlp-metrics-handler.ts";

/** POST /v1/metrics — OTLP/HTTP metrics, protobuf or JSON. */
export default netlifyFunction(otlpMetricsHandlerOf);

export const config: Config = {
  path: "/v1/metrics",
  // The same limit as the JSON API: 600 requests a minute from one client IP; an agent's
  // requests over it are answered 429 by Netlify, which every one of these agents retries.
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
