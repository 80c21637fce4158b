/**
 * Request bodies of every ingest protocol, as tests and measurements send them: the three
 * amplification payloads (a small body whose tags are repeated for every point it becomes) and
 * honest batches of about the size real senders make.
 */
import { gzipSync } from "node:zlib";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { compress } from "snappyjs";
import { ExportMetricsServiceRequestSchema } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import type { KeyValueSchema } from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";
import { AggregationTemporality } from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { METRIC_BOUNDS } from "../../shared/limits.ts";

type OtlpInit = MessageInitShape<typeof ExportMetricsServiceRequestSchema>;
type WriteInit = MessageInitShape<typeof WriteRequestSchema>;

/** A body as sent, and how large it is once decoded (what the body limit counts). */
export interface Payload {
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  readonly decodedBytes: number;
  /** The metrics it becomes. */
  readonly points: number;
}

/** The path each protocol is sent to. */
export const PATHS = {
  json: "/api/v1/metrics",
  influx: "/api/v2/write?bucket=telegraf&org=acme&precision=ns",
  otlp: "/v1/metrics",
  prometheus: "/api/v1/write",
} as const;

/** 2026-05-01T00:00:00Z in milliseconds. */
const START_MS = 1_777_593_600_000;

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** Text of `length` letters that compresses as badly as real tag values do, the same each run. */
function noise(seed: number, length: number): string {
  let x = seed * 2_654_435_761 + 1;
  let text = "";
  while (text.length < length) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    text += LETTERS[x % LETTERS.length] ?? "";
  }
  return text;
}

/** The most tags a metric may have, each with a key and a value of the greatest length. */
function maximumTags(): [string, string][] {
  return Array.from({ length: METRIC_BOUNDS.tagCount }, (_, i) => [
    `k${i}_${noise(i, METRIC_BOUNDS.tagKeyLength - 3 - String(i).length)}`,
    noise(1000 + i, METRIC_BOUNDS.tagValueLength),
  ]);
}

const AMPLIFIED_POINTS = 10_000;

/**
 * One line: the most tags of the greatest size, and 10,000 fields, their keys padded to
 * `fieldKeyLength` (long keys make a body large enough for the bound's cap to apply). Gzipped.
 */
export function amplifyingLineProtocol(fieldKeyLength = 0): Payload {
  const tags = maximumTags()
    .map(([k, v]) => `,${k}=${v}`)
    .join("");
  const fields = Array.from(
    { length: AMPLIFIED_POINTS },
    (_, i) => `${`f${i}`.padEnd(fieldKeyLength, "_")}=1`,
  ).join(",");
  const text = Buffer.from(`m${tags} ${fields}\n`);
  return {
    body: gzipSync(text),
    headers: { "content-type": "text/plain; charset=utf-8", "content-encoding": "gzip" },
    decodedBytes: text.byteLength,
    points: AMPLIFIED_POINTS,
  };
}

/** One series with the most labels of the greatest size, and 10,000 samples. */
export function amplifyingRemoteWrite(): Payload {
  const labels = [
    { name: "__name__", value: "m" },
    ...maximumTags().map(([name, value]) => ({ name, value })),
  ];
  const samples = Array.from({ length: AMPLIFIED_POINTS }, (_, i) => ({
    value: i,
    timestamp: BigInt(START_MS + i * 1000),
  }));
  return remoteWrite({ timeseries: [{ labels, samples }] }, AMPLIFIED_POINTS);
}

/** A resource with the most attributes of the greatest size, and one gauge of 10,000 points. */
export function amplifyingOtlp(): Payload {
  const attributes = maximumTags().map(([key, value]) => stringAttribute(key, value));
  const dataPoints = Array.from({ length: AMPLIFIED_POINTS }, (_, i) => ({
    timeUnixNano: BigInt(START_MS + i * 1000) * 1_000_000n,
    value: { case: "asDouble" as const, value: i },
  }));
  return otlp(
    {
      resourceMetrics: [
        {
          resource: { attributes },
          scopeMetrics: [
            { metrics: [{ name: "m", data: { case: "gauge", value: { dataPoints } } }] },
          ],
        },
      ],
    },
    AMPLIFIED_POINTS,
  );
}

/**
 * What Telegraf sends with its default inputs (cpu, mem, disk, diskio, net, system, processes,
 * kernel, swap) from one host with a few global tags: `intervals` collections, one line per
 * plugin instance, fields named and valued as those plugins name and value them.
 */
export function telegrafBatch(intervals = 45): Payload {
  const host = "web-04.eu-west-1.internal";
  const global = `,dc=eu-west-1a,env=production,host=${host},team=storefront`;
  const lines: string[] = [];
  let points = 0;
  const line = (measurement: string, tags: string, fields: [string, string][], ns: bigint) => {
    points += fields.length;
    lines.push(
      `${measurement}${tags}${global} ${fields.map(([k, v]) => `${k}=${v}`).join(",")} ${ns}`,
    );
  };
  const float = (seed: number) => (((seed * 7919) % 10_000) / 97).toFixed(13);
  const int = (seed: number) => `${(seed * 104_729) % 9_999_991}i`;
  for (let t = 0; t < intervals; t++) {
    const ns = BigInt(START_MS + t * 10_000) * 1_000_000n;
    const s = t * 1000;
    for (const cpu of ["cpu0", "cpu1", "cpu2", "cpu3", "cpu-total"]) {
      const names = ["guest", "guest_nice", "idle", "iowait", "irq", "nice", "softirq", "steal"];
      const usage = [...names, "system", "user"].map((f, i): [string, string] => [
        `usage_${f}`,
        float(s + i),
      ]);
      line("cpu", `,cpu=${cpu}`, usage, ns);
    }
    const mem = ["active", "available", "buffered", "cached", "commit_limit", "committed_as"]
      .concat(["dirty", "free", "high_free", "high_total", "huge_page_size", "huge_pages_free"])
      .concat(["huge_pages_total", "inactive", "low_free", "low_total", "mapped", "page_tables"])
      .concat(["shared", "slab", "sreclaimable", "sunreclaim", "swap_cached", "swap_free"])
      .concat(["swap_total", "total", "used", "vmalloc_chunk", "vmalloc_total", "vmalloc_used"])
      .concat(["write_back", "write_back_tmp"]);
    line(
      "mem",
      "",
      [
        ...mem.map((f, i): [string, string] => [f, int(s + i)]),
        ["available_percent", float(s)],
        ["used_percent", float(s + 1)],
      ],
      ns,
    );
    for (const [device, path] of [
      ["nvme0n1p1", "/"],
      ["nvme0n1p2", "/boot"],
      ["nvme1n1", "/var/lib/data"],
    ] as const) {
      const fields = ["free", "inodes_free", "inodes_total", "inodes_used", "total", "used"];
      line(
        "disk",
        `,device=${device},fstype=ext4,mode=rw,path=${path}`,
        [
          ...fields.map((f, i): [string, string] => [f, int(s + i)]),
          ["used_percent", float(s + 7)],
        ],
        ns,
      );
    }
    for (const name of ["nvme0n1", "nvme1n1"]) {
      const fields = ["io_time", "iops_in_progress", "merged_reads", "merged_writes", "read_bytes"]
        .concat(["read_time", "reads", "weighted_io_time", "write_bytes", "write_time", "writes"])
        .map((f, i): [string, string] => [f, int(s + i)]);
      line("diskio", `,name=${name}`, fields, ns);
    }
    for (const iface of ["eth0", "lo"]) {
      const fields = ["bytes_recv", "bytes_sent", "drop_in", "drop_out", "err_in", "err_out"]
        .concat(["packets_recv", "packets_sent"])
        .map((f, i): [string, string] => [f, int(s + i)]);
      line("net", `,interface=${iface}`, fields, ns);
    }
    line(
      "system",
      "",
      [
        ["load1", float(s)],
        ["load15", float(s + 1)],
        ["load5", float(s + 2)],
        ["n_cpus", "4i"],
        ["n_users", "2i"],
        ["uptime", int(s)],
      ],
      ns,
    );
    const processes = ["blocked", "dead", "idle", "paging", "running", "sleeping", "stopped"]
      .concat(["total", "total_threads", "unknown", "zombies"])
      .map((f, i): [string, string] => [f, int(s + i)]);
    line("processes", "", processes, ns);
    const kernel = ["boot_time", "context_switches", "entropy_avail", "interrupts"]
      .concat(["processes_forked"])
      .map((f, i): [string, string] => [f, int(s + i)]);
    line("kernel", "", kernel, ns);
    const swap = ["free", "in", "out", "total", "used"].map((f, i): [string, string] => [
      f,
      int(s + i),
    ]);
    line("swap", "", [...swap, ["used_percent", float(s)]], ns);
  }
  const text = Buffer.from(`${lines.join("\n")}\n`);
  return {
    body: gzipSync(text),
    headers: { "content-type": "text/plain; charset=utf-8", "content-encoding": "gzip" },
    decodedBytes: text.byteLength,
    points,
  };
}

/**
 * What Prometheus sends for scraped targets with the usual labels (job, instance, Kubernetes'
 * namespace, pod, container and node, the cluster as an external label, and each metric's own):
 * `series` series of `samplesPerSeries` samples each (1 for a live remote write; more when it
 * catches up after an outage).
 */
export function prometheusBatch(series = 2000, samplesPerSeries = 1): Payload {
  const families = [
    ["node_cpu_seconds_total", ["cpu", "mode"]],
    ["container_memory_working_set_bytes", ["id", "image"]],
    ["http_server_requests_seconds_bucket", ["method", "uri", "status", "le"]],
    ["kube_pod_container_status_restarts_total", ["uid"]],
    ["node_filesystem_avail_bytes", ["device", "fstype", "mountpoint"]],
  ] as const;
  const timeseries = Array.from({ length: series }, (_, i) => {
    const [name, own] = families[i % families.length] ?? families[0];
    const pod = `storefront-api-7d9f8c6b5-${noise(i >> 4, 5).toLowerCase()}`;
    const labels = [
      { name: "__name__", value: name },
      { name: "cluster", value: "prod-eu-west-1" },
      { name: "container", value: "storefront-api" },
      { name: "instance", value: `10.42.${(i >> 8) % 256}.${i % 256}:8080` },
      { name: "job", value: "kubernetes-pods" },
      { name: "namespace", value: "storefront" },
      { name: "node", value: `ip-10-0-${(i >> 6) % 64}-17.eu-west-1.compute.internal` },
      { name: "pod", value: pod },
      ...own.map((label, j) => ({ name: label, value: `${label}-${(i + j) % 23}` })),
    ];
    const samples = Array.from({ length: samplesPerSeries }, (_, j) => ({
      value: ((i * 31 + j) % 1000) / 7,
      timestamp: BigInt(START_MS + j * 15_000 + (i % 1000)),
    }));
    return { labels, samples };
  });
  return remoteWrite({ timeseries }, series * samplesPerSeries);
}

/**
 * What an OpenTelemetry SDK exports from a service: its resource (service, SDK, host, process
 * and Kubernetes attributes, as the SDK's detectors and the collector's k8s processor add
 * them), HTTP server metrics by route, method and status, and runtime gauges. Protobuf, gzipped.
 */
export function otelSdkExport(routes = 40): Payload {
  const resource = Object.entries({
    "service.name": "storefront-api",
    "service.version": "4.12.3",
    "service.instance.id": "a1f3c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "deployment.environment.name": "production",
    "telemetry.sdk.language": "nodejs",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "2.2.0",
    "host.name": "storefront-api-7d9f8c6b5-x2x9k",
    "host.arch": "amd64",
    "os.type": "linux",
    "os.version": "6.1.0-28-cloud-amd64",
    "process.pid": "1",
    "process.executable.name": "node",
    "process.executable.path": "/usr/local/bin/node",
    "process.command_args": '["/usr/local/bin/node","--enable-source-maps","dist/server.js"]',
    "process.runtime.name": "nodejs",
    "process.runtime.version": "24.11.1",
    "process.runtime.description": "Node.js",
    "k8s.namespace.name": "storefront",
    "k8s.pod.name": "storefront-api-7d9f8c6b5-x2x9k",
    "k8s.pod.uid": "0b6a8c1e-3f2d-4e5a-9b7c-1d2e3f4a5b6c",
    "k8s.deployment.name": "storefront-api",
    "k8s.node.name": "ip-10-0-12-17.eu-west-1.compute.internal",
    "cloud.provider": "aws",
    "cloud.region": "eu-west-1",
  }).map(([key, value]) => stringAttribute(key, value));
  const startNs = BigInt(START_MS - 3_600_000) * 1_000_000n;
  const timeNs = BigInt(START_MS) * 1_000_000n;
  const bounds = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10_000];
  const combos = Array.from({ length: routes }, (_, r) =>
    ["GET", "POST"].flatMap((method) =>
      ["200", "404", "500"].map((status) => [
        stringAttribute("http.route", `/api/v1/resource-${r}/{id}`),
        stringAttribute("http.request.method", method),
        stringAttribute("http.response.status_code", status),
        stringAttribute("url.scheme", "https"),
        stringAttribute("network.protocol.version", "1.1"),
      ]),
    ),
  ).flat();
  const duration = combos.map((attributes, i) => ({
    attributes,
    startTimeUnixNano: startNs,
    timeUnixNano: timeNs,
    count: BigInt(100 + i),
    sum: 1234.5 + i,
    min: 0.4,
    max: 950 + i,
    explicitBounds: bounds,
    bucketCounts: [...bounds, 0].map((_, b) => BigInt((i + b) % 17)),
  }));
  const requests = combos.map((attributes, i) => ({
    attributes,
    startTimeUnixNano: startNs,
    timeUnixNano: timeNs,
    value: { case: "asInt" as const, value: BigInt(1000 + i) },
  }));
  const gauge = (name: string, unit: string, value: number) => ({
    name,
    unit,
    data: {
      case: "gauge" as const,
      value: {
        dataPoints: [{ timeUnixNano: timeNs, value: { case: "asDouble" as const, value } }],
      },
    },
  });
  const init: OtlpInit = {
    resourceMetrics: [
      {
        resource: { attributes: resource },
        scopeMetrics: [
          {
            scope: { name: "@opentelemetry/instrumentation-http", version: "0.208.0" },
            metrics: [
              {
                name: "http.server.request.duration",
                unit: "ms",
                data: {
                  case: "histogram",
                  value: {
                    aggregationTemporality: AggregationTemporality.CUMULATIVE,
                    dataPoints: duration,
                  },
                },
              },
              {
                name: "http.server.requests",
                unit: "{request}",
                data: {
                  case: "sum",
                  value: {
                    aggregationTemporality: AggregationTemporality.CUMULATIVE,
                    isMonotonic: true,
                    dataPoints: requests,
                  },
                },
              },
            ],
          },
          {
            scope: { name: "@opentelemetry/instrumentation-runtime-node", version: "0.21.0" },
            metrics: [
              gauge("nodejs.eventloop.delay.p99", "s", 0.0123),
              gauge("v8js.memory.heap.used", "By", 48_123_456),
              gauge("process.cpu.utilization", "1", 0.31),
            ],
          },
        ],
      },
    ],
  };
  return otlp(init, duration.length + requests.length + 3);
}

/** A JSON API batch: `count` metrics with a name, timestamp and a few tags each. */
export function jsonBatch(count = 5000): Payload {
  const data = Array.from({ length: count }, (_, i) => ({
    name: `checkout.latency.${i % 20}`,
    value: (i * 37) % 1000,
    timestamp: START_MS + i,
    tags: { host: `web-${i % 12}`, region: "eu-west-1", service: "checkout" },
  }));
  const text = Buffer.from(JSON.stringify({ data }));
  return {
    body: text,
    headers: { "content-type": "application/json" },
    decodedBytes: text.byteLength,
    points: count,
  };
}

function stringAttribute(key: string, value: string): MessageInitShape<typeof KeyValueSchema> {
  return { key, value: { value: { case: "stringValue", value } } };
}

function otlp(init: OtlpInit, points: number): Payload {
  const bytes = toBinary(
    ExportMetricsServiceRequestSchema,
    create(ExportMetricsServiceRequestSchema, init),
  );
  return {
    body: gzipSync(bytes),
    headers: { "content-type": "application/x-protobuf", "content-encoding": "gzip" },
    decodedBytes: bytes.byteLength,
    points,
  };
}

/** A remote-write body of `init` (protobuf, snappy), as Prometheus sends it. */
export function remoteWrite(init: WriteInit, points: number): Payload {
  const bytes = toBinary(WriteRequestSchema, create(WriteRequestSchema, init));
  return {
    body: compress(bytes),
    headers: {
      "content-type": "application/x-protobuf",
      "content-encoding": "snappy",
      "x-prometheus-remote-write-version": "0.1.0",
    },
    decodedBytes: bytes.byteLength,
    points,
  };
}
