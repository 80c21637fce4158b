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
import type { MetricRow } from "./metric-rows.ts";

/** The name of a metric sent without one. */
export const DEFAULT_METRIC_NAME = "metric";
/** Put in front of a tag whose name would begin with `__`, reserved for Prometheus's labels. */
export const RESERVED_LABEL_PREFIX = "tag";

export interface Label {
  readonly name: string;
  readonly value: string;
}

export interface Sample {
  readonly value: number;
  readonly timestamp: bigint;
}

export interface OutgoingSeries {
  /** Sorted by name, `__name__` among them. */
  readonly labels: readonly Label[];
  /** Sorted by timestamp, one per timestamp. */
  readonly samples: Sample[];
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

/** The fields of a metric that a sample carries. */
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

/** The rows as series, each series once with its samples in time order. */
export function seriesOfRows(rows: readonly MetricRow[]): MappedRows {
  // Rows of one series usually share their tags' JSON text: their labels are worked out once.
  const keyOfText = new Map<string, string>();
  const byKey = new Map<string, { series: OutgoingSeries; times: Set<number> }>();
  let samples = 0;
  let sameTimestamp = 0;
  let droppedFields = 0;
  for (const row of rows) {
    droppedFields += extraFieldsOf(row);
    const text = `${row.name ?? ""}\u0000${row.name === null ? "0" : "1"}${row.tags}`;
    let key = keyOfText.get(text);
    let entry = key === undefined ? undefined : byKey.get(key);
    if (entry === undefined) {
      const labels = labelsOf(row.name, row.tags);
      key = JSON.stringify(labels.map((l) => [l.name, l.value]));
      keyOfText.set(text, key);
      entry = byKey.get(key);
      if (entry === undefined) {
        entry = { series: { labels, samples: [] }, times: new Set() };
        byKey.set(key, entry);
      }
    }
    if (entry.times.has(row.timeMs)) {
      sameTimestamp++;
      continue;
    }
    entry.times.add(row.timeMs);
    entry.series.samples.push({ value: row.value, timestamp: BigInt(row.timeMs) });
    samples++;
  }
  const series = [...byKey.values()].map(({ series: s }) => {
    s.samples.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
    return s;
  });
  return { series, samples, sameTimestamp, droppedFields };
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
