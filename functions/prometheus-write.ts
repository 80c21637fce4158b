import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { remoteWriteHandlerOf } from "../edge/remote-write/remote-write-handler.ts";

/** POST /api/v1/write — Prometheus remote write 1.0. */
export default netlifyFunction(remoteWriteHandlerOf);

export const config: Config = {
  path: "/api/v1/write",
  // The same limit as the JSON API: 600 requests a minute from one client IP; requests over it
  // are answered 429 by Netlify, which Prometheus retries only with retry_on_http_429: true
  // (the snippet in docs/agent-protocols.md sets it).
  rateLimit: { windowLimit: 600, windowSize: 60, aggregateBy: ["ip", "domain"] },
};
