import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { compress } from "snappyjs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { DEFAULT_MAX_FUTURE_MS } from "../../edge/publish/future-timestamps.ts";
import {
  ExportMetricsServiceRequestSchema,
  ExportMetricsServiceResponseSchema,
} from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { createInfluxWriteHandler } from "../../edge/influx/influx-write-handler.ts";
import { createOtlpMetricsHandler } from "../../edge/otlp/otlp-metrics-handler.ts";
import { createRemoteWriteHandler } from "../../edge/remote-write/remote-write-handler.ts";
import { agentOptions, publishedMetrics } from "../helpers/agent.ts";
import { createAuthenticator } from "../../edge/http/auth.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";
import { post, type ErrorBody } from "../helpers/requests.ts";
import { silentLogger } from "../helpers/logger.ts";

/**
 * The bound on future timestamps, in every protocol: a sample more than MAX_FUTURE_SECONDS past
 * its request's receive time is refused the way each protocol refuses an invalid point, so that
 * no key holder can write a series' future samples before the real ones.
 */
const NOW = 1_800_000_000_000; // 2027-01-15T08:00:00Z
const BOUND_MS = DEFAULT_MAX_FUTURE_MS;
const AT_BOUND = NOW + BOUND_MS;
const PAST_BOUND = NOW + BOUND_MS + 1;
const ONE_DAY_AHEAD = NOW + 86_400_000;

/** The JSON API's handler over a fake publisher, receiving every request at NOW. */
function ingestAt(now: number, maxFutureMs?: number) {
  const publisher = fakePublisher();
  const handler = createIngestHandler({
    publisher,
    authenticate: createAuthenticator({
      apiKeys: [],
      authMode: "none",
      isLocal: false,
      scope: "json",
    }),
    subject: "metrics.json",
    logger: silentLogger,
    now: () => now,
    ...(maxFutureMs === undefined ? {} : { maxFutureMs }),
  });
  return { handler, published: publisher.published };
}

describe("the bound", () => {
  it("is ten minutes by default, as MAX_FUTURE_SECONDS' default says", () => {
    expect(BOUND_MS).toBe(600_000);
    expect(loadConfig({}).ingest.maxFutureMs).toBe(BOUND_MS);
  });
});

describe("the JSON API", () => {
  it("takes a timestamp up to the bound, and the receive time for a metric without one", async () => {
    const { handler, published } = ingestAt(NOW);
    const body = JSON.stringify({
      data: [
        { value: 1, timestamp: AT_BOUND },
        { value: 2 },
        { value: 3, timestamp: NOW - 86_400_000 },
      ],
    });
    expect((await handler(post(body))).status).toBe(202);
    expect(published).toHaveLength(1);
  });

  it("refuses the whole request with 400 invalid_metrics naming each metric past the bound", async () => {
    const { handler, published } = ingestAt(NOW);
    const body = JSON.stringify({
      data: [
        { value: 1, timestamp: NOW },
        { value: 2, timestamp: PAST_BOUND },
        { value: 3, timestamp: new Date(ONE_DAY_AHEAD).toISOString() },
        { value: "x", timestamp: ONE_DAY_AHEAD },
      ],
    });
    const res = await handler(post(body));
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as ErrorBody;
    expect(error.code).toBe("invalid_metrics");
    expect(error.details).toEqual([
      {
        index: 1,
        path: "/timestamp",
        message: "is 601 s ahead of the time the request was received; at most 600 s is accepted",
      },
      {
        index: 2,
        path: "/timestamp",
        message: "is 86400 s ahead of the time the request was received; at most 600 s is accepted",
      },
      { index: 3, path: "/value", message: "must be number" },
    ]);
    expect(published).toEqual([]);
  });

  it("follows the configured bound", async () => {
    const { handler } = ingestAt(NOW, 5_000);
    const at = (timestamp: number) => post(JSON.stringify({ data: { value: 1, timestamp } }));
    expect((await handler(at(NOW + 5_000))).status).toBe(202);
    expect((await handler(at(NOW + 5_001))).status).toBe(400);
  });
});

describe("InfluxDB line protocol", () => {
  const write = (body: string) =>
    new Request("http://localhost/api/v2/write?bucket=b&precision=ms", { method: "POST", body });

  it("refuses the request naming the first line past the bound, as for any invalid point", async () => {
    const { options, published } = agentOptions("metrics.influx", NOW);
    const handler = createInfluxWriteHandler(options);
    expect((await handler(write(`cpu v=1 ${AT_BOUND}`))).status).toBe(204);
    const res = await handler(write(`cpu v=1 ${NOW}\ncpu v=2 ${PAST_BOUND}`));
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody & { line: number; message: string };
    expect(body.line).toBe(2);
    expect(body.error.code).toBe("invalid_metrics");
    expect(body.message).toMatch(
      /^line 2: the timestamp is 601 s ahead .*; nothing was written\.$/,
    );
    expect(published).toHaveLength(1); // the first request's
  });
});

describe("OTLP", () => {
  const gauge = (times: readonly number[]) =>
    toBinary(
      ExportMetricsServiceRequestSchema,
      create(ExportMetricsServiceRequestSchema, {
        resourceMetrics: [
          {
            scopeMetrics: [
              {
                metrics: [
                  {
                    name: "temperature",
                    data: {
                      case: "gauge",
                      value: {
                        dataPoints: times.map((ms) => ({
                          timeUnixNano: BigInt(ms) * 1_000_000n,
                          value: { case: "asDouble" as const, value: 1 },
                        })),
                      },
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
  const send = (body: Uint8Array) =>
    new Request("http://localhost/v1/metrics", {
      method: "POST",
      body,
      headers: { "content-type": "application/x-protobuf" },
    });

  it("stores the points within the bound and counts the others in partial_success", async () => {
    const { options, published } = agentOptions("metrics.otlp", NOW, { auth: { scope: "otlp" } });
    const handler = createOtlpMetricsHandler(options);
    const res = await handler(send(gauge([NOW, PAST_BOUND, AT_BOUND])));
    expect(res.status).toBe(200);
    const answer = fromBinary(
      ExportMetricsServiceResponseSchema,
      new Uint8Array(await res.arrayBuffer()),
    );
    expect(answer.partialSuccess?.rejectedDataPoints).toBe(1n);
    expect(answer.partialSuccess?.errorMessage).toMatch(
      /^1 of 3 data points were refused: resource_metrics\[0\]\.scope_metrics\[0\]\.metrics\[0\]\.gauge\.data_points\[1\]: \/timestamp is 601 s ahead/,
    );
    const stored = publishedMetrics(published, "metrics.otlp");
    expect(stored.map((m) => Date.parse(String(m.timestamp)))).toEqual([NOW, AT_BOUND]);
  });

  it("answers 400 when every point is past the bound", async () => {
    const { options, published } = agentOptions("metrics.otlp", NOW, { auth: { scope: "otlp" } });
    const res = await createOtlpMetricsHandler(options)(send(gauge([ONE_DAY_AHEAD])));
    expect(res.status).toBe(400);
    expect(published).toEqual([]);
  });
});

describe("Prometheus remote write", () => {
  const send = (times: readonly number[]) =>
    new Request("http://localhost/api/v1/write", {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy" },
      body: compress(
        toBinary(
          WriteRequestSchema,
          create(WriteRequestSchema, {
            timeseries: [
              {
                labels: [{ name: "__name__", value: "up" }],
                samples: times.map((ms) => ({ value: 1, timestamp: BigInt(ms) })),
              },
            ],
          }),
        ),
      ),
    });

  it("refuses the whole request with 400, naming the sample, as for any invalid sample", async () => {
    const { options, published } = agentOptions("metrics.prometheus", NOW, {
      auth: { scope: "prom" },
    });
    const handler = createRemoteWriteHandler(options);
    expect((await handler(send([NOW, AT_BOUND]))).status).toBe(204);
    const res = await handler(send([NOW, PAST_BOUND]));
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as ErrorBody;
    expect(error.code).toBe("invalid_metrics");
    expect(error.details).toEqual([
      {
        index: 1,
        path: "/timestamp",
        message:
          "timeseries[0].samples[1]: the timestamp is 601 s ahead of the time the request was received; at most 600 s is accepted",
      },
    ]);
    expect(published).toHaveLength(1); // the first request's
  });
});
