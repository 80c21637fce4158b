/**
 * `node bench/expansion-ratios.ts`: what honest batches of each protocol become, measured as the
 * expansion bound counts it (every metric as stored: its JSON, all its tags included) and as it
 * is published (envelope version 3, shared tags once), each as a multiple of the decoded body.
 * The measurement behind `EXPANSION_LIMITS.bodyMultiple`; not part of `npm run bench`.
 *
 * Batches: what the real OpenTelemetry JS SDK's two OTLP exporters send, and what a real
 * Prometheus (`.tools/prometheus`, scraping itself) remote-writes, captured on the way; and the
 * shapes of test/helpers/payloads.ts (Telegraf's default inputs, Prometheus with Kubernetes
 * labels live and catching up, an OpenTelemetry service with a Kubernetes resource, a JSON
 * batch), beside the three amplification payloads.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { OTLPMetricExporter as JsonExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as ProtobufExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import {
  detectResources,
  hostDetector,
  osDetector,
  processDetector,
  resourceAttributesEnvDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
  serviceNameEnvDetector,
} from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeSeriesMessages } from "../shared/envelope-encoder.ts";
import { ExpansionBudget } from "../edge/publish/expansion-budget.ts";
import { decodeUtf8, pointsOfText } from "../edge/influx/influx-metrics.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { decodeRequest } from "../edge/otlp/otlp-http.ts";
import { pointsOfRequest } from "../edge/otlp/otlp-metrics.ts";
import { parseMetrics } from "../edge/json/parse-metrics.ts";
import { pointsOfWriteRequest, writeRequestOf } from "../edge/remote-write/remote-write.ts";
import { decodeSnappyBlock } from "../edge/remote-write/snappy-block.ts";
import * as payloads from "../test/helpers/payloads.ts";
import { PROJECT_ROOT, freePort, startChild } from "../test/helpers/processes.ts";

type Protocol = "influx" | "prometheus" | "otlp" | "json";

interface Captured {
  readonly name: string;
  readonly protocol: Protocol;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

interface Measured {
  readonly name: string;
  readonly decodedBytes: number;
  readonly points: number;
  /** Every metric as stored, summed: what the expansion bound counts. */
  readonly storedBytes: number;
  /** The version 3 messages it is published as (1 MiB each at most). */
  readonly publishedBytes: number;
}

const MiB = 1024 * 1024;
const NOW = Date.now();

/** A batch's metrics, made as its handler makes them, with no bound. */
function metricsOf(batch: Captured, decoded: Uint8Array): readonly Metric[] {
  const budget = new ExpansionBudget(decoded.byteLength, Number.POSITIVE_INFINITY);
  switch (batch.protocol) {
    case "influx": {
      const target = { bucket: "b", org: "o", precision: "ns" } as const;
      return runToEnd(pointsOfText(decodeUtf8(decoded), target, NOW, budget)).metrics();
    }
    case "prometheus":
      return runToEnd(
        pointsOfWriteRequest(runToEnd(writeRequestOf(decoded)), budget),
      ).columns.metrics();
    case "otlp": {
      const encoding = batch.headers["content-type"]?.includes("json") ? "json" : "protobuf";
      const request = runToEnd(decodeRequest(decoded, encoding));
      return runToEnd(pointsOfRequest(request, budget)).columns.metrics();
    }
    case "json":
      return runToEnd(parseMetrics([new TextDecoder().decode(decoded)], "json")).metrics;
  }
}

function measure(batch: Captured): Measured {
  const decoded = decode(batch);
  const metrics = metricsOf(batch, decoded);
  const storedBytes = metrics.reduce((sum, m) => sum + Buffer.byteLength(JSON.stringify(m)), 0);
  const withTimes = metrics.map((m) => ({ ...m, timestamp: m.timestamp ?? NOW }));
  const messages = runToEnd(encodeSeriesMessages(withTimes, NOW, MiB));
  const publishedBytes = messages.reduce((sum, m) => sum + m.data.byteLength, 0);
  return {
    name: batch.name,
    decodedBytes: decoded.byteLength,
    points: metrics.length,
    storedBytes,
    publishedBytes,
  };
}

function decode(batch: Captured): Uint8Array {
  if (batch.protocol === "prometheus") return decodeSnappyBlock(batch.body, MiB);
  return batch.headers["content-encoding"] === "gzip" ? gunzipSync(batch.body) : batch.body;
}

/** An HTTP server that keeps every request body it is sent and answers as `answer` says. */
async function captureServer(answer: (path: string) => { status: number; body?: string }) {
  const bodies: { path: string; body: Uint8Array; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", body: Buffer.concat(chunks), headers: req.headers });
      const { status, body } = answer(req.url ?? "");
      res.writeHead(status, { "content-type": "application/json" }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}

function headersOf(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).flatMap(([k, v]) => (typeof v === "string" ? [[k, v]] : [])),
  );
}

/**
 * An HTTP service's metrics from the OpenTelemetry JS SDK, with the resource its detectors find
 * on this machine: request durations and counts by route, method and status, and runtime
 * gauges; exported once through each OTLP/HTTP exporter.
 */
async function otelSdkExports(): Promise<Captured[]> {
  const capture = await captureServer(() => ({ status: 200, body: "{}" }));
  const detected = detectResources({
    detectors: [
      resourceAttributesEnvDetector,
      serviceNameEnvDetector,
      hostDetector,
      osDetector,
      processDetector,
      serviceInstanceIdDetector,
    ],
  });
  await detected.waitForAsyncAttributes?.();
  const exporters = {
    json: new JsonExporter({ url: `${capture.base}/json` }),
    protobuf: (() => {
      process.env["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"] = "gzip";
      try {
        return new ProtobufExporter({ url: `${capture.base}/protobuf` });
      } finally {
        delete process.env["OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"];
      }
    })(),
  };
  for (const exporter of Object.values(exporters)) {
    const provider = new MeterProvider({
      resource: resourceFromAttributes({
        "service.name": "storefront-api",
        "service.version": "4.12.3",
      }).merge(detected),
      readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })],
    });
    const meter = provider.getMeter("@opentelemetry/instrumentation-http", "0.208.0");
    const duration = meter.createHistogram("http.server.request.duration", { unit: "ms" });
    const requests = meter.createCounter("http.server.requests", { unit: "{request}" });
    const active = meter.createUpDownCounter("http.server.active_requests");
    for (let route = 0; route < 40; route++) {
      for (const method of ["GET", "POST"]) {
        for (const status of [200, 404, 500]) {
          const attributes = {
            "http.route": `/api/v1/resource-${route}/{id}`,
            "http.request.method": method,
            "http.response.status_code": status,
            "url.scheme": "https",
            "network.protocol.version": "1.1",
          };
          for (let i = 0; i < 5; i++) duration.record(3 + ((route * 7 + i * 13) % 900), attributes);
          requests.add(5, attributes);
        }
      }
      active.add(1, { "http.route": `/api/v1/resource-${route}/{id}` });
    }
    const runtime = provider.getMeter("@opentelemetry/instrumentation-runtime-node", "0.21.0");
    runtime.createObservableGauge("v8js.memory.heap.used", { unit: "By" }).addCallback((r) => {
      for (const space of ["new_space", "old_space", "code_space", "large_object_space"]) {
        r.observe(process.memoryUsage().heapUsed, { "v8js.heap.space.name": space });
      }
    });
    await provider.shutdown();
  }
  await capture.close();
  return capture.bodies.map(({ path, body, headers }) => ({
    name: `OpenTelemetry JS SDK export, ${path.slice(1)}`,
    protocol: "otlp",
    body,
    headers: headersOf(headers),
  }));
}

/** What a real Prometheus remote-writes while scraping itself every second, for a few seconds. */
async function prometheusRemoteWrites(): Promise<Captured[]> {
  const binary = join(PROJECT_ROOT, ".tools/prometheus/prometheus");
  if (!existsSync(binary)) {
    console.error(`no Prometheus at ${binary}: npm run test:tools fetches it; skipped`);
    return [];
  }
  const capture = await captureServer(() => ({ status: 204 }));
  const dir = await mkdtemp(join(tmpdir(), "expansion-prometheus-"));
  const port = await freePort();
  const config = join(dir, "prometheus.yml");
  await writeFile(
    config,
    `global:
  scrape_interval: 1s
  external_labels: { cluster: prod-eu-west-1, replica: prometheus-0 }
scrape_configs:
  - job_name: prometheus
    static_configs: [{ targets: ["127.0.0.1:${port}"], labels: { namespace: monitoring, pod: prometheus-0 } }]
remote_write:
  - url: ${capture.base}/api/v1/write
    queue_config: { batch_send_deadline: 5s, max_samples_per_send: 2000 }
`,
  );
  const prometheus = startChild(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    {},
  );
  const deadline = Date.now() + 60_000;
  while (capture.bodies.length < 6 && Date.now() < deadline) await sleep(500);
  await prometheus.stop();
  await capture.close();
  await rm(dir, { recursive: true, force: true });
  return capture.bodies.map(({ body, headers }, i) => ({
    name: `Prometheus 2.42 remote write (self-scrape), batch ${i + 1}`,
    protocol: "prometheus",
    body,
    headers: headersOf(headers),
  }));
}

function synthetic(): Captured[] {
  const of = (name: string, protocol: Protocol, p: payloads.Payload): Captured => ({
    name,
    protocol,
    body: p.body,
    headers: p.headers,
  });
  return [
    of("Telegraf default inputs, 45 intervals", "influx", payloads.telegrafBatch()),
    of("Telegraf default inputs, 1 interval", "influx", payloads.telegrafBatch(1)),
    of("Prometheus, Kubernetes labels, live", "prometheus", payloads.prometheusBatch()),
    of(
      "Prometheus, catching up (20 samples a series)",
      "prometheus",
      payloads.prometheusBatch(100, 20),
    ),
    of(
      "Prometheus, catching up (2,000 samples of 1 series)",
      "prometheus",
      payloads.prometheusBatch(1, 2000),
    ),
    of("OpenTelemetry service, Kubernetes resource", "otlp", payloads.otelSdkExport()),
    of("JSON API batch", "json", payloads.jsonBatch()),
    of(
      "amplifying: line protocol, 64 tags × 10,000 fields",
      "influx",
      payloads.amplifyingLineProtocol(),
    ),
    of(
      "amplifying: remote write, 64 labels × 10,000 samples",
      "prometheus",
      payloads.amplifyingRemoteWrite(),
    ),
    of(
      "amplifying: OTLP, 64 resource attributes × 10,000 points",
      "otlp",
      payloads.amplifyingOtlp(),
    ),
  ];
}

const ratio = (a: number, b: number) => (a / b).toFixed(2);

const batches = [...(await otelSdkExports()), ...(await prometheusRemoteWrites()), ...synthetic()];
console.log(
  "| batch | decoded body | points | stored (bound counts) | × body | published (v3) | × body |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const batch of batches) {
  const m = measure(batch);
  console.log(
    `| ${m.name} | ${m.decodedBytes} | ${m.points} | ${m.storedBytes} | ${ratio(m.storedBytes, m.decodedBytes)} | ${m.publishedBytes} | ${ratio(m.publishedBytes, m.decodedBytes)} |`,
  );
}
