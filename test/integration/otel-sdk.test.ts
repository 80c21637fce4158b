import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Attributes, HrTime } from "@opentelemetry/api";
import { OTLPMetricExporter as JsonExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as ProtobufExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationType,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer } from "../helpers/nats-server.ts";
import { startWorker } from "../helpers/processes.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { metricOf, readRows, type StoredRow } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The OpenTelemetry JS SDK exporting to the self-hosted server through both of its OTLP/HTTP
 * exporters (OTLP/JSON, and protobuf with gzip), the worker storing into SQLite: every point
 * the SDK handed its exporter must be in the database with its exact name, value, tags and
 * time, and an export that the exporter retries adds no row.
 */
const KEY = "otlp-sdk-test-key-0001";

let dbPath: string;
let serve: ServeProcess;
let proxy: RetryProxy;
/** What afterAll stops, in the reverse order of starting. */
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = await mkdtemp(join(tmpdir(), "otel-sdk-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const setup = isolated(nats.url, "otel", dir);
  dbPath = setup.dbPath;
  const worker = startWorker(setup.env);
  cleanups.push(() => worker.stop());
  serve = await startServe({ ...setup.env, INGEST_API_KEYS: KEY });
  cleanups.push(() => serve.child.stop());
  proxy = await startRetryProxy(serve.base);
  cleanups.push(() => proxy.close());
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const EXPORTERS = {
  json: (url: string) => new JsonExporter({ url, headers: { authorization: `Bearer ${KEY}` } }),
  protobuf: (url: string) => {
    // This exporter takes its compression from the environment only, when it is made.
    process.env["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"] = "gzip";
    try {
      return new ProtobufExporter({ url, headers: { authorization: `Bearer ${KEY}` } });
    } finally {
      delete process.env["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"];
    }
  },
} as const;

/** An exporter that keeps what the SDK gave it, and the results, before passing it on. */
function recording(inner: PushMetricExporter) {
  const exported: ResourceMetrics[] = [];
  const results: number[] = [];
  const exporter: PushMetricExporter = {
    export(metrics, done) {
      exported.push(metrics);
      inner.export(metrics, (result) => {
        results.push(result.code);
        done(result);
      });
    },
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  };
  if (inner.selectAggregationTemporality) {
    exporter.selectAggregationTemporality = inner.selectAggregationTemporality.bind(inner);
  }
  return { exporter, exported, results };
}

/**
 * A MeterProvider whose instruments of every kind have recorded a few measurements under
 * `prefix`, exporting through `exporter` only when shut down.
 */
function instrumented(prefix: string, exporter: PushMetricExporter) {
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      "service.name": "otel-sdk-test",
      "service.instance.id": `${prefix}-1`,
      "host.cores": 2,
      "feature.enabled": true,
    }),
    readers: [reader],
    views: [
      {
        instrumentName: `${prefix}.sizes`,
        aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM },
      },
    ],
  });
  const meter = provider.getMeter(`${prefix}-meter`, "1.4.2");
  const requests = meter.createCounter(`${prefix}.requests`, { unit: "{request}" });
  requests.add(3, { route: "/a" });
  requests.add(2, { route: "/b", tags: ["x", "y"] });
  requests.add(4, { route: "/a" });
  const queue = meter.createUpDownCounter(`${prefix}.queue`);
  queue.add(5);
  queue.add(-2);
  meter.createGauge(`${prefix}.temperature`, { unit: "Cel" }).record(21.5, { room: "kitchen" });
  meter.createObservableGauge(`${prefix}.memory`, { unit: "By" }).addCallback((result) => {
    result.observe(123_456_789, { kind: "heap" });
  });
  const latency = meter.createHistogram(`${prefix}.latency`, { unit: "ms" });
  for (const ms of [5, 50, 500]) latency.record(ms, { route: "/a" });
  const sizes = meter.createHistogram(`${prefix}.sizes`, { unit: "By" });
  for (const bytes of [100, 2000, 2000, 70_000]) sizes.record(bytes);
  return provider;
}

/** The stored metric each exported point must become, as docs/agent-protocols.md documents it. */
function expectedRows(exports: readonly ResourceMetrics[]): Record<string, unknown>[] {
  return exports.flatMap(({ resource, scopeMetrics }) =>
    scopeMetrics.flatMap(({ scope, metrics }) =>
      metrics.flatMap((metric) => {
        const scopeTags = {
          ...tagsOf(resource.attributes),
          "otel.scope.name": scope.name,
          ...(scope.version ? { "otel.scope.version": scope.version } : {}),
        };
        return pointsOf(metric).map(({ point, value, kind, extra }) => ({
          name: metric.descriptor.name,
          value,
          timestamp: rfc3339(point.endTime),
          tags: { ...scopeTags, ...tagsOf(point.attributes) },
          kind,
          ...(metric.descriptor.unit ? { unit: metric.descriptor.unit } : {}),
          startTime: rfc3339(point.startTime),
          ...extra,
        }));
      }),
    ),
  );
}

interface ExpectedPoint {
  point: { startTime: HrTime; endTime: HrTime; attributes: Attributes };
  value: number;
  kind: string;
  extra: Record<string, unknown>;
}

function pointsOf(metric: MetricData): ExpectedPoint[] {
  switch (metric.dataPointType) {
    case DataPointType.SUM:
      return metric.dataPoints.map((point) => ({
        point,
        value: point.value,
        kind: "sum",
        extra: { temporality: "cumulative", monotonic: metric.isMonotonic },
      }));
    case DataPointType.GAUGE:
      return metric.dataPoints.map((point) => ({
        point,
        value: point.value,
        kind: "gauge",
        extra: {},
      }));
    case DataPointType.HISTOGRAM:
      return metric.dataPoints.map((point) => {
        const { count, sum, min, max, buckets } = point.value;
        return {
          point,
          value: sum ?? count,
          kind: "histogram",
          extra: {
            temporality: "cumulative",
            histogram: { count, sum, min, max, bounds: buckets.boundaries, counts: buckets.counts },
          },
        };
      });
    case DataPointType.EXPONENTIAL_HISTOGRAM:
      return metric.dataPoints.map((point) => {
        const { count, sum, min, max, scale, zeroCount, positive, negative } = point.value;
        return {
          point,
          value: sum ?? count,
          kind: "exponential_histogram",
          extra: {
            temporality: "cumulative",
            exponentialHistogram: {
              count,
              sum,
              min,
              max,
              scale,
              zeroCount,
              zeroThreshold: 0,
              positive: { offset: positive.offset, counts: positive.bucketCounts },
              negative: { offset: negative.offset, counts: negative.bucketCounts },
            },
          },
        };
      });
  }
}

/** Attribute values as tags: strings as they are, numbers and booleans as text, arrays as JSON. */
function tagsOf(attributes: Attributes): Record<string, string> {
  return Object.fromEntries(
    Object.entries(attributes).map(([key, value]) => [
      key,
      typeof value === "string"
        ? value
        : Array.isArray(value)
          ? JSON.stringify(value)
          : String(value),
    ]),
  );
}

/** RFC 3339 in UTC with nine fraction digits. */
function rfc3339([seconds, nanos]: HrTime): string {
  const ns = BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, -1)}${String(ns % 1_000_000n).padStart(6, "0")}Z`;
}

function rowsNamed(prefix: string): StoredRow[] {
  return readRows(dbPath).filter((row) => row.name?.startsWith(`${prefix}.`));
}

/** Waits until the rows of `prefix` are as many as expected, then returns their metrics. */
async function storedMetrics(prefix: string, count: number): Promise<Record<string, unknown>[]> {
  const rows = await waitFor(
    `${count} rows of ${prefix}`,
    () => {
      const found = rowsNamed(prefix);
      return found.length >= count ? found : undefined;
    },
    20_000,
  );
  return rows.map((row) => ({ ...metricOf(row), time_ms: row.time_ms }));
}

/** An expected metric as stored: its time in milliseconds (`time_ms`) instead of its timestamp. */
function asStored(metric: Record<string, unknown>): Record<string, unknown> {
  const { timestamp, ...rest } = metric;
  return { ...rest, time_ms: Date.parse(String(timestamp)) };
}

/** The server's log lines of accepted requests whose every message JetStream already held. */
function duplicateLogLines(): number {
  return serve.child
    .output()
    .split("\n")
    .filter((line) => line.includes('"duplicates":1')).length;
}

/** What each exporter sends: OTLP/JSON plain, protobuf gzipped as it was told. */
const HEADERS = {
  json: { "content-type": "application/json", "content-encoding": undefined },
  protobuf: { "content-type": "application/x-protobuf", "content-encoding": "gzip" },
};

const byNameAndTags = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  const key = (m: Record<string, unknown>) => JSON.stringify([m["name"], m["tags"], m["time_ms"]]);
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
};

describe.each(Object.keys(EXPORTERS) as (keyof typeof EXPORTERS)[])(
  "the OpenTelemetry JS SDK's %s exporter",
  (encoding) => {
    it("lands every point it exported in the database: counters, up-down counters, gauges, histograms", async () => {
      const prefix = `${encoding}-all`;
      const { exporter, exported, results } = recording(
        EXPORTERS[encoding](`${serve.base}/v1/metrics`),
      );
      const provider = instrumented(prefix, exporter);
      // Shutting the provider down collects and exports once more, the only time here.
      await provider.shutdown();
      expect(results).toEqual([0]);
      const expected = expectedRows(exported);
      // 2 counter series, 1 up-down counter, 2 gauges, 1 histogram, 1 exponential histogram.
      expect(expected).toHaveLength(7);
      const stored = await storedMetrics(prefix, expected.length);
      // Times are stored to the millisecond.
      expect(stored.sort(byNameAndTags)).toEqual(expected.map(asStored).sort(byNameAndTags));
    });

    it("adds no row when the exporter resends a batch that was in fact stored", async () => {
      const prefix = `${encoding}-retry`;
      const duplicatesBefore = duplicateLogLines();
      proxy.failAfterForwarding(1);
      const { exporter, exported, results } = recording(
        EXPORTERS[encoding](`${proxy.base}/v1/metrics`),
      );
      const provider = instrumented(prefix, exporter);
      // Shutting the provider down collects and exports once more, the only time here.
      await provider.shutdown();
      expect(results).toEqual([0]);
      // The proxy forwarded the batch, answered 503, and the exporter sent the same batch again.
      const sent = proxy.takeRequests();
      expect(sent.map((r) => r.answered)).toEqual([503, 200]);
      expect(sent[1]?.body.equals(sent[0]?.body ?? Buffer.alloc(0))).toBe(true);
      expect(sent[0]?.headers).toEqual(HEADERS[encoding]);
      const expected = expectedRows(exported);
      const stored = await storedMetrics(prefix, expected.length);
      expect(stored.sort(byNameAndTags)).toEqual(expected.map(asStored).sort(byNameAndTags));
      // The second delivery reached the server and was recognised as the first one's duplicate.
      await waitFor("the server's log of the resent batch", () =>
        duplicateLogLines() > duplicatesBefore ? true : undefined,
      );
      // Whatever the worker still had to do with the resend is done after a second more.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(rowsNamed(prefix)).toHaveLength(expected.length);
    });
  },
);

interface SeenRequest {
  body: Buffer;
  headers: Record<string, string | undefined>;
  answered: number;
}

/** A forwarding proxy that can answer a forwarded request with 503, so that the client retries. */
interface RetryProxy {
  readonly base: string;
  /** The next `n` requests are forwarded, and then answered 503 with Retry-After: 1. */
  failAfterForwarding(n: number): void;
  /** The requests seen since the last call, with what the proxy answered. */
  takeRequests(): SeenRequest[];
  close(): Promise<void>;
}

async function startRetryProxy(target: string): Promise<RetryProxy> {
  let failures = 0;
  let seen: SeenRequest[] = [];
  async function relay(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const name of ["content-type", "content-encoding", "authorization"]) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const upstream = await fetch(`${target}${req.url ?? "/"}`, {
      method: req.method ?? "POST",
      headers,
      body,
    });
    const answer = Buffer.from(await upstream.arrayBuffer());
    const seenHeaders = {
      "content-type": req.headers["content-type"],
      "content-encoding": req.headers["content-encoding"],
    };
    if (failures > 0) {
      failures--;
      seen.push({ body, headers: seenHeaders, answered: 503 });
      res.writeHead(503, { "retry-after": "1" }).end();
      return;
    }
    seen.push({ body, headers: seenHeaders, answered: upstream.status });
    const type = upstream.headers.get("content-type");
    res.writeHead(upstream.status, type === null ? {} : { "content-type": type }).end(answer);
  }
  const server: Server = createServer((req, res) => {
    relay(req, res).catch((err: unknown) => {
      res.writeHead(502).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    base: `http://127.0.0.1:${port}`,
    failAfterForwarding(n) {
      failures = n;
    },
    takeRequests() {
      const taken = seen;
      seen = [];
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
