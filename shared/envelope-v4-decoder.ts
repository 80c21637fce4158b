/**
 * Reads a version 4 message (`EnvelopeV4` in shared/envelope-schema.ts), parsed from its JSON,
 * back into the `Envelope` version 3 gives for the same metrics, with the same guarantees: the
 * compiled envelope schema checks the shape (columns of numbers are cheap to check), each series
 * passes the compiled Metric schema once (not once per point), each point's series, value and
 * time are checked as the schema would, and a message never becomes more than a request may (at
 * most 10,000 metrics, each series' metric as stored counted once for each of its points against
 * `EXPANSION_LIMITS.maxBytes`).
 */
import type { Envelope, EnvelopeV4 } from "./envelope-schema.ts";
import { BoundedMemo, MEMO_KEY_CHARS } from "./bounded-memo.ts";
import { EXPANSION_LIMITS } from "./limits.ts";
import type { Metric } from "./metric-schema.ts";
import { isInRange } from "./timestamp.ts";
import { validateEnvelopeV4, validateMetric } from "./validators.ts";

/**
 * A version 4 message checked whole, still in its columns: what `metricsOfColumns` makes metrics of
 * (shared/envelope.ts `decodeEnvelope`), and what the worker makes rows of without making a
 * metric per point (worker/metric-rows.ts `rowsOfColumns`).
 */
export interface ColumnsV4 {
  readonly id: string;
  readonly receivedAt: number;
  readonly key: Envelope["key"];
  readonly series: readonly CheckedSeries[];
  /** One entry per point in each column; every point checked. */
  readonly points: EnvelopeV4["points"];
}

/**
 * A version 4 message's columns once every series and point passed, or why one did not. Never
 * throws.
 */
export function checkV4(value: unknown): { columns: ColumnsV4 } | { invalid: string } {
  if (!validateEnvelopeV4(value)) {
    const first = validateEnvelopeV4.errors?.[0];
    return { invalid: `${first?.instancePath ?? ""} ${first?.message ?? "is invalid"}`.trim() };
  }
  try {
    const { id, receivedAt, key, points } = value;
    const series = value.series.map(checkSeries);
    checkPoints(points, series);
    return { columns: { id, receivedAt, key, series, points } };
  } catch (err) {
    if (err instanceof Invalid) return { invalid: err.message };
    return { invalid: `not a version 4 envelope: ${String(err)}` };
  }
}

class Invalid extends Error {}

/** What the points of one series share, as its metrics carry it. */
export interface CheckedSeries {
  readonly entry: Readonly<Record<string, unknown>>;
  /** Its own time (RFC 3339 text of another form than `ns` writes), given to each point. */
  readonly timestamp: string | number | undefined;
  /** Its metric's bytes as stored (value and time apart). */
  readonly bytes: number;
}

/**
 * Checks each point's series, value and time as the Metric schema would, and that the message
 * never becomes more than a request may (each series' metric counted once per point).
 */
function checkPoints(points: EnvelopeV4["points"], series: readonly CheckedSeries[]): void {
  const count = points.series.length;
  if (points.ms.length !== count || points.ns.length !== count || points.value.length !== count) {
    throw new Invalid("/points' columns are not all of one length");
  }
  let storedBytes = 0;
  for (let i = 0; i < count; i++) {
    const index = points.series[i] as number;
    const s = series[index];
    if (s === undefined) throw new Invalid(`/points/series/${i} refers to series ${index}`);
    const ms = points.ms[i] as number;
    const ns = points.ns[i] as number;
    // JSON numbers as large as 1e400 parse as Infinity.
    if (!Number.isFinite(points.value[i])) {
      throw new Invalid(`/points/value/${i} must be a finite number`);
    }
    if (s.timestamp !== undefined) {
      if (ms !== 0 || ns !== 0) throw new Invalid(`/points/${i} has two times`);
    } else if (!isInRange(ms)) {
      throw new Invalid(`/points/ms/${i} is out of range`);
    }
    storedBytes += s.bytes;
    if (storedBytes > EXPANSION_LIMITS.maxBytes) {
      throw new Invalid(
        `its metrics would take more than ${EXPANSION_LIMITS.maxBytes} bytes as stored`,
      );
    }
  }
}

/** The metric of each point, its time as the edge had it (RFC 3339 text to the nanosecond). */
export function metricsOfColumns({ points, series }: ColumnsV4): Metric[] {
  const count = points.series.length;
  const metrics = new Array<Metric>(count);
  let lastMs = -1;
  let lastNs = -1;
  let lastText = "";
  for (let i = 0; i < count; i++) {
    const s = series[points.series[i] as number] as CheckedSeries;
    const ms = points.ms[i] as number;
    const ns = points.ns[i] as number;
    let timestamp: string | number;
    if (s.timestamp !== undefined) {
      timestamp = s.timestamp;
    } else if (ns === -1) {
      timestamp = ms;
    } else {
      if (ms !== lastMs || ns !== lastNs) {
        // As rfc3339FromNanos writes it: "YYYY-MM-DDTHH:MM:SS.mmm" and six more digits.
        lastText = `${new Date(ms).toISOString().slice(0, -1)}${String(ns).padStart(6, "0")}Z`;
        lastMs = ms;
        lastNs = ns;
      }
      timestamp = lastText;
    }
    metrics[i] = metricOf(s.entry, points.value[i] as number, timestamp);
  }
  return metrics;
}

/**
 * A series checked as a metric against the Metric schema (with a time, as each of its points
 * has one: the time counts towards its fields), and its bytes as stored. Most messages bring the
 * series of the messages before them again: what a series' JSON was found to be is kept, so a
 * series seen before costs a `JSON.stringify` instead of a metric made, checked and written out
 * (a third of a message's checks, bench/notes.md).
 */
function checkSeries(entry: Readonly<Record<string, unknown>>, index: number): CheckedSeries {
  const text = JSON.stringify(entry);
  const checked =
    text.length > MEMO_KEY_CHARS
      ? checkEntry(entry)
      : knownSeries.get(text, () => checkEntry(entry));
  if ("invalid" in checked) throw new Invalid(`/series/${index}${checked.invalid}`);
  return {
    entry,
    timestamp: entry["timestamp"] as CheckedSeries["timestamp"],
    bytes: checked.bytes,
  };
}

/** What each series' JSON was found to be: its bytes as stored, or why it is not a series. */
const knownSeries = new BoundedMemo<{ bytes: number } | { invalid: string }>(10_000);

function checkEntry(
  entry: Readonly<Record<string, unknown>>,
): { bytes: number } | { invalid: string } {
  if (Object.hasOwn(entry, "value")) return { invalid: " has a value" };
  const candidate = metricOf(entry, 0, (entry["timestamp"] as string | number | undefined) ?? 0);
  if (!validateMetric(candidate)) {
    const first = validateMetric.errors?.[0];
    return { invalid: `${first?.instancePath ?? ""} ${first?.message ?? "is invalid"}` };
  }
  return { bytes: Buffer.byteLength(JSON.stringify(candidate)) };
}

/** The metric of a point: name, value, time, tags, then the series' other fields. */
function metricOf(
  entry: Readonly<Record<string, unknown>>,
  value: number,
  timestamp: string | number,
): Metric {
  const metric: Record<string, unknown> = {};
  if (entry["name"] !== undefined) metric["name"] = entry["name"];
  metric["value"] = value;
  metric["timestamp"] = timestamp;
  if (entry["tags"] !== undefined) metric["tags"] = entry["tags"];
  for (const field of Object.keys(entry)) {
    if (field !== "name" && field !== "tags" && field !== "timestamp") {
      setField(metric, field, entry[field]);
    }
  }
  return metric as Metric;
}

/** Sets a field as JSON.parse would: a field named `__proto__` is data like any other. */
function setField(target: Record<string, unknown>, field: string, value: unknown): void {
  if (field === "__proto__") {
    Object.defineProperty(target, field, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[field] = value;
  }
}
