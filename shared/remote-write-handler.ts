import type { AgentHandlerOptions } from "./agent-publish.ts";
import type { Handler } from "./ingest-handler.ts";

/** POST /api/v1/write — Prometheus remote write 1.0. */
export function createRemoteWriteHandler(_options: AgentHandlerOptions): Handler {
  return () => Promise.resolve(new Response("not built yet", { status: 501 }));
}
