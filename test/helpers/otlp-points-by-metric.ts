/**
 * The OTLP conversion's points as they were made before columns (for tests only: the reference
 * of test/unit/otlp-columns.test.ts). The data points of one OTLP metric, each kind converted to a stored metric: the fields every
 * kind has (name, value, time, tags, kind, unit, start time) and the kind's own (temporality,
 * buckets, quantiles...). A point that cannot be stored throws a `PointError` saying why.
 */
import type { KeyValue } from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";
import type {
  ExponentialHistogramDataPoint,
  ExponentialHistogramDataPoint_Buckets,
  HistogramDataPoint,
  Metric as OtlpMetric,
  NumberDataPoint,
  SummaryDataPoint,
} from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import { METRIC_BOUNDS } from "../../shared/limits.ts";
import { addAttributes, exactNumber } from "../../edge/otlp/otlp-attributes.ts";
import { rfc3339FromNanos } from "../../shared/timestamp.ts";

import { PointError, type ScopeTags } from "../../edge/otlp/otlp-points.ts";

type Convert<P> = (point: P, metric: OtlpMetric, tags: ScopeTags) => Record<string, unknown>;

/**
 * A metric's points, each as its conversion given the scope's tags, and the name of the kind's
 * field (as in a protobuf field path).
 */
export interface MetricPoints {
  readonly kind: string;
  readonly conversions: readonly ((tags: ScopeTags) => Record<string, unknown>)[];
}

/** The points of a metric and how to convert them; undefined when it holds no known kind. */
export function pointsOf(metric: OtlpMetric): MetricPoints | undefined {
  const data = metric.data;
  const bind = <P>(kind: string, points: readonly P[], convert: Convert<P>): MetricPoints => ({
    kind,
    conversions: points.map((point) => (tags) => convert(point, metric, tags)),
  });
  switch (data.case) {
    case undefined:
      return undefined;
    case "gauge":
      return bind("gauge", data.value.dataPoints, numberPoint("gauge", {}));
    case "sum": {
      const { aggregationTemporality, isMonotonic } = data.value;
      const extra = { temporality: temporality(aggregationTemporality), monotonic: isMonotonic };
      return bind("sum", data.value.dataPoints, numberPoint("sum", extra));
    }
    case "histogram": {
      const convert = histogramPoint(temporality(data.value.aggregationTemporality));
      return bind("histogram", data.value.dataPoints, convert);
    }
    case "exponentialHistogram": {
      const convert = exponentialHistogramPoint(temporality(data.value.aggregationTemporality));
      return bind("exponential_histogram", data.value.dataPoints, convert);
    }
    case "summary":
      return bind("summary", data.value.dataPoints, summaryPoint);
  }
}

/** What every kind of point has: name, value, time, tags, the kind and unit, the start time. */
function common(
  point: { timeUnixNano: bigint; startTimeUnixNano: bigint; flags: number; attributes: KeyValue[] },
  metric: OtlpMetric,
  scopeTags: ScopeTags,
  kind: string,
  value: number,
): Record<string, unknown> {
  // Bit 0 of the flags (FLAG_NO_RECORDED_VALUE) marks a point that holds no measurement.
  if ((point.flags & 1) !== 0) throw new PointError("is flagged as having no recorded value");
  // A point's time is required; using the receive time instead would make a retried batch
  // look new, and so be stored twice.
  if (point.timeUnixNano === 0n) throw new PointError("has no time_unix_nano");
  const timestamp = timeOf(point.timeUnixNano, "time_unix_nano");
  // Checked before the tags are copied, so that a resource with thousands of attributes does
  // not cost a copy of them for every one of its points.
  if (scopeTags.map.size > METRIC_BOUNDS.tagCount) {
    throw new PointError(
      `has ${scopeTags.map.size} tags or more from its resource and scope alone; the limit is ${METRIC_BOUNDS.tagCount}`,
    );
  }
  const converted: Record<string, unknown> = {
    name: metric.name,
    value,
    timestamp,
    tags: pointTags(scopeTags, point.attributes),
    kind,
  };
  if (metric.unit !== "") converted["unit"] = metric.unit;
  if (point.startTimeUnixNano !== 0n) {
    converted["startTime"] = timeOf(point.startTimeUnixNano, "start_time_unix_nano");
  }
  return converted;
}

/**
 * The scope's tags and the point's attributes; the scope's own object when it adds none, and
 * one object for all the points of a scope with the same tags (the points of a series), so
 * that a series' tags are checked, measured, digested and grouped once per request.
 */
function pointTags(
  scopeTags: ScopeTags,
  attributes: readonly KeyValue[],
): Readonly<Record<string, string>> {
  if (attributes.length === 0) return scopeTags.record;
  const tags = new Map(scopeTags.map);
  addAttributes(tags, attributes);
  let bySeries = seriesTags.get(scopeTags);
  if (bySeries === undefined) {
    bySeries = new Map();
    seriesTags.set(scopeTags, bySeries);
  }
  const key = JSON.stringify([...tags]);
  let record = bySeries.get(key);
  if (record === undefined) {
    record = Object.fromEntries(tags);
    bySeries.set(key, record);
  }
  return record;
}

/** Each scope's tag sets, by their entries as JSON; nothing changes them once made. */
const seriesTags = new WeakMap<ScopeTags, Map<string, Readonly<Record<string, string>>>>();

function numberPoint(
  kind: string,
  extra: { temporality?: string; monotonic?: boolean },
): Convert<NumberDataPoint> {
  return (point, metric, tags) => {
    const v = point.value;
    switch (v.case) {
      case undefined:
        throw new PointError("has neither as_double nor as_int");
      case "asDouble":
        return { ...common(point, metric, tags, kind, finite(v.value, "as_double")), ...extra };
      case "asInt": {
        const converted = { ...common(point, metric, tags, kind, Number(v.value)), ...extra };
        // Beyond 2^53 `value` is the nearest double; the exact integer is kept beside it.
        const exact = exactNumber(v.value);
        return typeof exact === "string" ? { ...converted, asInt: exact } : converted;
      }
    }
  };
}

function histogramPoint(temporality: string): Convert<HistogramDataPoint> {
  return (point, metric, tags) => ({
    // The sum is optional in OTLP (a histogram of negative values may leave it out); without
    // it, `value` is the count of observations.
    ...common(point, metric, tags, "histogram", distributionValue(point)),
    temporality,
    histogram: {
      count: exactNumber(point.count),
      ...optionalNumbers(point),
      bounds: point.explicitBounds.map(jsonNumber),
      counts: point.bucketCounts.map(exactNumber),
    },
  });
}

function exponentialHistogramPoint(temporality: string): Convert<ExponentialHistogramDataPoint> {
  const buckets = (b: ExponentialHistogramDataPoint_Buckets | undefined) => ({
    offset: b?.offset ?? 0,
    counts: (b?.bucketCounts ?? []).map(exactNumber),
  });
  return (point, metric, tags) => ({
    ...common(point, metric, tags, "exponential_histogram", distributionValue(point)),
    temporality,
    exponentialHistogram: {
      count: exactNumber(point.count),
      ...optionalNumbers(point),
      scale: point.scale,
      zeroCount: exactNumber(point.zeroCount),
      zeroThreshold: jsonNumber(point.zeroThreshold),
      positive: buckets(point.positive),
      negative: buckets(point.negative),
    },
  });
}

const summaryPoint: Convert<SummaryDataPoint> = (point, metric, tags) => ({
  ...common(point, metric, tags, "summary", finite(point.sum, "sum")),
  summary: {
    count: exactNumber(point.count),
    sum: point.sum,
    quantiles: point.quantileValues.map((q) => ({
      quantile: jsonNumber(q.quantile),
      value: jsonNumber(q.value),
    })),
  },
});

function distributionValue(point: { sum?: number | undefined; count: bigint }): number {
  return point.sum === undefined ? Number(point.count) : finite(point.sum, "sum");
}

/** A histogram's optional sum, min and max, each only when the point has it. */
function optionalNumbers(point: {
  sum?: number | undefined;
  min?: number | undefined;
  max?: number | undefined;
}) {
  const present: Record<string, number | string> = {};
  if (point.sum !== undefined) present["sum"] = point.sum;
  if (point.min !== undefined) present["min"] = jsonNumber(point.min);
  if (point.max !== undefined) present["max"] = jsonNumber(point.max);
  return present;
}

/** A time as RFC 3339 with nanoseconds (every fixed64 is in range: 2^64 ns is in 2554). */
function timeOf(ns: bigint, field: string): string {
  const time = rfc3339FromNanos(ns);
  if (time === undefined) throw new PointError(`${field} ${ns} is outside 1970–9999`);
  return time;
}

/** The number that becomes the metric's `value`, which must be finite. */
function finite(n: number, field: string): number {
  if (!Number.isFinite(n)) throw new PointError(`${field} is ${n}; it must be a finite number`);
  return n;
}

/** A number stored inside a metric's extra fields: JSON has no NaN or ±Infinity, so by name. */
function jsonNumber(n: number): number | string {
  return Number.isFinite(n) ? n : String(n);
}

function temporality(value: number): string {
  return TEMPORALITIES[value] ?? String(value);
}

// AggregationTemporality's values, as the stored metric names them.
const TEMPORALITIES: Readonly<Record<number, string>> = {
  0: "unspecified",
  1: "delta",
  2: "cumulative",
};
