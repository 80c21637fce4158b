import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeRequest } from "../../edge/otlp/otlp-http.ts";
import { pointsOfRequest } from "../../edge/otlp/otlp-metrics.ts";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { encodeColumnsV4 } from "../../shared/envelope-v4-encoder.ts";
import { encodeSeriesMessagesV4 } from "../helpers/envelope-v4-by-metric.ts";
import {
  ExportMetricsServiceRequestSchema,
  type ExportMetricsServiceRequest,
} from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import type { MetricSchema } from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import { outcome } from "../helpers/encoded-outcome.ts";
import { metricsOfRequestByMetric } from "../helpers/otlp-metrics-by-metric.ts";

const RECEIVED_AT = 1_777_593_600_000;
const NOW_NS = BigInt(RECEIVED_AT) * 1_000_000n;
const MiB = 1024 * 1024;

/** Mostly `usual`, now and then one of `odd`. */
const mostly = <T>(usual: readonly T[], odd: readonly T[]) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.constantFrom(...usual) },
    { weight: 1, arbitrary: fc.constantFrom(...odd) },
  );

const text = (value: string) => ({ value: { case: "stringValue" as const, value } });

// Points as SDKs and collectors send them, and now and then what is refused: no time, a time
// out of range or ahead, a flag saying no value was recorded, NaN, an attribute past its
// length, a name past its own; and what only the schema decides (a surrogate pair).
const attribute = fc.record({
  key: mostly(["host", "route", "__proto__", "1"], ["k".repeat(130)]),
  value: mostly(
    [
      text("web-1"),
      text("/checkout"),
      text("é☀"),
      { value: { case: "intValue" as const, value: 7n } },
    ],
    [text("😀"), text("v".repeat(300))],
  ),
});
const time = mostly(
  [NOW_NS, NOW_NS - 15_000_123_456n, NOW_NS + 1n],
  [NOW_NS + 3_600_000_000_000n, 0n, 2n ** 63n],
);
const startTime = mostly([0n, NOW_NS - 60_000_000_000n], [2n ** 63n]);
const numberPoint = fc.record({
  attributes: fc.array(attribute, { maxLength: 2 }),
  timeUnixNano: time,
  startTimeUnixNano: startTime,
  flags: mostly([0], [1]),
  value: mostly(
    [
      { case: "asDouble" as const, value: 1.5 },
      { case: "asDouble" as const, value: -0 },
      { case: "asInt" as const, value: 42n },
    ],
    [
      { case: "asDouble" as const, value: Number.NaN },
      { case: "asInt" as const, value: 2n ** 60n },
      { case: undefined },
    ],
  ),
});
const histogramPoint = fc.record({
  attributes: fc.array(attribute, { maxLength: 2 }),
  timeUnixNano: time,
  startTimeUnixNano: startTime,
  count: fc.constantFrom(3n, 0n),
  sum: mostly([4.5, undefined], [Number.POSITIVE_INFINITY]),
  explicitBounds: fc.constant<number[]>([1, 5]),
  bucketCounts: fc.constant<bigint[]>([1n, 1n, 1n]),
});
const name = mostly(["http.server.duration", "queue.depth", "dísk"], ["m".repeat(260)]);
const metric: fc.Arbitrary<MessageInitShape<typeof MetricSchema>> = fc.oneof(
  fc.record({
    name,
    unit: fc.constantFrom("", "ms"),
    data: fc.oneof(
      fc.array(numberPoint, { maxLength: 5 }).map((dataPoints) => ({
        case: "gauge" as const,
        value: { dataPoints },
      })),
      fc.array(numberPoint, { maxLength: 5 }).map((dataPoints) => ({
        case: "sum" as const,
        value: { dataPoints, aggregationTemporality: 2, isMonotonic: true },
      })),
    ),
  }),
  fc.record({
    name,
    unit: fc.constant(""),
    data: fc.array(histogramPoint, { maxLength: 3 }).map((dataPoints) => ({
      case: "histogram" as const,
      value: { dataPoints, aggregationTemporality: 1 },
    })),
  }),
);

const aCase = fc.record({
  // Metrics are repeated, so that the points of a series come in several places.
  metrics: fc
    .array(metric, { minLength: 1, maxLength: 4 })
    .chain((all) => fc.array(fc.constantFrom(...all), { minLength: 1, maxLength: 6 })),
  resource: fc.array(attribute, { maxLength: 2 }),
  limitBytes: mostly([undefined], [300, 2_000]),
  maxBytes: mostly([MiB], [400, 1_500]),
  maxFutureMs: fc.constantFrom(undefined, 600_000),
});

describe("OTLP into columns", () => {
  it("property: refuses what a metric per point refused, as it did, and publishes the same bytes", () => {
    fc.assert(
      fc.property(aCase, (c) => {
        const request = create(ExportMetricsServiceRequestSchema, {
          resourceMetrics: [
            {
              resource: { attributes: c.resource },
              scopeMetrics: [{ scope: { name: "meter" }, metrics: c.metrics }],
            },
          ],
        });
        const budget = () => new ExpansionBudget(10_000, c.limitBytes);
        const bound =
          c.maxFutureMs === undefined
            ? undefined
            : { receivedAt: RECEIVED_AT, maxFutureMs: c.maxFutureMs };
        let byMetricRest: unknown;
        let byColumnsRest: unknown;
        const byMetric = outcome(budget(), (spent) => {
          const { metrics, ...rest } = runToEnd(metricsOfRequestByMetric(request, spent, bound));
          byMetricRest = rest;
          return runToEnd(encodeSeriesMessagesV4(metrics, RECEIVED_AT, c.maxBytes));
        });
        const byColumns = (read: ExportMetricsServiceRequest) =>
          outcome(budget(), (spent) => {
            const { columns, ...rest } = runToEnd(pointsOfRequest(read, spent, bound));
            byColumnsRest = rest;
            return runToEnd(encodeColumnsV4(columns, RECEIVED_AT, c.maxBytes));
          });
        expect(byColumns(request)).toEqual(byMetric);
        expect(byColumnsRest).toEqual(byMetricRest);
        // As the handler reads the bytes: gauges and sums by hand, their points' attribute
        // lists shared by their bytes, across requests too.
        const bytes = toBinary(ExportMetricsServiceRequestSchema, request);
        expect(byColumns(runToEnd(decodeRequest(bytes, "protobuf")))).toEqual(byMetric);
        expect(byColumnsRest).toEqual(byMetricRest);
      }),
      { numRuns: 500 },
    );
  });
});
