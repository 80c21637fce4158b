/**
 * An OTLP `ExportMetricsServiceRequest` as points: one stored metric per data point, named after its
 * OTLP metric, tagged with the resource's, the scope's and the point's attributes, and holding
 * what does not fit `value` (histogram buckets, quantiles, temporality...) as extra fields. Each
 * point is checked on its own, so that the valid ones can be stored and the others counted in
 * the answer's `partial_success`.
 */
import {
  checkedSeries,
  checkPoint,
  type CheckedSeries,
  type SeriesCheck,
} from "../publish/agent-publish.ts";
import type { FutureBound } from "../publish/future-timestamps.ts";
import type { Steps } from "../../shared/cooperative.ts";
import type { ExpansionBudget } from "../publish/expansion-budget.ts";
import type { ExportMetricsServiceRequest } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import type { KeyValue } from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";
import type { Metric as OtlpMetric } from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import { BoundedMemo, MEMO_KEY_CHARS, objectMemo } from "../../shared/bounded-memo.ts";
import { SeriesColumns, seriesWithText, type SeriesMetric } from "../../shared/series-columns.ts";
import { rfc3339FromNanos } from "../../shared/timestamp.ts";
import { addAttributes, attributesKey } from "./otlp-attributes.ts";
import { PointError, pointsOf, type OtlpPoint, type ScopeTags } from "./otlp-points.ts";

/** One refused data point: where it is in the request (a protobuf field path) and why. */
export interface PointRefusal {
  readonly field: string;
  readonly description: string;
}

export interface ConvertedRequest {
  /** Every data point of the request, the refused ones included. */
  readonly points: number;
  /** The accepted points, in the request's order, in columns. */
  readonly columns: SeriesColumns;
  /** How many points were refused. */
  readonly rejected: number;
  /** The first refusals (at most `REQUEST_LIMITS.errorDetails`). */
  readonly refusals: readonly PointRefusal[];
  /** How many metrics hold no data this server can read (none, or a kind newer than it knows). */
  readonly unreadable: number;
  /** The first of them (at most `REQUEST_LIMITS.errorDetails`), by name and place. */
  readonly unreadableNames: readonly string[];
}

/** The tag naming a point's instrumentation scope, as OpenTelemetry names it outside OTLP. */
export const SCOPE_NAME_TAG = "otel.scope.name";
export const SCOPE_VERSION_TAG = "otel.scope.version";

/** The metrics of one scope, with the tags its points start from. */
interface Scope {
  readonly field: string;
  readonly metrics: readonly OtlpMetric[];
  /** The resource's and the scope's tags, made on first use (counting points needs none). */
  readonly tags: () => ScopeTags;
}

/** Every data point of the request, counted before anything else is done with them. */
export function countDataPoints(request: ExportMetricsServiceRequest): number {
  let points = 0;
  for (const scope of scopesOf(request)) {
    for (const metric of scope.metrics) points += metric.data.value?.dataPoints.length ?? 0;
  }
  return points;
}

/**
 * Converts every data point and checks each as the JSON API checks a metric: its series once
 * (`checkSeries`; the points of a series share one object) and the point by its bounds
 * (`checkPoint`). A request whose metrics outgrow its `budget` is refused (413) at the first
 * point past it.
 */
export function* pointsOfRequest(
  request: ExportMetricsServiceRequest,
  budget: ExpansionBudget,
  bound?: FutureBound,
): Steps<ConvertedRequest> {
  const columns = new SeriesColumns();
  const series = new WeakMap<SeriesMetric, { readonly id: number; readonly check: SeriesCheck }>();
  const refused: (PointRefusal & { ordinal: number })[] = [];
  const unreadableNames: string[] = [];
  let unreadable = 0;
  let points = 0;

  for (const scope of scopesOf(request)) {
    for (const [m, metric] of scope.metrics.entries()) {
      const metricField = `${scope.field}.metrics[${m}]`;
      const metricPoints = pointsOf(metric);
      if (metricPoints === undefined) {
        if (unreadable++ < REQUEST_LIMITS.errorDetails) {
          unreadableNames.push(`metric ${quoted(metric.name)} (${metricField})`);
        }
        continue;
      }
      const { kind, count, convert } = metricPoints;
      for (let p = 0; p < count; p++) {
        if ((p & 255) === 255) yield;
        const ordinal = points++;
        let point: OtlpPoint;
        try {
          point = convert(p, scope.tags());
        } catch (err) {
          if (!(err instanceof PointError)) throw err;
          refused.push({
            field: pointField(metricField, kind, p),
            ordinal,
            description: err.message,
          });
          continue;
        }
        let ref = series.get(point.series);
        if (ref === undefined) {
          const known = checkedSeriesOf(point.series);
          ref = { id: columns.indexOf(known.series), check: known.check };
          series.set(point.series, ref);
        }
        const { value, ms, subMs } = point;
        const valueText = String(value);
        const problem = checkPoint(
          ref.check,
          value,
          valueText,
          ms,
          subMs,
          ordinal,
          budget,
          bound,
          () => metricOf(point),
        );
        if (problem === undefined) {
          columns.addPoint(ref.id, ms, subMs, valueText);
          continue;
        }
        const description = problem.details
          .map((d) => (d.path === "" ? d.message : `${d.path} ${d.message}`))
          .join("; ");
        refused.push({ field: pointField(metricField, kind, p), ordinal, description });
      }
      yield;
    }
  }
  return {
    points,
    columns,
    rejected: refused.length,
    refusals: refused
      .slice(0, REQUEST_LIMITS.errorDetails)
      .map(({ field, description }) => ({ field, description: description.slice(0, 512) })),
    unreadable,
    unreadableNames,
  };
}

/** Where a data point is in the request, as a protobuf field path. */
function pointField(metricField: string, kind: string, index: number): string {
  return `${metricField}.${kind}.data_points[${index}]`;
}

/**
 * Series made already, by their JSON. An SDK exports the same series interval after interval:
 * each one's digest, size and checks are made once, not once per request.
 */
const knownSeries = new BoundedMemo<CheckedSeries>(20_000);

function knownSeriesOf(metric: SeriesMetric): CheckedSeries {
  const text = JSON.stringify(metric);
  const make = () => checkedSeries(seriesWithText(metric, text));
  return text.length > MEMO_KEY_CHARS ? make() : knownSeries.get(text, make);
}

/**
 * Each series object's checked series: the converter keeps the objects of gauges and sums
 * across requests (otlp-points.ts), and one seen before needs no JSON to be found.
 */
const checkedSeriesOf = objectMemo(knownSeriesOf);

/** The metric a point stands for, for the schema to check when bounds alone cannot. */
function metricOf({ series, value, ms, subMs }: OtlpPoint): Record<string, unknown> {
  const { name, ...rest } = series;
  const timestamp = rfc3339FromNanos(BigInt(ms) * 1_000_000n + BigInt(subMs));
  return { name, value, timestamp, ...rest };
}

/** The answer's `error_message`: how many points were refused, and the first few reasons. */
export function refusalSummary(converted: Omit<ConvertedRequest, "columns">): string {
  const parts: string[] = [];
  if (converted.rejected > 0) {
    const shown = converted.refusals.slice(0, 5);
    const more = converted.rejected - shown.length;
    parts.push(
      `${converted.rejected} of ${converted.points} data points were refused: ` +
        shown.map((r) => `${r.field}: ${r.description}`).join("; ") +
        (more > 0 ? `; and ${more} more` : ""),
    );
  }
  if (converted.unreadable > 0) {
    const shown = converted.unreadableNames.slice(0, 5);
    const more = converted.unreadable - shown.length;
    parts.push(
      `${converted.unreadable} metrics hold no gauge, sum, histogram, exponential histogram or summary, so nothing of them was stored: ${shown.join(", ")}${more > 0 ? ` and ${more} more` : ""}`,
    );
  }
  return parts.join(". ");
}

function* scopesOf(request: ExportMetricsServiceRequest): Generator<Scope> {
  for (const [r, resourceMetrics] of request.resourceMetrics.entries()) {
    const resource = resourceMetrics.resource?.attributes ?? [];
    const scopeTags = (name: string, version: string, attributes: readonly KeyValue[]) =>
      once(() => scopeTagsOf(resource, name, version, attributes));
    const field = `resource_metrics[${r}]`;
    for (const [s, { scope, metrics }] of resourceMetrics.scopeMetrics.entries()) {
      yield {
        field: `${field}.scope_metrics[${s}]`,
        metrics,
        tags: scopeTags(scope?.name ?? "", scope?.version ?? "", scope?.attributes ?? []),
      };
    }
    // Senders from before scopes (OTLP 0.18 and older) use the deprecated field instead, which
    // receivers read only when `scope_metrics` is empty.
    if (resourceMetrics.scopeMetrics.length > 0) continue;
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- read for those old senders
    for (const [s, library] of resourceMetrics.instrumentationLibraryMetrics.entries()) {
      const { name = "", version = "" } = library.instrumentationLibrary ?? {};
      yield {
        field: `${field}.instrumentation_library_metrics[${s}]`,
        metrics: library.metrics,
        tags: scopeTags(name, version, []),
      };
    }
  }
}

/**
 * The tags a scope's points start from: its resource's attributes, its name and version, its
 * own attributes. Kept across requests by what they are made of: an SDK exports the same
 * resource and scopes every time, and the tag sets of its series are kept by these objects
 * (otlp-points.ts `pointTags`), so that each is made once, not once per request.
 */
function scopeTagsOf(
  resource: readonly KeyValue[],
  name: string,
  version: string,
  attributes: readonly KeyValue[],
): ScopeTags {
  // Each part's text is written after its length: no part can pass for another.
  const key = `${attributesKey(resource)}|${name.length}:${name}${version.length}:${version}${attributesKey(attributes)}`;
  const make = (): ScopeTags => {
    const tags = new Map<string, string>();
    addAttributes(tags, resource);
    // Over the limit already, every point of the scope is refused: no copy for them.
    if (tags.size > METRIC_BOUNDS.tagCount) return { map: tags, record: {} };
    if (name !== "") tags.set(SCOPE_NAME_TAG, name);
    if (version !== "") tags.set(SCOPE_VERSION_TAG, version);
    addAttributes(tags, attributes);
    return { map: tags, record: Object.fromEntries(tags) };
  };
  const { map, record } = key.length > MAX_SCOPE_KEY_CHARS ? make() : knownScopeTags.get(key, make);
  // An object of this request's own around them: its series' tag sets are found through it
  // within the request, and through `map` across requests (otlp-points.ts `pointTags`).
  return { map, record };
}

/** A resource and scope with more text than this are made per request. */
const MAX_SCOPE_KEY_CHARS = 16 * 1024;
const knownScopeTags = new BoundedMemo<ScopeTags>(1_000, 1_000 * 4 * 1024);

/** `make`'s result, made on the first call only. */
function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

function quoted(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}
