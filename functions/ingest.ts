import type { Config } from "@netlify/functions";
import { netlifyFunction } from "../shared/function-runtime.ts";

/** POST /api/v1/metrics — every method reaches the handler, which answers 405 for all but POST. */
export default netlifyFunction((h) => h.ingest);

export const config: Config = { path: "/api/v1/metrics" };
