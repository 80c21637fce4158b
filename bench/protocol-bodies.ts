/**
 * The request bodies of the protocol measurement: for each ingest protocol, a pool of distinct
 * bodies of the same shape (2,000 samples each), every one with its own timestamps and so its
 * own samples, made before the load starts so that making them costs neither side anything.
 * The same pool is sent to the service and to its peer.
 */
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { compress } from "snappyjs";
import { ExportMetricsServiceRequestSchema } from "../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import { WriteRequestSchema } from "../shared/gen/proto/prometheus/remote_pb.js";

export type Protocol = "json" | "ndjson" | "influx" | "influx-gzip" | "otlp" | "remote-write";

export interface BodyPool {
  readonly protocol: Protocol;
  /** Samples (stored metrics) each body becomes. */
  readonly samples: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly bodies: readonly Buffer[];
}

/** Series of each body, each with `POINTS` samples a second apart. */
const SERIES = 200;
const POINTS = 5;
/** Samples in each body: an InfluxDB line holds two fields, so lines are half of these. */
export const SAMPLES_PER_BODY = 2000;
const LINES = SAMPLES_PER_BODY / 2;

/**
 * Where the time of body `b`, point `p` falls: bodies go back from an hour ago a few seconds
 * each, so that every body's samples are its own and all are recent enough for any retention.
 */
function pointMs(startMs: number, body: number, point: number): number {
  return startMs - (body * POINTS + point) * 1000;
}

const host = (s: number) => `web-${String(s).padStart(3, "0")}`;
const value = (body: number, i: number) => ((body * 7919 + i * 104_729) % 100_000) / 100;

function lineProtocol(startMs: number, body: number): string {
  const lines: string[] = [];
  for (let l = 0; l < LINES; l++) {
    const s = l % SERIES;
    const p = Math.floor(l / SERIES);
    const ns = `${pointMs(startMs, body, p)}000000`;
    lines.push(
      `cpu,host=${host(s)},region=eu-west-1,service=checkout usage_user=${value(body, l)},usage_system=${value(body, l + 1)} ${ns}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

interface JsonMetric {
  name: string;
  value: number;
  timestamp: number;
  tags: Record<string, string>;
}

function jsonMetrics(startMs: number, body: number): JsonMetric[] {
  const metrics: JsonMetric[] = [];
  for (let i = 0; i < SAMPLES_PER_BODY; i++) {
    const s = i % SERIES;
    const p = Math.floor(i / SERIES) % POINTS;
    metrics.push({
      name: i < SAMPLES_PER_BODY / 2 ? "cpu_usage_user" : "cpu_usage_system",
      value: value(body, i),
      timestamp: pointMs(startMs, body, p),
      tags: { host: host(s), region: "eu-west-1", service: "checkout" },
    });
  }
  return metrics;
}

function remoteWrite(startMs: number, body: number): Uint8Array {
  // Two metrics of `SERIES` series each, `POINTS` samples a series: as Prometheus sends them.
  const timeseries = ["cpu_usage_user", "cpu_usage_system"].flatMap((name) =>
    Array.from({ length: SERIES }, (_, s) => ({
      labels: [
        { name: "__name__", value: name },
        { name: "host", value: host(s) },
        { name: "job", value: "node" },
        { name: "region", value: "eu-west-1" },
      ],
      samples: Array.from({ length: POINTS }, (_, p) => ({
        value: value(body, s * POINTS + p),
        timestamp: BigInt(pointMs(startMs, body, POINTS - 1 - p)),
      })),
    })),
  );
  return toBinary(WriteRequestSchema, create(WriteRequestSchema, { timeseries }));
}

const str = (key: string, v: string) =>
  ({ key, value: { value: { case: "stringValue", value: v } } }) as const;

function otlp(startMs: number, body: number): Uint8Array {
  // One resource, two gauges of `SERIES` series each, `POINTS` points a series.
  const gauge = (name: string) => ({
    name,
    data: {
      case: "gauge" as const,
      value: {
        dataPoints: Array.from({ length: SERIES * POINTS }, (_, i) => ({
          attributes: [str("host", host(i % SERIES))],
          timeUnixNano: BigInt(pointMs(startMs, body, Math.floor(i / SERIES))) * 1_000_000n,
          value: { case: "asDouble" as const, value: value(body, i) },
        })),
      },
    },
  });
  return toBinary(
    ExportMetricsServiceRequestSchema,
    create(ExportMetricsServiceRequestSchema, {
      resourceMetrics: [
        {
          resource: { attributes: [str("service.name", "checkout"), str("region", "eu-west-1")] },
          scopeMetrics: [
            {
              scope: { name: "bench" },
              metrics: [gauge("cpu.usage.user"), gauge("cpu.usage.system")],
            },
          ],
        },
      ],
    }),
  );
}

const HEADERS: Readonly<Record<Protocol, Readonly<Record<string, string>>>> = {
  json: { "content-type": "application/json" },
  ndjson: { "content-type": "application/x-ndjson" },
  influx: { "content-type": "text/plain; charset=utf-8" },
  "influx-gzip": { "content-type": "text/plain; charset=utf-8", "content-encoding": "gzip" },
  otlp: { "content-type": "application/x-protobuf" },
  "remote-write": {
    "content-type": "application/x-protobuf",
    "content-encoding": "snappy",
    "x-prometheus-remote-write-version": "0.1.0",
  },
};

function bodyOf(protocol: Protocol, startMs: number, body: number): Buffer {
  switch (protocol) {
    case "json":
      return Buffer.from(JSON.stringify({ data: jsonMetrics(startMs, body) }));
    case "ndjson":
      return Buffer.from(
        `${jsonMetrics(startMs, body)
          .map((m) => JSON.stringify(m))
          .join("\n")}\n`,
      );
    case "influx":
      return Buffer.from(lineProtocol(startMs, body));
    case "influx-gzip":
      return gzipSync(lineProtocol(startMs, body));
    case "otlp":
      return Buffer.from(otlp(startMs, body));
    case "remote-write":
      return Buffer.from(compress(remoteWrite(startMs, body)));
  }
}

/** `count` distinct bodies of `protocol`, all before `startMs` (an hour before now by default). */
export function bodyPool(
  protocol: Protocol,
  count: number,
  startMs = Date.now() - 3_600_000,
): BodyPool {
  const bodies = Array.from({ length: count }, (_, b) => bodyOf(protocol, startMs, b));
  return { protocol, samples: SAMPLES_PER_BODY, headers: HEADERS[protocol], bodies };
}
