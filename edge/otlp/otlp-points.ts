/**
 * The data points of one OTLP metric, each kind converted to what a stored metric is made of:
 * its series — the fields every kind has (name, tags, kind, unit, start time) and the kind's own
 * (temporality, buckets, quantiles...) — its value and its time. A point that cannot be stored
 * throws a `PointError` saying why.
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
import { BoundedMemo, objectMemo } from "../../shared/bounded-memo.ts";
import { METRIC_BOUNDS } from "../../shared/limits.ts";
import { addAttributes, attributesKey, exactNumber } from "./otlp-attributes.ts";
import type { SeriesMetric } from "../../shared/series-columns.ts";
import { isInRange, rfc3339FromNanos } from "../../shared/timestamp.ts";

/** Why one data point cannot be stored. */
export class PointError extends Error {}

/**
 * The tags every point of a scope starts from (its resource's and its own), as a map to add a
 * point's attributes to, and as the object the points without attributes all share.
 */
export interface ScopeTags {
  readonly map: ReadonlyMap<string, string>;
  readonly record: Readonly<Record<string, string>>;
}

/**
 * A data point as columns hold it: its series (the stored metric but for its value and time, in
 * the metric's field order) and its value and time. Points of a gauge or a sum with the same
 * tags and start time share one series object.
 */
export interface OtlpPoint {
  readonly series: SeriesMetric;
  readonly value: number;
  /** The time in whole milliseconds, and the nanoseconds past them. */
  readonly ms: number;
  readonly subMs: number;
}

type Convert<P> = (point: P, metric: OtlpMetric, tags: ScopeTags) => OtlpPoint;

/**
 * A metric's points: how many, how to convert the one at an index given the scope's tags, and
 * the name of the kind's field (as in a protobuf field path). One function for all the points,
 * not one each: a request holds thousands.
 */
export interface MetricPoints {
  readonly kind: string;
  readonly count: number;
  readonly convert: (index: number, tags: ScopeTags) => OtlpPoint;
}

/** The points of a metric and how to convert them; undefined when it holds no known kind. */
export function pointsOf(metric: OtlpMetric): MetricPoints | undefined {
  const data = metric.data;
  const bind = <P>(kind: string, points: readonly P[], convert: Convert<P>): MetricPoints => ({
    kind,
    count: points.length,
    convert: (index, tags) => convert(points[index] as P, metric, tags),
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

/** What every kind of point has: a value and a time, and a series with its own `fields`. */
function common(
  point: { timeUnixNano: bigint; startTimeUnixNano: bigint; flags: number; attributes: KeyValue[] },
  metric: OtlpMetric,
  scopeTags: ScopeTags,
  kind: string,
  value: number,
  fields: SeriesFields,
): OtlpPoint {
  // Bit 0 of the flags (FLAG_NO_RECORDED_VALUE) marks a point that holds no measurement.
  if ((point.flags & 1) !== 0) throw new PointError("is flagged as having no recorded value");
  // A point's time is required; using the receive time instead would make a retried batch
  // look new, and so be stored twice.
  if (point.timeUnixNano === 0n) throw new PointError("has no time_unix_nano");
  const ms = timeMsOf(point.timeUnixNano, "time_unix_nano");
  // Checked before the tags are copied, so that a resource with thousands of attributes does
  // not cost a copy of them for every one of its points.
  if (scopeTags.map.size > METRIC_BOUNDS.tagCount) {
    throw new PointError(
      `has ${scopeTags.map.size} tags or more from its resource and scope alone; the limit is ${METRIC_BOUNDS.tagCount}`,
    );
  }
  const tags = pointTags(scopeTags, point.attributes);
  const series = fields.seriesOf(metric, tags, kind, point.startTimeUnixNano);
  return { series, value, ms, subMs: Number(point.timeUnixNano % NS_PER_MS) };
}

/** What a kind adds to a series after the common fields. */
interface SeriesFields {
  seriesOf(
    metric: OtlpMetric,
    tags: Readonly<Record<string, string>>,
    kind: string,
    startTimeUnixNano: bigint,
  ): SeriesMetric;
}

/** A series of the common fields and `extra` (a new object per call, for a point of its own). */
function seriesWith(extra: Readonly<Record<string, unknown>>): SeriesFields {
  return {
    seriesOf(metric, tags, kind, startTimeUnixNano) {
      const series: Record<string, unknown> = { name: metric.name, tags, kind };
      if (metric.unit !== "") series["unit"] = metric.unit;
      if (startTimeUnixNano !== 0n) {
        series["startTime"] = timeOf(startTimeUnixNano, "start_time_unix_nano");
      }
      return Object.assign(series, extra) as SeriesMetric;
    },
  };
}

/**
 * The series of a gauge's or a sum's points with the same `extra`: one object per tag set (by
 * object, shared by a series' points: `pointTags`) and start time, so that the points of a
 * series share it and it is checked and written once. Kept across requests too (`knownSeries`),
 * as the tag sets are: an SDK exports the same series interval after interval.
 */
function sharedSeries(extra: Readonly<Record<string, unknown>>): SeriesFields {
  const made = seriesWith(extra);
  const extraKey = JSON.stringify(extra);
  const byTags = new WeakMap<object, Map<bigint, SeriesMetric>>();
  return {
    seriesOf(metric, tags, kind, startTimeUnixNano) {
      let byStart = byTags.get(tags);
      if (byStart === undefined) {
        byStart = new Map();
        byTags.set(tags, byStart);
      }
      let series = byStart.get(startTimeUnixNano);
      if (series === undefined) {
        const { name, unit } = metric;
        // Lengths first: no part's text can then pass for another's.
        const key = `${idOf(tags)}|${name.length}:${name}${unit.length}:${unit}${kind}|${startTimeUnixNano}|${extraKey}`;
        series = knownSeries.get(key, () => made.seriesOf(metric, tags, kind, startTimeUnixNano));
        byStart.set(startTimeUnixNano, series);
      }
      return series;
    },
  };
}

/** The series of gauges and sums made already, by tag set and what else makes them. */
const knownSeries = new BoundedMemo<SeriesMetric>(20_000);

/**
 * A number for each object kept across requests (a scope's tags, a tag set), for keys: the
 * same object always has the same number, and no other object ever gets it.
 */
const idOf = objectMemo((_: object) => ++lastId);
let lastId = 0;

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
  let bySeries = seriesTags.get(scopeTags);
  if (bySeries === undefined) {
    bySeries = new Map();
    seriesTags.set(scopeTags, bySeries);
  }
  // The scope's tags are the same for all its points: the point's attributes, as text, decide
  // its tag set, which is made (the scope's map copied) once per series.
  const key = keyOfAttributes(attributes);
  let record = bySeries.get(key);
  if (record === undefined) {
    // Made once across requests: the scope's `map` is kept across them (`scopeTagsOf`).
    record = knownTagSets.get(`${idOf(scopeTags.map)}|${key}`, () => {
      const tags = new Map(scopeTags.map);
      addAttributes(tags, attributes);
      return Object.fromEntries(tags);
    });
    bySeries.set(key, record);
  }
  return record;
}

/**
 * Each attribute list's `attributesKey`, by the list: the request reader gives the points of a
 * series one list (otlp-request-reader.ts), whose text is then made once, not once per point.
 */
const keyOfAttributes = objectMemo(attributesKey);

/**
 * Each scope's tag sets in a request, by its points' attributes (`attributesKey`); never
 * changed once made.
 */
const seriesTags = new WeakMap<ScopeTags, Map<string, Readonly<Record<string, string>>>>();
/** Tag sets made already, by their scope's tags and their points' attributes. */
const knownTagSets = new BoundedMemo<Readonly<Record<string, string>>>(20_000);

function numberPoint(
  kind: string,
  extra: { temporality?: string; monotonic?: boolean },
): Convert<NumberDataPoint> {
  const shared = sharedSeries(extra);
  return (point, metric, tags) => {
    const v = point.value;
    switch (v.case) {
      case undefined:
        throw new PointError("has neither as_double nor as_int");
      case "asDouble":
        return common(point, metric, tags, kind, finite(v.value, "as_double"), shared);
      case "asInt": {
        // Beyond 2^53 `value` is the nearest double; the exact integer is kept beside it.
        const exact = exactNumber(v.value);
        const fields = typeof exact === "string" ? seriesWith({ ...extra, asInt: exact }) : shared;
        return common(point, metric, tags, kind, Number(v.value), fields);
      }
    }
  };
}

function histogramPoint(temporality: string): Convert<HistogramDataPoint> {
  // The sum is optional in OTLP (a histogram of negative values may leave it out); without
  // it, `value` is the count of observations.
  return (point, metric, tags) =>
    common(
      point,
      metric,
      tags,
      "histogram",
      distributionValue(point),
      seriesWith({
        temporality,
        histogram: {
          count: exactNumber(point.count),
          ...optionalNumbers(point),
          bounds: point.explicitBounds.map(jsonNumber),
          counts: point.bucketCounts.map(exactNumber),
        },
      }),
    );
}

function exponentialHistogramPoint(temporality: string): Convert<ExponentialHistogramDataPoint> {
  const buckets = (b: ExponentialHistogramDataPoint_Buckets | undefined) => ({
    offset: b?.offset ?? 0,
    counts: (b?.bucketCounts ?? []).map(exactNumber),
  });
  return (point, metric, tags) =>
    common(
      point,
      metric,
      tags,
      "exponential_histogram",
      distributionValue(point),
      seriesWith({
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
      }),
    );
}

const summaryPoint: Convert<SummaryDataPoint> = (point, metric, tags) =>
  common(
    point,
    metric,
    tags,
    "summary",
    finite(point.sum, "sum"),
    seriesWith({
      summary: {
        count: exactNumber(point.count),
        sum: point.sum,
        quantiles: point.quantileValues.map((q) => ({
          quantile: jsonNumber(q.quantile),
          value: jsonNumber(q.value),
        })),
      },
    }),
  );

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

const NS_PER_MS = 1_000_000n;

/** A time's whole milliseconds, refused as `timeOf` refuses it. */
function timeMsOf(ns: bigint, field: string): number {
  const ms = ns < 0n ? -1 : Number(ns / NS_PER_MS);
  if (!isInRange(ms)) throw new PointError(`${field} ${ns} is outside 1970–9999`);
  return ms;
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
