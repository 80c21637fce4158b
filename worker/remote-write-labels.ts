/**
 * From stored rows to Prometheus series: the inverse of the edge's remote-write decoding
 * (edge/remote-write/remote-write.ts), so that a batch that came in by remote write goes out
 * with the same series. Pure: no I/O, no clock.
 *
 * - The metric's name is `__name__`; a metric without a name (the JSON API allows one) is named
 *   `DEFAULT_METRIC_NAME`.
 * - Tags become labels. Prometheus allows fewer characters than tags may hold: every character
 *   outside `[a-zA-Z0-9_:]` (names) or `[a-zA-Z0-9_]` (label names) becomes `_`, and a leading
 *   digit gets a `_` before it. Label names beginning with `__` are Prometheus's own, so a tag
 *   such as `__name__` or `__tmp` is renamed with `RESERVED_LABEL_PREFIX` in front. When two tags
 *   end up with the same label name, the first in sorted order of the tags' own names keeps it.
 *   A tag with an empty value is no label (as in Prometheus).
 * - Labels are sorted by name; the samples of one series go in one `TimeSeries`, sorted by time,
 *   and a second sample of a series at the same timestamp is left out (the first stays, as in
 *   the other stores).
 * - Fields of a JSON metric beyond name, value, timestamp and tags have no place in a sample:
 *   they are dropped, and counted.
 */
import { BoundedMemo } from "../shared/bounded-memo.ts";
import {
  fieldsBeyondColumns,
  forEachMetric,
  seriesOfColumns,
  type ColumnSeries,
  type MetricRow,
  type StorableMessage,
} from "./metric-rows.ts";

/** The name of a metric sent without one. */
export const DEFAULT_METRIC_NAME = "metric";
/** Put in front of a tag whose name would begin with `__`, reserved for Prometheus's labels. */
export const RESERVED_LABEL_PREFIX = "tag";

export interface Label {
  readonly name: string;
  readonly value: string;
}

export interface OutgoingSeries {
  /** Sorted by name, `__name__` among them. */
  readonly labels: readonly Label[];
  /** Milliseconds since the epoch, increasing: one sample per timestamp. */
  readonly timestamps: readonly number[];
  /** The value of the sample at the same index of `timestamps`. */
  readonly values: readonly number[];
}

export interface MappedRows {
  readonly series: OutgoingSeries[];
  /** Samples in `series`. */
  readonly samples: number;
  /** Rows left out as a second sample of their series at the same timestamp. */
  readonly sameTimestamp: number;
  /** Fields of JSON metrics dropped because a sample has no place for them. */
  readonly droppedFields: number;
}

/** A metric name Prometheus accepts, made from any string. */
export function metricNameOf(name: string | null): string {
  if (name === null || name === "") return DEFAULT_METRIC_NAME;
  const valid = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[0-9]/.test(valid) ? `_${valid}` : valid;
}

/** A label name Prometheus accepts, made from any tag name, never one of its reserved names. */
export function labelNameOf(tag: string): string {
  let valid = tag.replace(/[^a-zA-Z0-9_]/g, "_");
  if (valid === "" || /^[0-9]/.test(valid)) valid = `_${valid}`;
  return valid.startsWith("__") ? `${RESERVED_LABEL_PREFIX}${valid}` : valid;
}

/** The labels of a metric name and its tags (as stored: a JSON object), sorted by name. */
export function labelsOf(name: string | null, tagsJson: string): Label[] {
  const tags = JSON.parse(tagsJson) as Record<string, string>;
  const labels = new Map<string, string>([["__name__", metricNameOf(name)]]);
  for (const tag of Object.keys(tags).sort(byCodeUnits)) {
    const value = tags[tag];
    if (value === undefined || value === "") continue;
    const label = labelNameOf(tag);
    if (!labels.has(label)) labels.set(label, value);
  }
  return [...labels]
    .map(([labelName, value]) => ({ name: labelName, value }))
    .sort((a, b) => byCodeUnits(a.name, b.name));
}

/**
 * The labels of each series seen, by what identifies it (its key, `MetricRow.series`, a digest
 * of name and tags, or the text of its name and tags: one identity always has the same labels),
 * and the text that tells label sets apart. Most batches bring the
 * series of the batches before them again: their labels are not worked out again (parsing the
 * tags' JSON, sorting, making names valid). Emptied when full.
 */
const knownLabels = new BoundedMemo<{ labels: Label[]; text: string }>(50_000);

function labelsOfSeries(
  identity: string,
  name: string | null,
  tagsJson: string,
): { labels: Label[]; text: string } {
  return knownLabels.get(identity, () => {
    const labels = labelsOf(name, tagsJson);
    return { labels, text: JSON.stringify(labels.map((l) => [l.name, l.value])) };
  });
}

/** A series being gathered: its samples in row order until `inOrder` says otherwise. */
interface Gathering {
  readonly labels: readonly Label[];
  timestamps: number[];
  values: number[];
  /** Whether every timestamp so far is greater than the one before it. */
  inOrder: boolean;
}

/**
 * Gathers samples into series: each sample is added to the series its row's series key maps to,
 * and `finish` gives each series once, its samples in time order.
 */
function createGatherer() {
  // By series key, then by label set: two series keys may become the same labels once their
  // names are made valid (tags `a.b` and `a_b`), and then they are one series.
  const byKey = new Map<string, Gathering>();
  const byLabels = new Map<string, Gathering>();
  return {
    /** The series of `identity` (a series key, or its name and tags as text). */
    seriesOf(identity: string, name: string | null, tagsJson: string): Gathering {
      let series = byKey.get(identity);
      if (series === undefined) {
        const { labels, text } = labelsOfSeries(identity, name, tagsJson);
        series = byLabels.get(text);
        if (series === undefined) {
          series = { labels, timestamps: [], values: [], inOrder: true };
          byLabels.set(text, series);
        }
        byKey.set(identity, series);
      }
      return series;
    },
    add(series: Gathering, timeMs: number, value: number): void {
      const last = series.timestamps.at(-1);
      if (last !== undefined && timeMs <= last) series.inOrder = false;
      series.timestamps.push(timeMs);
      series.values.push(value);
    },
    finish(droppedFields: number): MappedRows {
      let samples = 0;
      let sameTimestamp = 0;
      const series = [...byLabels.values()].map((s) => {
        if (!s.inOrder) {
          const before = s.timestamps.length;
          sortOncePerTimestamp(s);
          sameTimestamp += before - s.timestamps.length;
        }
        samples += s.timestamps.length;
        return { labels: s.labels, timestamps: s.timestamps, values: s.values };
      });
      return { series, samples, sameTimestamp, droppedFields };
    },
  };
}

/** The rows as series, each series once with its samples in time order. */
export function seriesOfRows(rows: readonly MetricRow[]): MappedRows {
  const gatherer = createGatherer();
  let droppedFields = 0;
  for (const row of rows) {
    droppedFields += extraFieldsOf(row);
    gatherer.add(gatherer.seriesOf(row.series, row.name, row.tags), row.timeMs, row.value);
  }
  return gatherer.finish(droppedFields);
}

/** The series of a batch's messages, and what became of each message's samples. */
export interface MappedMessages extends MappedRows {
  /** Samples of each message within the retention window (sent, or left out as repeats). */
  readonly kept: readonly number[];
  /** Samples measured before the retention window's start: not sent. */
  readonly expired: number;
}

/**
 * The series of `messages`, as `seriesOfRows` makes them of the messages' rows (those measured
 * before `cutoffMs` left out), without making those rows: a version 4 message's points go from
 * its columns to their series, its series worked out once per message; a JSON metric goes to
 * its series by its name and tags. A batch's rows would live until the receiver answered, long
 * enough for V8 to allocate them in the old generation (bench/notes.md); the series are a few
 * arrays of numbers.
 */
export function seriesOfMessages(
  messages: readonly StorableMessage[],
  cutoffMs: number | undefined,
): MappedMessages {
  const gatherer = createGatherer();
  const cutoff = cutoffMs ?? -Infinity;
  const kept: number[] = [];
  let expired = 0;
  let droppedFields = 0;
  for (const message of messages) {
    let count = 0;
    if (message.version === 4) {
      const ofSeries = seriesOfColumns(message.columns);
      // Found on a series' first point kept: a series whose points all expired sends nothing.
      const targets = new Array<Gathering | undefined>(ofSeries.length);
      const dropped = message.columns.series.map(({ entry }) => fieldsBeyondColumns(entry));
      const { series, ms, value } = message.columns.points;
      for (let i = 0; i < series.length; i++) {
        const index = series[i] as number;
        const own = ofSeries[index] as ColumnSeries;
        const timeMs: number = own.timeMs ?? (ms[i] as number);
        if (timeMs < cutoff) {
          expired++;
          continue;
        }
        const target = (targets[index] ??= gatherer.seriesOf(own.series, own.name, own.tags));
        gatherer.add(target, timeMs, value[i] as number);
        droppedFields += dropped[index] ?? 0;
        count++;
      }
    } else {
      // A JSON metric's series by its name and tags as text: no digest, no row.
      forEachMetric(message.envelope, (metric, series, timeMs) => {
        if (timeMs < cutoff) {
          expired++;
          return;
        }
        gatherer.add(
          gatherer.seriesOf(series.text, series.name, series.tags),
          timeMs,
          metric.value,
        );
        droppedFields += fieldsBeyondColumns(metric);
        count++;
      });
    }
    kept.push(count);
  }
  return { ...gatherer.finish(droppedFields), kept, expired };
}

/** Sorts a series' samples by time, keeping the first (in row order) of each timestamp. */
function sortOncePerTimestamp(series: Gathering): void {
  const { timestamps, values } = series;
  const order = timeOrder(timestamps);
  const sortedTimes: number[] = [];
  const sortedValues: number[] = [];
  let last = NaN;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    const time = timestamps[i] as number;
    if (time === last) continue;
    last = time;
    sortedTimes.push(time);
    sortedValues.push(values[i] as number);
  }
  series.timestamps = sortedTimes;
  series.values = sortedValues;
}

/**
 * The indexes of `timestamps` in time order, of equal times the first first (a stable sort).
 * A batch's samples of a series come as runs in order, one a message, and it takes a sort of
 * thousands: each time and its index are packed into one number, `(time - earliest) * 2^bits +
 * index`, exact when it stays below 2^53 (any batch spanning less than ~17 years of
 * milliseconds), and a typed array of those sorts natively, without a comparison function (a
 * comparing sort was 7% of a worker's batch). Otherwise, a comparing sort.
 */
function timeOrder(timestamps: readonly number[]): ArrayLike<number> {
  const count = timestamps.length;
  let earliest = Infinity;
  let latest = -Infinity;
  for (const time of timestamps) {
    if (time < earliest) earliest = time;
    if (time > latest) latest = time;
  }
  const scale = 2 ** Math.max(1, Math.ceil(Math.log2(count)));
  if ((latest - earliest + 1) * scale > Number.MAX_SAFE_INTEGER) {
    return timestamps.map((_, i) => i).sort((a, b) => (timestamps[a] ?? 0) - (timestamps[b] ?? 0));
  }
  const keys = new Float64Array(count);
  for (let i = 0; i < count; i++) keys[i] = ((timestamps[i] ?? 0) - earliest) * scale + i;
  keys.sort();
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = (keys[i] ?? 0) % scale;
  return order;
}

/**
 * How many fields of a row's metric a sample has no place for: the metric's own extra fields
 * and what an agent protocol said of its series (`attributes`), each field once. Both are null
 * for almost every row, so the JSON is parsed only for the few that carry any.
 */
export function extraFieldsOf(row: Pick<MetricRow, "attributes" | "extra">): number {
  if (row.attributes === null && row.extra === null) return 0;
  const fields = new Set<string>();
  for (const json of [row.attributes, row.extra]) {
    if (json !== null) for (const key of Object.keys(JSON.parse(json) as object)) fields.add(key);
  }
  return fields.size;
}

/** Orders strings by UTF-16 code units, as Prometheus orders label names (bytes, for ASCII). */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
