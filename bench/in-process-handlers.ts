/**
 * Each protocol's handler in-process, as the benchmarks that measure the edge's own cost call
 * them: no key needed (local mode), a silent log, and a publisher that hands every message's
 * bytes to `onPublish` and keeps nothing.
 */
import { createAuthenticator } from "../edge/http/auth.ts";
import type { Handler } from "../edge/http/answer-requests.ts";
import { createInfluxWriteHandler } from "../edge/influx/influx-write-handler.ts";
import { createIngestHandler } from "../edge/json/ingest-handler.ts";
import { createOtlpMetricsHandler } from "../edge/otlp/otlp-metrics-handler.ts";
import type { Publisher } from "../edge/publish/publisher.ts";
import { createRemoteWriteHandler } from "../edge/remote-write/remote-write-handler.ts";
import { createLogger } from "../shared/logger.ts";
import type { Protocol } from "./protocol-bodies.ts";

/** Each protocol's handler and the path its requests are sent to. */
export function inProcessHandlers(
  onPublish: (data: Uint8Array) => void,
): Readonly<Record<Protocol, readonly [Handler, string]>> {
  const publisher: Publisher = {
    maxMessageBytes: () => Promise.resolve(1024 * 1024),
    publish: ({ data }) => {
      onPublish(data);
      return Promise.resolve({ stream: "METRICS", seq: 1, duplicate: false });
    },
  };
  const base = {
    publisher,
    authenticate: createAuthenticator({
      apiKeys: [],
      authMode: undefined,
      isLocal: true,
      scope: "influx",
    }),
    logger: createLogger("bench", "silent"),
  };
  const json = createIngestHandler({ ...base, subject: "metrics.json" });
  const influx = createInfluxWriteHandler({ ...base, subject: "metrics.influx" });
  const influxPath = "/api/v2/write?bucket=bench&org=acme&precision=ns";
  return {
    json: [json, "/api/v1/metrics"],
    ndjson: [json, "/api/v1/metrics"],
    influx: [influx, influxPath],
    "influx-gzip": [influx, influxPath],
    otlp: [createOtlpMetricsHandler({ ...base, subject: "metrics.otlp" }), "/v1/metrics"],
    "remote-write": [
      createRemoteWriteHandler({ ...base, subject: "metrics.prometheus" }),
      "/api/v1/write",
    ],
  };
}
