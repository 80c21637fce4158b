import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ExportMetricsServiceRequestSchema } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import type { AnyValueSchema } from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";
import {
  AggregationTemporality,
  type MetricSchema,
} from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import type { ExportMetricsServiceRequest } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import {
  countDataPoints,
  pointsOfRequest as convert,
  refusalSummary,
} from "../../edge/otlp/otlp-metrics.ts";

type AnyValueInit = MessageInitShape<typeof AnyValueSchema>;

/** The request's metrics, made at once, within the expansion bound of the largest body. */
function metricsOfRequest(request: ExportMetricsServiceRequest) {
  const { columns, ...converted } = runToEnd(
    convert(request, new ExpansionBudget(REQUEST_LIMITS.bodyBytes)),
  );
  return { ...converted, metrics: columns.metrics() };
}
type MetricInit = MessageInitShape<typeof MetricSchema>;

/** 2024-05-01T12:34:56.789123456Z in nanoseconds. */
const T = 1_714_566_896_789_123_456n;
const TIME = "2024-05-01T12:34:56.789123456Z";
const START = 1_714_566_800_000_000_000n;
const START_TIME = "2024-05-01T12:33:20.000000000Z";

const str = (value: string): AnyValueInit => ({ value: { case: "stringValue", value } });
const attrs = (entries: Record<string, AnyValueInit>) =>
  Object.entries(entries).map(([key, value]) => ({ key, value }));

/** A request with one resource and one scope around `metrics`. */
function request(
  metrics: MetricInit[],
  options: {
    resource?: Record<string, AnyValueInit>;
    scope?: { name?: string; version?: string; attributes?: Record<string, AnyValueInit> };
  } = {},
) {
  const scope = options.scope ?? { name: "my-meter", version: "1.2.3" };
  return create(ExportMetricsServiceRequestSchema, {
    resourceMetrics: [
      {
        resource: { attributes: attrs(options.resource ?? { "service.name": str("checkout") }) },
        scopeMetrics: [
          {
            scope: {
              name: scope.name ?? "",
              version: scope.version ?? "",
              attributes: attrs(scope.attributes ?? {}),
            },
            metrics,
          },
        ],
      },
    ],
  });
}

const SCOPE_TAGS = {
  "service.name": "checkout",
  "otel.scope.name": "my-meter",
  "otel.scope.version": "1.2.3",
};

function gauge(name: string, points: { value: number; t?: bigint; extra?: object }[]): MetricInit {
  return {
    name,
    data: {
      case: "gauge",
      value: {
        dataPoints: points.map((p) => ({
          timeUnixNano: p.t ?? T,
          value: { case: "asDouble" as const, value: p.value },
          ...p.extra,
        })),
      },
    },
  };
}

describe("metricsOfRequest", () => {
  it("turns a gauge point into a metric with name, value, nanosecond time, tags, kind and unit", () => {
    const converted = metricsOfRequest(
      request([
        {
          name: "queue.depth",
          unit: "{item}",
          data: {
            case: "gauge",
            value: {
              dataPoints: [
                {
                  timeUnixNano: T,
                  startTimeUnixNano: START,
                  attributes: attrs({ queue: str("emails") }),
                  value: { case: "asDouble", value: 12.5 },
                },
              ],
            },
          },
        },
      ]),
    );
    expect(converted).toEqual({
      points: 1,
      metrics: [
        {
          name: "queue.depth",
          value: 12.5,
          timestamp: TIME,
          tags: { ...SCOPE_TAGS, queue: "emails" },
          kind: "gauge",
          unit: "{item}",
          startTime: START_TIME,
        },
      ],
      rejected: 0,
      refusals: [],
      unreadable: 0,
      unreadableNames: [],
    });
  });

  it("tags a point with its resource's, then its scope's, then its own attributes: the later wins", () => {
    const converted = metricsOfRequest(
      request(
        [
          gauge("m", [
            {
              value: 1,
              extra: { attributes: attrs({ host: str("from-point"), point: str("p") }) },
            },
          ]),
        ],
        {
          resource: {
            host: str("from-resource"),
            env: str("from-resource"),
            region: str("eu"),
            "otel.scope.name": str("from-resource"),
          },
          scope: {
            name: "meter",
            attributes: { host: str("from-scope"), env: str("from-scope") },
          },
        },
      ),
    );
    expect(converted.metrics[0]?.tags).toEqual({
      host: "from-point",
      env: "from-scope",
      region: "eu",
      "otel.scope.name": "meter",
      point: "p",
    });
  });

  it("writes every kind of attribute value as a string: arrays and key-value lists as JSON", () => {
    const big = 2n ** 60n + 1n;
    const converted = metricsOfRequest(
      request(
        [
          gauge("m", [
            {
              value: 1,
              extra: {
                attributes: attrs({
                  bool: { value: { case: "boolValue", value: true } },
                  int: { value: { case: "intValue", value: -42n } },
                  bigint: { value: { case: "intValue", value: big } },
                  double: { value: { case: "doubleValue", value: 0.25 } },
                  nan: { value: { case: "doubleValue", value: NaN } },
                  bytes: { value: { case: "bytesValue", value: new Uint8Array([1, 2, 255]) } },
                  empty: {},
                  array: {
                    value: {
                      case: "arrayValue",
                      value: {
                        values: [
                          str("a"),
                          { value: { case: "intValue", value: 7n } },
                          { value: { case: "intValue", value: big } },
                          { value: { case: "doubleValue", value: Infinity } },
                          {},
                        ],
                      },
                    },
                  },
                  kvlist: {
                    value: {
                      case: "kvlistValue",
                      value: {
                        values: [
                          { key: "__proto__", value: str("data") },
                          { key: "n", value: { value: { case: "boolValue", value: false } } },
                        ],
                      },
                    },
                  },
                }),
              },
            },
          ]),
        ],
        { resource: {}, scope: {} },
      ),
    );
    expect(converted.metrics[0]?.tags).toEqual({
      bool: "true",
      int: "-42",
      bigint: "1152921504606846977",
      double: "0.25",
      nan: "NaN",
      bytes: "AQL/",
      empty: "",
      array: '["a",7,"1152921504606846977","Infinity",null]',
      kvlist: '{"__proto__":"data","n":false}',
    });
    // The key "__proto__" is a tag like any other, not the tags object's prototype.
    expect(Object.getPrototypeOf(converted.metrics[0]?.tags)).toBe(Object.prototype);
  });

  it("keeps a sum's temporality and monotonicity, and an integer beyond 2^53 exactly beside its value", () => {
    const big = 2n ** 53n + 1n;
    const converted = metricsOfRequest(
      request([
        {
          name: "requests",
          unit: "1",
          data: {
            case: "sum",
            value: {
              aggregationTemporality: AggregationTemporality.CUMULATIVE,
              isMonotonic: true,
              dataPoints: [
                { timeUnixNano: T, startTimeUnixNano: START, value: { case: "asInt", value: 42n } },
                { timeUnixNano: T + 1n, value: { case: "asInt", value: big } },
              ],
            },
          },
        },
        {
          name: "delta",
          data: {
            case: "sum",
            value: {
              aggregationTemporality: AggregationTemporality.DELTA,
              dataPoints: [{ timeUnixNano: T, value: { case: "asDouble", value: -1.5 } }],
            },
          },
        },
      ]),
    );
    expect(converted.metrics).toEqual([
      {
        name: "requests",
        value: 42,
        timestamp: TIME,
        tags: SCOPE_TAGS,
        kind: "sum",
        unit: "1",
        startTime: START_TIME,
        temporality: "cumulative",
        monotonic: true,
      },
      {
        name: "requests",
        value: 9007199254740992,
        timestamp: "2024-05-01T12:34:56.789123457Z",
        tags: SCOPE_TAGS,
        kind: "sum",
        unit: "1",
        temporality: "cumulative",
        monotonic: true,
        asInt: "9007199254740993",
      },
      {
        name: "delta",
        value: -1.5,
        timestamp: TIME,
        tags: SCOPE_TAGS,
        kind: "sum",
        temporality: "delta",
        monotonic: false,
      },
    ]);
  });

  it("stores a histogram whole, with the sum as value, or the count when it has no sum", () => {
    const converted = metricsOfRequest(
      request([
        {
          name: "latency",
          unit: "ms",
          data: {
            case: "histogram",
            value: {
              aggregationTemporality: AggregationTemporality.DELTA,
              dataPoints: [
                {
                  timeUnixNano: T,
                  startTimeUnixNano: START,
                  count: 6n,
                  sum: 151.5,
                  min: 0.5,
                  max: 100,
                  explicitBounds: [1, 10, 50],
                  bucketCounts: [1n, 2n, 2n, 1n],
                },
                { timeUnixNano: T, count: 3n, explicitBounds: [0], bucketCounts: [3n, 0n] },
              ],
            },
          },
        },
      ]),
    );
    expect(converted.metrics).toEqual([
      {
        name: "latency",
        value: 151.5,
        timestamp: TIME,
        tags: SCOPE_TAGS,
        kind: "histogram",
        unit: "ms",
        startTime: START_TIME,
        temporality: "delta",
        histogram: {
          count: 6,
          sum: 151.5,
          min: 0.5,
          max: 100,
          bounds: [1, 10, 50],
          counts: [1, 2, 2, 1],
        },
      },
      {
        name: "latency",
        value: 3,
        timestamp: TIME,
        tags: SCOPE_TAGS,
        kind: "histogram",
        unit: "ms",
        temporality: "delta",
        histogram: { count: 3, bounds: [0], counts: [3, 0] },
      },
    ]);
  });

  it("stores an exponential histogram whole: scale, zero bucket and both bucket ranges", () => {
    const converted = metricsOfRequest(
      request([
        {
          name: "sizes",
          data: {
            case: "exponentialHistogram",
            value: {
              aggregationTemporality: AggregationTemporality.CUMULATIVE,
              dataPoints: [
                {
                  timeUnixNano: T,
                  count: 2n ** 60n,
                  sum: 40,
                  min: -2,
                  max: 30,
                  scale: 3,
                  zeroCount: 1n,
                  zeroThreshold: 0.001,
                  positive: { offset: -2, bucketCounts: [1n, 0n, 3n] },
                },
              ],
            },
          },
        },
      ]),
    );
    expect(converted.metrics).toEqual([
      {
        name: "sizes",
        value: 40,
        timestamp: TIME,
        tags: SCOPE_TAGS,
        kind: "exponential_histogram",
        temporality: "cumulative",
        exponentialHistogram: {
          count: "1152921504606846976",
          sum: 40,
          min: -2,
          max: 30,
          scale: 3,
          zeroCount: 1,
          zeroThreshold: 0.001,
          positive: { offset: -2, counts: [1, 0, 3] },
          negative: { offset: 0, counts: [] },
        },
      },
    ]);
  });

  it("stores a summary with its quantiles; a quantile JSON cannot hold is kept by name", () => {
    const converted = metricsOfRequest(
      request([
        {
          name: "rpc.duration",
          data: {
            case: "summary",
            value: {
              dataPoints: [
                {
                  timeUnixNano: T,
                  count: 4n,
                  sum: 10,
                  quantileValues: [
                    { quantile: 0.5, value: 2 },
                    { quantile: 0.99, value: NaN },
                  ],
                },
              ],
            },
          },
        },
      ]),
    );
    expect(converted.metrics).toEqual([
      {
        name: "rpc.duration",
        value: 10,
        timestamp: TIME,
        tags: SCOPE_TAGS,
        kind: "summary",
        summary: {
          count: 4,
          sum: 10,
          quantiles: [
            { quantile: 0.5, value: 2 },
            { quantile: 0.99, value: "NaN" },
          ],
        },
      },
    ]);
  });

  it("refuses each point that cannot be stored, naming it and why, and keeps the others", () => {
    const manyTags = Object.fromEntries(
      Array.from({ length: METRIC_BOUNDS.tagCount + 1 }, (_, i) => [`k${i}`, str("v")]),
    );
    let deep: AnyValueInit = str("x");
    for (let i = 0; i < 200; i++)
      deep = { value: { case: "arrayValue", value: { values: [deep] } } };
    const converted = metricsOfRequest(
      request([
        gauge("ok", [{ value: 1 }]),
        gauge("bad", [
          { value: 2, t: 0n },
          { value: 3, t: 2n ** 64n - 1n, extra: { startTimeUnixNano: 2n ** 64n - 1n } },
          { value: NaN },
          { value: 4, extra: { flags: 1 } },
          { value: 5, extra: { attributes: attrs(manyTags) } },
          { value: 6, extra: { attributes: attrs({ long: str("x".repeat(257)) }) } },
          { value: 9 },
        ]),
        { name: "", data: { case: "gauge", value: { dataPoints: [{ timeUnixNano: T }] } } },
        gauge("", [{ value: 10 }]),
      ]),
    );
    expect(converted.metrics.map((m) => m.value)).toEqual([1, 3, 9]);
    // Every fixed64 time is in range: 2^64 nanoseconds is in the year 2554.
    expect(converted.metrics[1]?.timestamp).toBe("2554-07-21T23:34:33.709551615Z");
    expect(converted.points).toBe(10);
    expect(converted.rejected).toBe(7);
    const at = (m: number, p: number) =>
      `resource_metrics[0].scope_metrics[0].metrics[${m}].gauge.data_points[${p}]`;
    expect(converted.refusals).toEqual([
      { field: at(1, 0), description: "has no time_unix_nano" },
      { field: at(1, 2), description: "as_double is NaN; it must be a finite number" },
      { field: at(1, 3), description: "is flagged as having no recorded value" },
      // Refused by the Metric schema (checked after the conversion), named in the same order.
      {
        field: at(1, 4),
        description: expect.stringMatching(
          /^\/tags must NOT have more than 64 properties/,
        ) as unknown,
      },
      {
        field: at(1, 5),
        description: expect.stringMatching(
          /^\/tags\/long must NOT have more than 256 characters/,
        ) as unknown,
      },
      { field: at(2, 0), description: "has neither as_double nor as_int" },
      {
        field: at(3, 0),
        description: expect.stringMatching(
          /^\/name must NOT have fewer than 1 characters/,
        ) as unknown,
      },
    ]);
  });

  it("refuses a histogram whose sum is not finite, or whose buckets are over the array limit", () => {
    const histogram = (point: object): MetricInit => ({
      name: "h",
      data: {
        case: "histogram",
        value: { dataPoints: [{ timeUnixNano: T, count: 1n, ...point }] },
      },
    });
    const tooMany = METRIC_BOUNDS.arrayItems + 1;
    const converted = metricsOfRequest(
      request([
        histogram({ sum: Infinity }),
        histogram({ bucketCounts: Array.from({ length: tooMany }, () => 0n) }),
        histogram({ sum: 1, bucketCounts: [1n] }),
      ]),
    );
    expect(converted.metrics.map((m) => m.value)).toEqual([1]);
    expect(converted.refusals.map((r) => r.description)).toEqual([
      "sum is Infinity; it must be a finite number",
      expect.stringMatching(/^\/histogram must be JSON .* arrays of at most 1000 items/) as unknown,
    ]);
  });

  it("names the metrics it cannot read instead of dropping them unsaid", () => {
    const converted = metricsOfRequest(
      request([{ name: "future.kind" }, gauge("ok", [{ value: 1 }])]),
    );
    expect(converted.metrics).toHaveLength(1);
    expect(converted.rejected).toBe(0);
    expect(converted.unreadable).toBe(1);
    expect(converted.unreadableNames).toEqual([
      'metric "future.kind" (resource_metrics[0].scope_metrics[0].metrics[0])',
    ]);
    expect(refusalSummary(converted)).toBe(
      '1 metrics hold no gauge, sum, histogram, exponential histogram or summary, so nothing of them was stored: metric "future.kind" (resource_metrics[0].scope_metrics[0].metrics[0])',
    );
  });

  it("reads the deprecated instrumentation_library_metrics only when scope_metrics is empty", () => {
    const old = create(ExportMetricsServiceRequestSchema, {
      resourceMetrics: [
        {
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- the field under test
          instrumentationLibraryMetrics: [
            {
              instrumentationLibrary: { name: "lib", version: "0.1" },
              metrics: [gauge("a", [{ value: 1 }])],
            },
          ],
        },
        {
          scopeMetrics: [{ metrics: [gauge("b", [{ value: 2 }])] }],
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- the field under test
          instrumentationLibraryMetrics: [{ metrics: [gauge("ignored", [{ value: 3 }])] }],
        },
      ],
    });
    expect(countDataPoints(old)).toBe(2);
    expect(metricsOfRequest(old).metrics).toEqual([
      {
        name: "a",
        value: 1,
        timestamp: TIME,
        tags: { "otel.scope.name": "lib", "otel.scope.version": "0.1" },
        kind: "gauge",
      },
      { name: "b", value: 2, timestamp: TIME, tags: {}, kind: "gauge" },
    ]);
  });
});

describe("countDataPoints", () => {
  it("counts the points of every kind, across resources and scopes", () => {
    const point = { timeUnixNano: T };
    const req = create(ExportMetricsServiceRequestSchema, {
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              metrics: [
                { name: "g", data: { case: "gauge", value: { dataPoints: [point, point] } } },
                { name: "s", data: { case: "sum", value: { dataPoints: [point] } } },
                { name: "none" },
              ],
            },
            {
              metrics: [{ name: "h", data: { case: "histogram", value: { dataPoints: [point] } } }],
            },
          ],
        },
        {
          scopeMetrics: [
            {
              metrics: [
                {
                  name: "e",
                  data: { case: "exponentialHistogram", value: { dataPoints: [point, point] } },
                },
                { name: "q", data: { case: "summary", value: { dataPoints: [point] } } },
              ],
            },
          ],
        },
      ],
    });
    expect(countDataPoints(req)).toBe(7);
  });
});

describe("refusalSummary", () => {
  it("counts the refused points and names the first five", () => {
    const converted = metricsOfRequest(
      request([
        gauge(
          "m",
          Array.from({ length: 8 }, (_, i) => ({ value: i, t: i === 7 ? T : 0n })),
        ),
      ]),
    );
    const at = (p: number) =>
      `resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[${p}]: has no time_unix_nano`;
    expect(refusalSummary(converted)).toBe(
      `7 of 8 data points were refused: ${[0, 1, 2, 3, 4].map(at).join("; ")}; and 2 more`,
    );
  });

  it("is empty when every point was stored", () => {
    expect(refusalSummary(metricsOfRequest(request([gauge("m", [{ value: 1 }])])))).toBe("");
  });
});
