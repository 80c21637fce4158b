import type { DecodedMessage, Envelope } from "../shared/envelope.ts";
import type { ColumnsV4 } from "../shared/envelope-v4-decoder.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { BoundedMemo } from "../shared/bounded-memo.ts";
import { seriesKey } from "../shared/series-identity.ts";
import { measurementTimeMs } from "../shared/timestamp.ts";

/** One sample to store, with what its series is made of. */
export interface MetricRow {
  /**
   * The key of its series (`shared/series-identity.ts`): a digest of its name and tags. The
   * sample's identity is this key and `timeMs`, for every protocol: a redelivered message, an
   * agent's retried batch, the same sample sent again in any message, adds nothing.
   */
  readonly series: string;
  readonly name: string | null;
  readonly value: number;
  /** When the metric was measured: its own timestamp, else when its request was received. */
  readonly timeMs: number;
  readonly receivedMs: number;
  /** The tags as a JSON object (`{}` when there were none). */
  readonly tags: string;
  /**
   * What an agent protocol says of the whole series, as JSON with its keys sorted
   * (`canonicalJson`: the `influx` object's org, bucket, measurement, field and type; OTLP's
   * kind, unit, temporality and monotonic), or null.
   */
  readonly attributes: string | null;
  /** The metric's other fields, as JSON, or null when it has none (most metrics). */
  readonly extra: string | null;
  readonly msgId: string;
}

/** The fields an agent protocol gives every point of a series alike. */
const SERIES_FIELDS = new Set(["kind", "unit", "temporality", "monotonic"]);
/** The fields of every metric that have columns of their own. */
const COLUMNS = new Set(["name", "value", "timestamp", "tags"]);

/** What a metric's row says of its series, worked out once for the metrics sharing tags. */
export interface MetricSeries {
  readonly name: string | null;
  /** The tags as a JSON object (`{}` when there were none). */
  readonly tags: string;
  /** What tells its series apart: its name and its tags' JSON (the same series key). */
  readonly text: string;
}

/**
 * Calls `visit` with each metric of an envelope, its series and its time. The metrics of a
 * series or of a version 3 group share one tags object, one after another: its JSON is written
 * once for them. A JSON API metric has its own.
 */
export function forEachMetric(
  { receivedAt, metrics }: Envelope,
  visit: (metric: Metric, series: MetricSeries, timeMs: number) => void,
): void {
  let lastTags: object | undefined;
  let series: MetricSeries | undefined;
  for (const metric of metrics) {
    const name = metric.name ?? null;
    const tags = metric.tags ?? NO_TAGS;
    if (series === undefined || tags !== lastTags || name !== series.name) {
      const tagsJson =
        series !== undefined && tags === lastTags ? series.tags : JSON.stringify(tags);
      series = { name, tags: tagsJson, text: seriesText(name, tagsJson) };
      lastTags = tags;
    }
    visit(metric, series, measurementTimeMs(metric.timestamp, receivedAt));
  }
}

/**
 * The rows of a message's metrics. The work that depends only on a series is done once for all
 * its points: its key and its tags' JSON.
 */
export function rowsOfEnvelope(envelope: Envelope): MetricRow[] {
  const { id, receivedAt, key } = envelope;
  const keys = new Map<string, string>();
  const rows: MetricRow[] = [];
  forEachMetric(envelope, (metric, series, timeMs) => {
    let seriesKey = keys.get(series.text);
    if (seriesKey === undefined) {
      seriesKey = knownSeriesKey(series.text, series.name, metric.tags ?? NO_TAGS);
      keys.set(series.text, seriesKey);
    }
    const { attributes, extra } = fieldsOf(metric, key === "series");
    rows.push({
      series: seriesKey,
      name: series.name,
      value: metric.value,
      timeMs,
      receivedMs: receivedAt,
      tags: series.tags,
      attributes,
      extra,
      msgId: id,
    });
  });
  return rows;
}

/**
 * How many fields of a metric (or of a version 4 series' entry) have no column: as many as
 * `extraFieldsOf` counts in its rows' attributes and extra together (each such field is in one
 * or both), without writing them.
 */
export function fieldsBeyondColumns(metric: Metric | Readonly<Record<string, unknown>>): number {
  let count = 0;
  for (const field in metric) if (!COLUMNS.has(field)) count++;
  return count;
}

/** A message `decodeMessage` read whole: what the worker stores. */
export type StorableMessage = Extract<DecodedMessage, { ok: true }>;

/**
 * The rows of a message read by `decodeMessage`: a version 4 message's straight from its
 * columns, the same rows `rowsOfEnvelope` makes of its metrics (test/unit/envelope-v4.test.ts),
 * with what depends on a series worked out once per series and no metric object per point.
 */
export function rowsOfMessage(decoded: StorableMessage): MetricRow[] {
  return decoded.version === 4 ? rowsOfColumns(decoded.columns) : rowsOfEnvelope(decoded.envelope);
}

/**
 * The rows of each message measured at or after `cutoffMs` (all when it is undefined), and how
 * many were measured before it: retention would delete those at its next run.
 */
export function rowsOfMessages(
  messages: readonly StorableMessage[],
  cutoffMs: number | undefined,
): { perMessage: MetricRow[][]; expired: number } {
  let expired = 0;
  const perMessage = messages.map((message) => {
    const rows = rowsOfMessage(message);
    if (cutoffMs === undefined) return rows;
    const kept = rows.filter((r) => r.timeMs >= cutoffMs);
    expired += rows.length - kept.length;
    return kept;
  });
  return { perMessage, expired };
}

/** What the points of one series of a version 4 message share, as their rows carry it. */
export type ColumnSeries = Pick<MetricRow, "series" | "name" | "tags" | "attributes" | "extra"> & {
  /** The series' own time, when it has one: then its points carry none. */
  readonly timeMs: number | undefined;
};

/**
 * What each series of a version 4 message gives its points' rows, worked out once per series:
 * the series key, the tags' JSON, the fields beyond the columns.
 */
export function seriesOfColumns({ receivedAt, key, series }: ColumnsV4): ColumnSeries[] {
  return series.map(({ entry, timestamp }) => {
    const name = (entry["name"] as string | undefined) ?? null;
    const tags = (entry["tags"] as Record<string, string> | undefined) ?? {};
    const tagsJson = JSON.stringify(tags);
    // The entry has every field its points' metrics have but value and time, which are columns.
    const { attributes, extra } = fieldsOf(entry as Metric, key === "series");
    return {
      series: knownSeriesKey(seriesText(name, tagsJson), name, tags),
      name,
      tags: tagsJson,
      attributes,
      extra,
      timeMs: timestamp === undefined ? undefined : measurementTimeMs(timestamp, receivedAt),
    };
  });
}

function rowsOfColumns(columns: ColumnsV4): MetricRow[] {
  const { id, receivedAt, points } = columns;
  const ofSeries = seriesOfColumns(columns);
  const count = points.series.length;
  const rows = new Array<MetricRow>(count);
  for (let i = 0; i < count; i++) {
    const s = ofSeries[points.series[i] as number];
    if (s === undefined) throw new Error(`point ${i} of message ${id} has no series`);
    rows[i] = {
      series: s.series,
      name: s.name,
      value: points.value[i] as number,
      // Milliseconds as the edge wrote them; the nanoseconds below are not part of a row.
      timeMs: s.timeMs ?? (points.ms[i] as number),
      receivedMs: receivedAt,
      tags: s.tags,
      attributes: s.attributes,
      extra: s.extra,
      msgId: id,
    };
  }
  return rows;
}

/**
 * Series keys worked out already, by `seriesText`. Each message decodes into objects of its
 * own, and most bring the series of the messages before them again: this saves a sort and a
 * SHA-256 per series of every message (about a fifth of a worker's CPU draining 100-metric
 * messages of 8 series, bench/notes.md).
 */
const knownKeys = new BoundedMemo<string>(50_000);

/** What tells series apart: a name (or none) and the tags' JSON (names hold no NUL). */
function seriesText(name: string | null, tagsJson: string): string {
  return `${name === null ? "0" : `1${name}`}\u0000${tagsJson}`;
}

const NO_TAGS: Readonly<Record<string, string>> = Object.freeze({});

function knownSeriesKey(
  text: string,
  name: string | null,
  tags: Readonly<Record<string, string>>,
): string {
  return knownKeys.get(text, () => seriesKey(name, tags));
}

/**
 * A metric's fields beyond its columns: those an agent protocol gives a whole series, and the
 * rest, each as JSON or null. A JSON API metric's fields are all its own (its sender decides
 * what they mean); an `influx` object's `text` (a string field's value) is the sample's.
 */
export function fieldsOf(
  metric: Metric,
  agent: boolean,
): { attributes: string | null; extra: string | null } {
  let attributes: Record<string, unknown> | undefined;
  let extra: Record<string, unknown> | undefined;
  // for…in, not Object.entries: no array per metric, and a metric has its columns alone almost
  // always. Metrics are JSON.parse's objects, with no enumerable property but their own.
  for (const field in metric) {
    if (COLUMNS.has(field)) continue;
    const value = (metric as Readonly<Record<string, unknown>>)[field];
    if (agent && field === "influx" && isObject(value)) {
      const { text, ...series } = value;
      (attributes ??= {})[field] = series;
      if (text !== undefined) (extra ??= {})[field] = { text };
    } else if (agent && SERIES_FIELDS.has(field)) {
      (attributes ??= {})[field] = value;
    } else {
      // defineProperty: a field named __proto__ is data like any other.
      Object.defineProperty((extra ??= {}), field, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  if (attributes === undefined && extra === undefined) return NO_FIELDS;
  return {
    attributes: attributes === undefined ? null : canonicalJson(attributes),
    extra: extra === undefined ? null : JSON.stringify(extra),
  };
}

const NO_FIELDS = Object.freeze({ attributes: null, extra: null });

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A sample's `extra` as stored: its own fields, plus its attributes under `attributes` when they
 * differ from those its series was stored with (an agent that changed a series' unit, say), so
 * that nothing it was sent with is lost.
 */
export function extraBeside(row: MetricRow, seriesAttributes: string | null): string | null {
  if (row.attributes === seriesAttributes) return row.extra;
  const own = row.extra === null ? {} : (JSON.parse(row.extra) as Record<string, unknown>);
  return JSON.stringify({ ...own, attributes: JSON.parse(row.attributes ?? "null") as unknown });
}

/**
 * JSON with every object's keys sorted, so that the same attributes compare equal as text
 * whoever wrote them (PostgreSQL's jsonb gives keys back in an order of its own).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
