import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../shared/function-runtime.ts";

/** POST /api/v1/write — Prometheus remote write 1.0. */
export default netlifyFunction((h) => h.remoteWrite);

export const config: Config = {
  path: "/api/v1/write",
  // The same limit as the JSON API: 600 requests a minute from one client IP; an agent's
  // requests over it are answered 429 by Netlify, which every one of these agents retries.
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
