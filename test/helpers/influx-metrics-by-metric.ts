/**
 * The InfluxDB conversion as it was before points went into columns: a `Metric` per field,
 * each checked by `checkMetric`. Kept for tests only, as the reference the columnar path
 * (`pointsOfText`) must agree with, refusal for refusal and, once encoded, byte for byte.
 */
import {
  checkMetric,
  tooManyPoints,
  type RefusedMetric,
} from "../../edge/publish/agent-publish.ts";
import type { Steps } from "../../shared/cooperative.ts";
import { ApiError, type ErrorDetail } from "../../edge/http/errors.ts";
import type { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import {
  LineProtocolError,
  parseLineProtocol,
  type FieldValue,
  type LinePoint,
} from "../../edge/influx/line-protocol.ts";
import { LineRefusal, PRECISIONS, type WriteTarget } from "../../edge/influx/influx-metrics.ts";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { rfc3339FromNanos } from "../../shared/timestamp.ts";

/**
 * Every field of every line as a checked metric, in order. Refuses the request naming its first
 * bad line (syntax, or a metric the JSON API would refuse), or when it holds more fields than a
 * request may hold metrics, or none, or when its metrics outgrow the request's `budget`. Past
 * the count limit lines are still read, for syntax and count.
 */
export function* metricsOfTextByMetric(
  text: string,
  target: WriteTarget,
  receivedAt: number,
  budget: ExpansionBudget,
  maxFutureMs?: number,
): Steps<Metric[]> {
  const unit = PRECISIONS[target.precision];
  // As InfluxDB does, a line without a timestamp gets the receive time in the request's precision.
  const receivedNs = ((BigInt(receivedAt) * 1_000_000n) / unit) * unit;
  const bound = maxFutureMs === undefined ? undefined : { receivedAt, maxFutureMs };
  const metrics: Metric[] = [];
  const shared = new SharedParts(target);
  let count = 0;
  try {
    for (const point of parseLineProtocol(text)) {
      yield;
      count += point.fields.length;
      if (count > REQUEST_LIMITS.metricsPerRequest) continue;
      // Field by field: one line may hold thousands of fields, all with the line's tags.
      const metricOf = fieldMetrics(point, target, receivedNs, shared);
      const candidates: CandidateMetric[] = [];
      const valid: Metric[] = [];
      const refused: RefusedMetric[] = [];
      for (const [index, [field, value]] of point.fields.entries()) {
        const candidate = metricOf(field, value);
        candidates.push(candidate);
        const checked = checkMetric(candidate, index, budget, bound);
        if ("metric" in checked) valid.push(checked.metric);
        else refused.push(checked.refused);
        yield;
      }
      if (refused.length > 0) throw invalidPoint(point, candidates, refused, metrics.length);
      metrics.push(...valid);
    }
  } catch (err) {
    if (!(err instanceof LineProtocolError)) throw err;
    throw new LineRefusal("malformed_body", err, err.reason);
  }
  if (count > REQUEST_LIMITS.metricsPerRequest) throw tooManyPoints(count);
  if (count === 0) {
    throw new ApiError("empty_batch", "The body holds no points (only blank or comment lines).");
  }
  return metrics;
}

/** A metric as made from a field, before the schema checked it. */
interface CandidateMetric {
  readonly name: string;
  readonly influx: { readonly field: string };
}

/**
 * How a point's fields become metrics, one per field: `<measurement>_<field>`, the line's tags
 * (one object for all its fields), the point's time.
 */
function fieldMetrics(
  point: LinePoint,
  target: WriteTarget,
  receivedNs: bigint,
  shared: SharedParts,
): (field: string, value: FieldValue) => CandidateMetric {
  const ns =
    point.timestamp === undefined ? receivedNs : point.timestamp * PRECISIONS[target.precision];
  const timestamp = rfc3339FromNanos(ns);
  if (timestamp === undefined) {
    throw new LineRefusal(
      "invalid_metrics",
      point,
      `the timestamp ${String(point.timestamp)} (precision ${target.precision}) is not between 1970 and 9999`,
    );
  }
  const tags = shared.tagsOf(point);
  return (field, value) => ({
    name: `${point.measurement}_${field}`,
    value: numberOf(value),
    timestamp,
    tags,
    influx:
      value.type === "string"
        ? { ...shared.fieldOf(point.measurement, field, value.type), text: value.value }
        : shared.fieldOf(point.measurement, field, value.type),
  });
}

/** Where a metric came from: kept beside it as `influx`. */
interface FieldPart {
  readonly org?: string;
  readonly bucket: string;
  readonly measurement: string;
  readonly field: string;
  readonly type: string;
}

/**
 * What many metrics of a request share, made once: the tags of each series (lines of a series
 * repeat its tag set; one object lets its check, size, series digest and grouping be done once
 * per series) and the `influx` part of each measurement's field. Nothing changes them once made.
 */
class SharedParts {
  readonly #target: WriteTarget;
  readonly #tags = new Map<string, Readonly<Record<string, string>>>();
  readonly #fields = new Map<string, FieldPart>();

  constructor(target: WriteTarget) {
    this.#target = target;
  }

  tagsOf(point: LinePoint): Readonly<Record<string, string>> {
    const key = JSON.stringify(point.tags);
    let tags = this.#tags.get(key);
    if (tags === undefined) {
      tags = Object.fromEntries(point.tags);
      this.#tags.set(key, tags);
    }
    return tags;
  }

  fieldOf(measurement: string, field: string, type: string): FieldPart {
    const key = JSON.stringify([measurement, field, type]);
    let part = this.#fields.get(key);
    if (part === undefined) {
      const { org, bucket } = this.#target;
      part = { ...(org === undefined ? {} : { org }), bucket, measurement, field, type };
      this.#fields.set(key, part);
    }
    return part;
  }
}

/** A field's value as a metric's: booleans 1 and 0, a string 1 (its text is kept beside it). */
function numberOf(field: FieldValue): number {
  switch (field.type) {
    case "float":
      return field.value;
    case "integer":
    case "unsigned":
      return Number(field.value);
    case "boolean":
      return field.value ? 1 : 0;
    case "string":
      return 1;
  }
}

/** The refusal of a line whose metrics break the Metric schema, saying what in its own terms. */
function invalidPoint(
  point: LinePoint,
  candidates: readonly CandidateMetric[],
  refused: readonly RefusedMetric[],
  offset: number,
): LineRefusal {
  const details = refused.flatMap(({ details: list }) =>
    list.map((d) => ({ ...d, index: d.index + offset })),
  );
  const first = refused[0];
  const problem = first?.details[0];
  const message =
    first === undefined || problem === undefined
      ? "the point is invalid"
      : describeProblem(problem, candidates[first.index] as CandidateMetric);
  return new LineRefusal(
    "invalid_metrics",
    point,
    message,
    details.slice(0, REQUEST_LIMITS.errorDetails),
  );
}

/** The part of a line a metric's JSON Pointer stands for, with what is wrong with it. */
function describeProblem(detail: ErrorDetail, metric: CandidateMetric): string {
  const { path, message } = detail;
  const short = (text: string) => JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  const field = short(metric.influx.field);
  let part = path;
  if (path === "/name") part = `the metric name ${short(metric.name)} (measurement_field)`;
  else if (path === "/timestamp") part = "the timestamp";
  // The schema reports a tag key's problem at the tag set itself.
  else if (path === "/tags") part = message.includes("propert") ? "the tag set" : "a tag key";
  else if (path.startsWith("/tags/")) part = `the tag ${short(unescapePointer(path.slice(6)))}`;
  // Org and bucket were checked already, and measurement and field key are bounded by the
  // name: only a string field's text can break the bounds of the extra fields.
  else if (path.startsWith("/influx")) {
    return `the string field ${field} must be at most ${METRIC_BOUNDS.stringLength} characters, without NUL characters`;
  } else if (path === "") part = `the metric of field ${field}`;
  return `${part} ${message}`;
}

function unescapePointer(token: string): string {
  return token.replaceAll("~1", "/").replaceAll("~0", "~");
}
