import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";

/** A row of the `metrics` view: one stored sample with its series. */
export interface StoredRow {
  name: string | null;
  value: number;
  time_ms: number;
  /** JSON text. */
  tags: string;
  series_id: number;
  /** The series' attributes as JSON text (agent protocols), or null. */
  attributes: string | null;
  /** The sample's other fields as JSON text, or null. */
  extra: string | null;
}

/**
 * Every sample of the `metrics` view, by time then series (series are numbered as they were
 * first stored); none when the file or the schema is not there yet.
 */
export function readRows(path: string): StoredRow[] {
  if (!existsSync(path)) return [];
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const hasView = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'metrics'").get();
    if (!hasView) return [];
    return db
      .prepare(
        `SELECT name, value, time_ms, tags, series_id, attributes, extra FROM metrics
         ORDER BY time_ms, series_id`,
      )
      .all() as unknown as StoredRow[];
  } finally {
    db.close();
  }
}

/**
 * A stored sample as a metric again: name, value and tags (when it has them), its series'
 * attributes and its own fields; the time is `time_ms`, in milliseconds.
 */
export function metricOf(row: StoredRow): Record<string, unknown> {
  const tags = JSON.parse(row.tags) as Record<string, string>;
  const attributes = JSON.parse(row.attributes ?? "{}") as Record<string, unknown>;
  const extra = JSON.parse(row.extra ?? "{}") as Record<string, unknown>;
  const metric: Record<string, unknown> = { ...attributes };
  for (const [field, value] of Object.entries(extra)) {
    const series = attributes[field];
    // An influx string field's text is the sample's; the rest of `influx` is the series'.
    metric[field] =
      typeof series === "object" && series !== null && typeof value === "object" && value !== null
        ? { ...series, ...value }
        : value;
  }
  return {
    ...(row.name === null ? {} : { name: row.name }),
    value: row.value,
    ...(Object.keys(tags).length === 0 ? {} : { tags }),
    ...metric,
  };
}
