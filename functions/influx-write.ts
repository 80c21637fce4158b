import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { influxWriteHandlerOf } from "../edge/influx/influx-write-handler.ts";

/** POST /api/v2/write — InfluxDB v2 line protocol, answered as InfluxDB answers. */
export default netlifyFunction(influxWriteHandlerOf);

export const config: Config = {
  path: "/api/v2/write",
  // The same limit as the JSON API: 600 requests a minute from one client IP; an agent's
  // requests over it are answered 429 by Netlify, which every one of these agents retries.
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
