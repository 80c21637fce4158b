import type { Metric } from "../../shared/metric-schema.ts";
import { SeriesColumns, type SeriesMetric } from "../../shared/series-columns.ts";
import { canonicalTimeMs } from "../../shared/timestamp.ts";

/**
 * Metrics as a converter would have written them into columns: each needs a name and a
 * timestamp that is a number of milliseconds or an RFC 3339 text as `rfc3339FromNanos` writes it.
 */
export function columnsOf(metrics: readonly Metric[]): SeriesColumns {
  const columns = new SeriesColumns();
  for (const { value, timestamp, ...series } of metrics) {
    if (series.name === undefined) throw new Error("columnsOf: a metric without a name");
    const id = columns.seriesIndex(series as SeriesMetric);
    if (typeof timestamp === "number") {
      columns.addPoint(id, timestamp, -1, String(value));
      continue;
    }
    const ms = timestamp === undefined ? undefined : canonicalTimeMs(timestamp);
    if (ms === undefined || timestamp === undefined) {
      throw new Error(`columnsOf: a timestamp not as rfc3339FromNanos writes it: ${timestamp}`);
    }
    columns.addPoint(id, ms, Number(timestamp.slice(23, 29)), String(value));
  }
  return columns;
}
