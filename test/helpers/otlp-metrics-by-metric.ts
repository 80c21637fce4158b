/**
 * The OTLP conversion as it was before points went into columns: a `Metric` per data point,
 * each checked by `checkMetric`. Kept for tests only, as the reference the columnar path
 * (`pointsOfRequest`) must agree with. An OTLP `ExportMetricsServiceRequest` as metrics: one metric per data point, named after its
 * OTLP metric, tagged with the resource's, the scope's and the point's attributes, and holding
 * what does not fit `value` (histogram buckets, quantiles, temporality...) as extra fields. Each
 * point is checked on its own, so that the valid ones can be stored and the others counted in
 * the answer's `partial_success`.
 */
import { checkMetric } from "../../edge/publish/agent-publish.ts";
import type { FutureBound } from "../../edge/publish/future-timestamps.ts";
import type { Steps } from "../../shared/cooperative.ts";
import type { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import type { ExportMetricsServiceRequest } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import type { KeyValue } from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";
import type { Metric as OtlpMetric } from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { addAttributes } from "../../edge/otlp/otlp-attributes.ts";
import { PointError, type ScopeTags } from "../../edge/otlp/otlp-points.ts";
import {
  SCOPE_NAME_TAG,
  SCOPE_VERSION_TAG,
  type PointRefusal,
} from "../../edge/otlp/otlp-metrics.ts";
import { pointsOf } from "./otlp-points-by-metric.ts";

export interface ConvertedRequest {
  /** Every data point of the request, the refused ones included. */
  readonly points: number;
  /** The accepted points, in the request's order. */
  readonly metrics: readonly Metric[];
  /** How many points were refused. */
  readonly rejected: number;
  /** The first refusals (at most `REQUEST_LIMITS.errorDetails`). */
  readonly refusals: readonly PointRefusal[];
  /** How many metrics hold no data this server can read (none, or a kind newer than it knows). */
  readonly unreadable: number;
  /** The first of them (at most `REQUEST_LIMITS.errorDetails`), by name and place. */
  readonly unreadableNames: readonly string[];
}

/** The metrics of one scope, with the tags its points start from. */
interface Scope {
  readonly field: string;
  readonly metrics: readonly OtlpMetric[];
  /** The resource's and the scope's tags, made on first use (counting points needs none). */
  readonly tags: () => ScopeTags;
}

/**
 * Converts every data point and checks each as the JSON API checks a metric. The points of a
 * scope share its tags (one object for those without attributes of their own); a request whose
 * metrics outgrow its `budget` is refused (413) at the first point past it.
 */
export function* metricsOfRequestByMetric(
  request: ExportMetricsServiceRequest,
  budget: ExpansionBudget,
  bound?: FutureBound,
): Steps<ConvertedRequest> {
  const metrics: Metric[] = [];
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
      for (const [p, convert] of metricPoints.conversions.entries()) {
        yield;
        const place = {
          field: `${metricField}.${metricPoints.kind}.data_points[${p}]`,
          ordinal: points++,
        };
        let candidate: Record<string, unknown>;
        try {
          candidate = convert(scope.tags());
        } catch (err) {
          if (!(err instanceof PointError)) throw err;
          refused.push({ ...place, description: err.message });
          continue;
        }
        const checked = checkMetric(candidate, place.ordinal, budget, bound);
        if ("metric" in checked) {
          metrics.push(checked.metric);
          continue;
        }
        const description = checked.refused.details
          .map((d) => (d.path === "" ? d.message : `${d.path} ${d.message}`))
          .join("; ");
        refused.push({ ...place, description });
      }
    }
  }
  return {
    points,
    metrics,
    rejected: refused.length,
    refusals: refused
      .slice(0, REQUEST_LIMITS.errorDetails)
      .map(({ field, description }) => ({ field, description: description.slice(0, 512) })),
    unreadable,
    unreadableNames,
  };
}

function* scopesOf(request: ExportMetricsServiceRequest): Generator<Scope> {
  for (const [r, resourceMetrics] of request.resourceMetrics.entries()) {
    const resourceTags = once(() => {
      const tags = new Map<string, string>();
      addAttributes(tags, resourceMetrics.resource?.attributes ?? []);
      return tags;
    });
    const scopeTags = (name: string, version: string, attributes: readonly KeyValue[]) =>
      once(() => {
        // Over the limit already, every point of the scope is refused: no copy for them.
        if (resourceTags().size > METRIC_BOUNDS.tagCount)
          return { map: resourceTags(), record: {} };
        const tags = new Map(resourceTags());
        if (name !== "") tags.set(SCOPE_NAME_TAG, name);
        if (version !== "") tags.set(SCOPE_VERSION_TAG, version);
        addAttributes(tags, attributes);
        return { map: tags, record: Object.fromEntries(tags) };
      });
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

/** `make`'s result, made on the first call only. */
function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

function quoted(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}
