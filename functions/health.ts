import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../edge/http/function-runtime.ts";
import { healthHandlerOf } from "../edge/http/health-handler.ts";

/** GET /api/v1/health — 200 when JetStream answers and the stream exists, else 503. */
export default netlifyFunction(healthHandlerOf);

export const config: Config = { path: "/api/v1/health" };
