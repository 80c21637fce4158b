import type { AgentHandlerOptions } from "./agent-publish.ts";
import type { Handler } from "./ingest-handler.ts";

/** POST /api/v2/write — InfluxDB v2 line protocol. */
export function createInfluxWriteHandler(_options: AgentHandlerOptions): Handler {
  return () => Promise.resolve(new Response("not built yet", { status: 501 }));
}
