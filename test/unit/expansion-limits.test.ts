import { describe, expect, it } from "vitest";
import type { Handler } from "../../edge/http/answer-requests.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { createInfluxWriteHandler } from "../../edge/influx/influx-write-handler.ts";
import { EXPANSION_LIMITS } from "../../shared/limits.ts";
import { createOtlpMetricsHandler } from "../../edge/otlp/otlp-metrics-handler.ts";
import { createRemoteWriteHandler } from "../../edge/remote-write/remote-write-handler.ts";
import { agentOptions, publishedMetrics } from "../helpers/agent.ts";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { errorCodeOf } from "../helpers/error-code.ts";
import * as payloads from "../helpers/payloads.ts";

/**
 * The expansion bounds through each protocol's handler (publishing to a fake publisher): the
 * three amplification payloads are refused before anything is published, honest batches of
 * each protocol's usual shape are taken whole.
 */
// A day after the payloads start: a batch catching up reaches hours past their first sample.
const NOW = 1_777_680_000_000;
type Protocol = keyof typeof payloads.PATHS;

function handlerOf(protocol: Protocol) {
  const { options, published } = agentOptions(`metrics.${protocol}`, NOW);
  const make: Record<Protocol, () => Handler> = {
    influx: () => createInfluxWriteHandler(options),
    otlp: () => createOtlpMetricsHandler(options),
    prometheus: () => createRemoteWriteHandler(options),
    json: () => createIngestHandler(options),
  };
  return { handler: make[protocol](), published };
}

async function send(protocol: Protocol, payload: payloads.Payload) {
  const { handler, published } = handlerOf(protocol);
  const res = await handler(
    new Request(`http://localhost${payloads.PATHS[protocol]}`, {
      method: "POST",
      headers: payload.headers,
      body: payload.body,
    }),
  );
  return { res, published, protocol };
}

describe("a request that would expand beyond its bound", () => {
  it.each([
    ["64 maximum tags × 10,000 fields, line protocol", "influx", payloads.amplifyingLineProtocol()],
    [
      "64 maximum labels × 10,000 samples, remote write",
      "prometheus",
      payloads.amplifyingRemoteWrite(),
    ],
    ["64 maximum resource attributes × 10,000 points, OTLP", "otlp", payloads.amplifyingOtlp()],
  ] as const)("%s: 413 expansion_over_ratio, nothing published", async (_, protocol, payload) => {
    // Each of them would have become some 250 MB of stored metrics from 100–230 kB of body.
    expect(payload.decodedBytes * EXPANSION_LIMITS.bodyMultiple).toBeLessThan(
      EXPANSION_LIMITS.maxBytes,
    );
    const { res, published } = await send(protocol, payload);
    expect(res.status).toBe(413);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(errorCodeOf(res.headers.get("content-type"), body)).toBe("expansion_over_ratio");
    expect(published).toEqual([]);
  });

  it("with a body large enough that the cap is the bound: 413 expansion_over_limit", async () => {
    const payload = payloads.amplifyingLineProtocol(24);
    expect(payload.decodedBytes * EXPANSION_LIMITS.bodyMultiple).toBeGreaterThan(
      EXPANSION_LIMITS.maxBytes,
    );
    const { res, published } = await send("influx", payload);
    expect(res.status).toBe(413);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(errorCodeOf(res.headers.get("content-type"), body)).toBe("expansion_over_limit");
    expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({
      code: "request too large",
      message: expect.stringMatching(/more than 16777216 bytes as stored/) as unknown,
    });
    expect(published).toEqual([]);
  });
});

describe("an honest large batch", () => {
  it.each([
    ["Telegraf's default inputs, 58 collections", "influx", payloads.telegrafBatch(58), 204],
    [
      "Prometheus, 3,000 series with Kubernetes labels",
      "prometheus",
      payloads.prometheusBatch(3000),
      204,
    ],
    [
      "Prometheus catching up, 2,000 samples of one series",
      "prometheus",
      payloads.prometheusBatch(1, 2000),
      204,
    ],
    ["an OpenTelemetry service, 250 routes", "otlp", payloads.otelSdkExport(250), 200],
    ["a JSON batch of 7,500 metrics", "json", payloads.jsonBatch(7500), 202],
  ] as const)("%s: taken whole", async (_, protocol, payload, status) => {
    const { res, published } = await send(protocol, payload);
    expect(res.status).toBe(status);
    const metrics =
      protocol === "json"
        ? published.flatMap((m) => {
            const decoded = decodeEnvelope(m.data);
            return decoded.ok ? decoded.envelope.metrics : [];
          })
        : publishedMetrics(published, `metrics.${protocol}`);
    expect(metrics).toHaveLength(payload.points);
    // One message whenever the broker's 1 MiB (less room for headers) allows.
    const bytes = published.reduce((sum, m) => sum + m.data.byteLength, 0);
    if (bytes <= 1024 * 1024 - 1024) expect(published).toHaveLength(1);
    else expect(published.length).toBeGreaterThan(1);
  });
});
