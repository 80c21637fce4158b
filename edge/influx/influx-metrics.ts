/**
 * InfluxDB line protocol as metrics: each field of each line becomes one metric named
 * `<measurement>_<field>`, with the line's tags and timestamp, and with the write's org and
 * bucket, the measurement, the field key and its type kept beside them. A request is taken whole
 * or refused naming its first bad line, as InfluxDB refuses it.
 */
import {
  checkedSeries,
  checkPoint,
  checkSeries,
  tooManyPoints,
  type CheckedSeries,
  type RefusedMetric,
  type SeriesCheck,
} from "../publish/agent-publish.ts";
import type { Steps } from "../../shared/cooperative.ts";
import { ApiError, type ErrorCode, type ErrorDetail } from "../http/errors.ts";
import type { ExpansionBudget } from "../publish/expansion-budget.ts";
import {
  LineProtocolError,
  parseLineProtocol,
  type FieldValue,
  type LinePoint,
} from "./line-protocol.ts";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import { BoundedMemo, MEMO_KEY_CHARS } from "../../shared/bounded-memo.ts";
import { SeriesColumns, seriesOf, type Series } from "../../shared/series-columns.ts";
import { isInRange, rfc3339FromNanos } from "../../shared/timestamp.ts";

/** Nanoseconds per unit of each `precision` the v2 API takes. */
export const PRECISIONS = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n } as const;
export type Precision = keyof typeof PRECISIONS;

/** Where the request writes: kept in every metric it becomes. */
export interface WriteTarget {
  readonly bucket: string;
  readonly org: string | undefined;
  readonly precision: Precision;
}

/** A refusal that names the first bad line; InfluxDB's answer carries the line as `line`. */
export class LineRefusal extends ApiError {
  readonly line: number;

  constructor(
    code: ErrorCode,
    where: { readonly line: number; readonly column?: number },
    message: string,
    details?: readonly ErrorDetail[],
  ) {
    const at = where.column === undefined ? "" : `, column ${where.column}`;
    super(code, `line ${where.line}${at}: ${message}; nothing was written.`, {
      ...(details ? { details } : {}),
    });
    this.line = where.line;
  }
}

/** The body as text; invalid UTF-8 is refused naming the line it is on. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new LineRefusal("malformed_body", { line: firstLineNotUtf8(bytes) }, "not valid UTF-8");
  }
}

/** No byte of a multi-byte UTF-8 sequence is a newline, so each line can be checked alone. */
function firstLineNotUtf8(bytes: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (let line = 1, start = 0; ; line++) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    if (newline === -1) return line;
    start = end + 1;
  }
}

/**
 * Every field of every line as a checked point, in order, into columns: each series (the
 * measurement and field, the line's tags, the field's `influx` part) once, then per field its
 * series, time and value. Refuses the request naming its first bad line (syntax, or a metric
 * the JSON API would refuse), or when it holds more fields than a request may hold metrics, or
 * none, or when its metrics outgrow the request's `budget`. Past the count limit lines are
 * still read, for syntax and count.
 */
export function* pointsOfText(
  text: string,
  target: WriteTarget,
  receivedAt: number,
  budget: ExpansionBudget,
  maxFutureMs?: number,
): Steps<SeriesColumns> {
  const unit = PRECISIONS[target.precision];
  // As InfluxDB does, a line without a timestamp gets the receive time in the request's precision.
  const receivedNs = ((BigInt(receivedAt) * 1_000_000n) / unit) * unit;
  const bound = maxFutureMs === undefined ? undefined : { receivedAt, maxFutureMs };
  const columns = new SeriesColumns();
  const series = new InfluxSeries(target, columns);
  let count = 0;
  let lastTimestamp: bigint | undefined;
  let time: { readonly ns: bigint; readonly ms: number; readonly subMs: number } | undefined;
  try {
    for (const point of parseLineProtocol(text)) {
      yield;
      count += point.fields.length;
      if (count > REQUEST_LIMITS.metricsPerRequest) continue;
      // The lines of one gathering share its time, read once for all of them.
      if (point.timestamp !== lastTimestamp || time === undefined) {
        lastTimestamp = point.timestamp;
        const ns = point.timestamp === undefined ? receivedNs : point.timestamp * unit;
        time = { ns, ...timeOf(ns, point, target) };
      }
      const { ns, ms, subMs } = time;
      const line = series.ofLine(point);
      const offset = columns.points;
      let refused: RefusedMetric[] | undefined;
      // Field by field: one line may hold thousands of fields, all with the line's tags.
      for (let index = 0; index < point.fields.length; index++) {
        const [field, fieldValue] = point.fields[index] as (typeof point.fields)[number];
        const value = numberOf(fieldValue);
        // A float as the line wrote it, when JavaScript writes it so too (most do).
        const valueText =
          (fieldValue.type === "float" ? fieldValue.text : undefined) ?? String(value);
        const { id, check } = line.seriesOf(field, fieldValue);
        const problem = checkPoint(check, value, valueText, ms, subMs, index, budget, bound, () =>
          candidateMetric(columns, id, value, ns),
        );
        if (problem !== undefined) (refused ??= []).push(problem);
        else columns.addPoint(id, ms, subMs, valueText);
        if ((index & 255) === 255) yield;
      }
      if (refused !== undefined) throw invalidPoint(point, refused, offset);
    }
  } catch (err) {
    if (!(err instanceof LineProtocolError)) throw err;
    throw new LineRefusal("malformed_body", err, err.reason);
  }
  if (count > REQUEST_LIMITS.metricsPerRequest) throw tooManyPoints(count);
  if (count === 0) {
    throw new ApiError("empty_batch", "The body holds no points (only blank or comment lines).");
  }
  return columns;
}

/** Nanoseconds per millisecond. */
const NS_PER_MS = 1_000_000n;

/**
 * A line's time as whole milliseconds and the nanoseconds past them; refused when it is not
 * between 1970 and 9999 (what a metric's timestamp may be).
 */
function timeOf(
  ns: bigint,
  point: LinePoint,
  target: WriteTarget,
): { readonly ms: number; readonly subMs: number } {
  const ms = ns < 0n ? -1 : Number(ns / NS_PER_MS);
  if (!isInRange(ms)) {
    throw new LineRefusal(
      "invalid_metrics",
      point,
      `the timestamp ${String(point.timestamp)} (precision ${target.precision}) is not between 1970 and 9999`,
    );
  }
  return { ms, subMs: Number(ns % NS_PER_MS) };
}

/** The metric a point stands for, for the schema to check when bounds alone cannot. */
function candidateMetric(columns: SeriesColumns, id: number, value: number, ns: bigint): unknown {
  const { name, ...rest } = (columns.series[id] as Series).metric;
  return { name, value, timestamp: rfc3339FromNanos(ns), ...rest };
}

/** Where a metric came from: kept beside it as `influx`. */
interface FieldPart {
  readonly org?: string;
  readonly bucket: string;
  readonly measurement: string;
  readonly field: string;
  readonly type: string;
  /** A string field's text (its value is 1). */
  readonly text?: string;
}

/** A series of the request, by its index in the columns, and how its points are checked. */
interface SeriesRef {
  readonly id: number;
  readonly check: SeriesCheck;
}

/**
 * The numeric and boolean series made already, by `knownSeriesKey`. An agent sends the same
 * heads and fields every interval: each series' metric, tags object, JSON, checks and (through
 * its tags object, shared/series-identity.ts) digest are made once, not once per request. A
 * string field's series (one per text) is made per request: texts come and go.
 */
const knownSeries = new BoundedMemo<CheckedSeries>(20_000);

/**
 * What names a series of a request's lines across requests: the target's org and bucket as
 * JSON, the head as written, the field's type and key. No part holds a line feed but as a
 * separator: JSON escapes its own, and a head or a field key ends at a line's end.
 */
function knownSeriesKey(target: string, head: string, type: string, field: string): string {
  return `${target}\n${head}\n${type}\n${field}`;
}

/**
 * The series of a request's lines: per head (measurement and tag set as written), and per field
 * key and type (and a string field's text), its series in the columns with its check.
 */
class InfluxSeries {
  readonly #target: WriteTarget;
  /** The target as a part of `knownSeriesKey`. */
  readonly #targetKey: string;
  readonly #columns: SeriesColumns;
  readonly #lines = new Map<string, LineSeries>();

  constructor(target: WriteTarget, columns: SeriesColumns) {
    this.#target = target;
    this.#targetKey = JSON.stringify([target.org ?? null, target.bucket]);
    this.#columns = columns;
  }

  ofLine(point: LinePoint): LineSeries {
    let line = this.#lines.get(point.head);
    if (line === undefined) {
      line = new LineSeries(point, this.#target, this.#targetKey, this.#columns);
      this.#lines.set(point.head, line);
    }
    return line;
  }
}

/** The series of the lines of one head. */
class LineSeries {
  readonly #point: LinePoint;
  readonly #target: WriteTarget;
  readonly #targetKey: string;
  readonly #columns: SeriesColumns;
  /** The line's tags as one object (`#tags`). */
  #tagsObject: Readonly<Record<string, string>> | undefined;
  /** By field key, then type (no key made per point). */
  readonly #fields = new Map<string, Partial<Record<FieldValue["type"], SeriesRef>>>();
  /** String fields, by key and text: each text is a series of its own. */
  readonly #strings = new Map<string, SeriesRef>();

  constructor(point: LinePoint, target: WriteTarget, targetKey: string, columns: SeriesColumns) {
    this.#point = point;
    this.#target = target;
    this.#targetKey = targetKey;
    this.#columns = columns;
  }

  seriesOf(field: string, value: FieldValue): SeriesRef {
    if (value.type === "string") {
      const key = JSON.stringify([field, value.value]);
      let ref = this.#strings.get(key);
      if (ref === undefined) {
        ref = this.#local(field, { ...this.#part(field, value.type), text: value.value });
        this.#strings.set(key, ref);
      }
      return ref;
    }
    let byType = this.#fields.get(field);
    if (byType === undefined) {
      byType = {};
      this.#fields.set(field, byType);
    }
    const { type } = value;
    return (byType[type] ??= this.#known(field, type));
  }

  /** A numeric or boolean field's series, kept across requests unless its key is too long. */
  #known(field: string, type: string): SeriesRef {
    const { head, measurement } = this.#point;
    if (head.length + field.length > MEMO_KEY_CHARS)
      return this.#local(field, this.#part(field, type));
    const key = knownSeriesKey(this.#targetKey, head, type, field);
    const { series, check } = knownSeries.get(key, () =>
      checkedSeries(
        seriesOf({
          name: `${measurement}_${field}`,
          tags: this.#tags(),
          influx: this.#part(field, type),
        }),
      ),
    );
    return { id: this.#columns.indexOf(series), check };
  }

  /** A series made in this request's columns alone. */
  #local(field: string, influx: FieldPart): SeriesRef {
    const columns = this.#columns;
    const name = `${this.#point.measurement}_${field}`;
    const id = columns.seriesIndex({ name, tags: this.#tags(), influx });
    return { id, check: checkSeries(columns.series[id] as Series) };
  }

  /** The line's tags as one object, made once for every series of the head. */
  #tags(): Readonly<Record<string, string>> {
    return (this.#tagsObject ??= Object.fromEntries(this.#point.tags));
  }

  /** The `influx` part of a series of the head. */
  #part(field: string, type: string): FieldPart {
    const { org, bucket } = this.#target;
    const { measurement } = this.#point;
    return { ...(org === undefined ? {} : { org }), bucket, measurement, field, type };
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
  refused: readonly RefusedMetric[],
  offset: number,
): LineRefusal {
  const details = refused.flatMap(({ details: list }) =>
    list.map((d) => ({ ...d, index: d.index + offset })),
  );
  const first = refused[0];
  const problem = first?.details[0];
  const field = first === undefined ? undefined : point.fields[first.index]?.[0];
  const message =
    problem === undefined || field === undefined
      ? "the point is invalid"
      : describeProblem(problem, `${point.measurement}_${field}`, field);
  return new LineRefusal(
    "invalid_metrics",
    point,
    message,
    details.slice(0, REQUEST_LIMITS.errorDetails),
  );
}

/** The part of a line a metric's JSON Pointer stands for, with what is wrong with it. */
function describeProblem(detail: ErrorDetail, name: string, fieldKey: string): string {
  const { path, message } = detail;
  const short = (text: string) => JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  const field = short(fieldKey);
  let part = path;
  if (path === "/name") part = `the metric name ${short(name)} (measurement_field)`;
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
