import { create, toBinary, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readExportRequest } from "../../edge/otlp/otlp-request-reader.ts";
import { fromBinaryInSteps } from "../../edge/publish/protobuf-steps.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { damaged } from "../helpers/damaged-bytes.ts";
import { ExportMetricsServiceRequestSchema } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import {
  GaugeSchema,
  MetricSchema,
  NumberDataPointSchema,
  ResourceMetricsSchema,
  ScopeMetricsSchema,
  SumSchema,
} from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";

/** protobuf-es's reading, as `decodeRequest` does it when the hand reader gives up. */
function slowly(bytes: Uint8Array) {
  return runToEnd(
    fromBinaryInSteps(ExportMetricsServiceRequestSchema, bytes, { depth: 3, recursionLimit: 100 }),
  );
}

/** protobuf-es's reading, or undefined where it refuses the bytes. */
function slowlyOrNot(bytes: Uint8Array) {
  try {
    return slowly(bytes);
  } catch {
    return undefined;
  }
}

const quickly = (bytes: Uint8Array) => runToEnd(readExportRequest(bytes));

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.constantFrom(0n, 1_777_593_600_000_000_000n, 1_777_593_600_123_456_789n),
);
const scalar = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }).map((value) => ({ case: "stringValue", value })),
  fc.boolean().map((value) => ({ case: "boolValue", value })),
  fc
    .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
    .map((value) => ({ case: "intValue", value })),
  fc.double().map((value) => ({ case: "doubleValue", value })),
  fc.uint8Array({ maxLength: 4 }).map((value) => ({ case: "bytesValue", value })),
);
const anyValue = fc.oneof(
  { weight: 5, arbitrary: scalar },
  {
    weight: 1,
    arbitrary: fc.array(scalar, { maxLength: 3 }).map((values) => ({
      case: "arrayValue",
      value: { values: values.map((value) => ({ value })) },
    })),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const keyValue = fc.record({
  key: fc.constantFrom("host", "region", "", "\u00e9t\u00e9", "service.name"),
  value: fc.option(
    anyValue.map((value) => ({ value: value ?? { case: undefined } })),
    {
      nil: undefined,
    },
  ),
});
const attributes = fc.array(keyValue, { maxLength: 3 });
const numberPoint = fc.record({
  attributes,
  startTimeUnixNano: u64,
  timeUnixNano: u64,
  value: fc.oneof(
    fc.double().map((value) => ({ case: "asDouble", value })),
    fc
      .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
      .map((value) => ({ case: "asInt", value })),
    fc.constant({ case: undefined }),
  ),
  exemplars: fc.array(fc.record({ asDouble: fc.double() }), { maxLength: 1 }),
  flags: fc.nat({ max: 2 ** 32 - 1 }),
});
const points = fc.array(numberPoint, { maxLength: 4 });
const data = fc.oneof(
  points.map((dataPoints) => ({ case: "gauge", value: { dataPoints } })),
  fc
    .record({
      dataPoints: points,
      aggregationTemporality: fc.constantFrom(0, 1, 2, 7),
      isMonotonic: fc.boolean(),
    })
    .map((value) => ({ case: "sum", value })),
  fc.constant({ case: "histogram", value: { dataPoints: [{ count: 1n }] } }),
  fc.constant({ case: "summary", value: {} }),
  fc.constant({ case: undefined }),
);
const metric = fc.record({
  name: fc.string({ maxLength: 10 }),
  description: fc.string({ maxLength: 4 }),
  unit: fc.constantFrom("", "1", "By"),
  data,
});
const request = fc.record({
  resourceMetrics: fc.array(
    fc.record({
      resource: fc.option(fc.record({ attributes }), { nil: undefined }),
      scopeMetrics: fc.array(
        fc.record({
          scope: fc.option(
            fc.record({ name: fc.string({ maxLength: 6 }), version: fc.string(), attributes }),
            { nil: undefined },
          ),
          metrics: fc.array(metric, { maxLength: 3 }),
          schemaUrl: fc.constantFrom("", "https://opentelemetry.io/schemas/1.24.0"),
        }),
        { maxLength: 2 },
      ),
      schemaUrl: fc.constantFrom("", "https://opentelemetry.io/schemas/1.24.0"),
    }),
    { maxLength: 2 },
  ),
});

function bytesOf(value: object): Uint8Array {
  return toBinary(
    ExportMetricsServiceRequestSchema,
    create(ExportMetricsServiceRequestSchema, value as never),
  );
}

describe("the ExportMetricsServiceRequest read by hand", () => {
  it("reads what protobuf-es reads, as the same objects, its gauges and sums by hand", () => {
    // Histograms, summaries and points with exemplars are decoded by protobuf-es, one metric
    // at a time: the request is read all the same.
    fc.assert(
      fc.property(request, (value) => {
        const bytes = bytesOf(value);
        const fast = quickly(bytes);
        expect(fast).toBeDefined();
        expect(fast).toStrictEqual(slowly(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it("gives the same attribute list to every point with the same attribute bytes, beside a histogram", () => {
    const point = {
      attributes: [{ key: "host", value: { value: { case: "stringValue", value: "a" } } }],
      timeUnixNano: 1_777_593_600_000_000_000n,
      value: { case: "asDouble", value: 1 },
    };
    const bytes = bytesOf({
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              metrics: [
                { name: "m", data: { case: "gauge", value: { dataPoints: [point, point] } } },
                // Read by protobuf-es alone, without the gauge.
                { name: "h", data: { case: "histogram", value: { dataPoints: [{ count: 1n }] } } },
              ],
            },
          ],
        },
      ],
    });
    const read = quickly(bytes);
    const again = quickly(bytes);
    const dataPoints = (r: typeof read) => {
      const data = r?.resourceMetrics[0]?.scopeMetrics[0]?.metrics[0]?.data;
      return data?.case === "gauge" ? data.value.dataPoints : [];
    };
    const [first, second] = dataPoints(read);
    expect(first?.attributes).toHaveLength(1);
    expect(first?.attributes).toBe(second?.attributes);
    expect(dataPoints(again)[0]?.attributes).toBe(first?.attributes);
    expect(read).toStrictEqual(slowly(bytes));
  });

  it("never reads bytes protobuf-es refuses, nor reads them otherwise (cut, flipped)", () => {
    fc.assert(
      fc.property(damaged(request.map(bytesOf)), (bytes) => {
        const fast = quickly(bytes);
        // Whatever the hand reader takes, protobuf-es takes too, as the same request.
        if (fast !== undefined) expect(fast).toStrictEqual(slowly(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it("leaves a field it does not know, or of another wire type, to protobuf-es at every level", () => {
    const SCHEMAS: Readonly<Record<string, DescMessage>> = {
      resourceMetrics: ResourceMetricsSchema,
      scopeMetrics: ScopeMetricsSchema,
      metric: MetricSchema,
      gauge: GaugeSchema,
      sum: SumSchema,
      point: NumberDataPointSchema,
    };
    // A field it does not know, and known numbers with another wire type.
    const strangers = [
      { no: 15, wireType: 2, data: Uint8Array.from([0]) }, // empty: any message would take it
      { no: 1, wireType: 0, data: Uint8Array.from([1]) },
      { no: 2, wireType: 5, data: Uint8Array.from([0, 0, 0, 0]) },
    ];
    const point = { timeUnixNano: 1n, value: { case: "asDouble", value: 1 } };
    /** A request with `unknown` on the message at `level`. */
    const requestWith = (level: string, unknown: object) => {
      // `create` drops `$unknown` from what it is given: set on the message it made instead.
      const at = (name: string, message: object) =>
        level === name
          ? Object.assign(create(SCHEMAS[name] as DescMessage, message as never), {
              $unknown: [unknown],
            })
          : message;
      const metric = (kind: "gauge" | "sum") =>
        at("metric", {
          name: "m",
          data: { case: kind, value: at(kind, { dataPoints: [at("point", point)] }) },
        });
      return {
        resourceMetrics: [
          at("resourceMetrics", {
            scopeMetrics: [at("scopeMetrics", { metrics: [metric("gauge"), metric("sum")] })],
          }),
        ],
      };
    };
    for (const level of ["resourceMetrics", "scopeMetrics", "metric", "gauge", "sum", "point"]) {
      for (const unknown of strangers) {
        const bytes = bytesOf(requestWith(level, unknown));
        // protobuf-es skips a field it does not know, and refuses a known one of another type.
        const slow = slowlyOrNot(bytes);
        if (unknown.no === 15) expect(slow, level).toBeDefined();
        const fast = quickly(bytes);
        if (level === "resourceMetrics" || level === "scopeMetrics") {
          expect(fast, `${level}, field ${unknown.no}`).toBeUndefined();
        } else {
          // Inside a metric: that metric is decoded by protobuf-es, or refused with the request.
          expect(fast, `${level}, field ${unknown.no}`).toStrictEqual(slow);
        }
      }
    }
    expect(quickly(bytesOf(requestWith("none", strangers[0] as object)))).toBeDefined();
  });

  it("refuses an attribute value nested too deeply exactly where protobuf-es does", () => {
    // An array adds two messages a level (AnyValue, ArrayValue), a key-value list three
    // (AnyValue, KeyValueList, KeyValue): with one list or none, every depth is met.
    const nested = (levels: number, list: boolean) => {
      let value: object = { value: { case: "stringValue", value: "x" } };
      if (list)
        value = { value: { case: "kvlistValue", value: { values: [{ key: "k", value }] } } };
      for (let i = 0; i < levels; i++) {
        value = { value: { case: "arrayValue", value: { values: [value] } } };
      }
      return [{ key: "deep", value }];
    };
    const places = {
      resource: (a: object[]) => ({ resource: { attributes: a }, scopeMetrics: [] }),
      scope: (a: object[]) => ({ scopeMetrics: [{ scope: { attributes: a }, metrics: [] }] }),
      point: (a: object[]) => ({
        scopeMetrics: [
          {
            metrics: [
              {
                name: "m",
                data: {
                  case: "sum",
                  value: { dataPoints: [{ attributes: a, value: { case: "asInt", value: 1n } }] },
                },
              },
            ],
          },
        ],
      }),
    };
    for (const [place, make] of Object.entries(places)) {
      const outcomes = new Set<string>();
      for (let depth = 80; depth <= 100; depth++) {
        const bytes = bytesOf({
          resourceMetrics: [
            make(nested(Math.floor((depth - 3 * (depth % 2)) / 2), depth % 2 === 1)),
          ],
        });
        const slow = slowlyOrNot(bytes);
        outcomes.add(slow === undefined ? "refused" : "read");
        const fast = quickly(bytes);
        if (slow === undefined) expect(fast, `${place}, ${depth} messages deep`).toBeUndefined();
        else expect(fast, `${place}, ${depth} messages deep`).toStrictEqual(slow);
      }
      // The limit lies within the levels tried: both sides of it are compared.
      expect(outcomes, place).toEqual(new Set(["read", "refused"]));
    }
  });

  it("gives up on a string that is not UTF-8, which protobuf-es then decides", () => {
    // resource_metrics { scope_metrics { metrics { name: 0xff } } }
    const bytes = Uint8Array.from([0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0xff]);
    expect(quickly(bytes)).toBeUndefined();
    const ascii = Uint8Array.from([0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x0a, 0x01, 0x61]);
    expect(quickly(ascii)).toStrictEqual(slowly(ascii));
  });
});
