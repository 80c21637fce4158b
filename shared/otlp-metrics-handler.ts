import type { AgentHandlerOptions } from "./agent-publish.ts";
import type { Handler } from "./ingest-handler.ts";

/** POST /v1/metrics — OTLP/HTTP metrics. */
export function createOtlpMetricsHandler(_options: AgentHandlerOptions): Handler {
  return () => Promise.resolve(new Response("not built yet", { status: 501 }));
}
