import type { MetricRow } from "./metric-rows.ts";

/**
 * Room enough to retry a batch that failed on a full disk: every byte of its rows written to the
 * log, then to the table, twice over for the indexes, and never less than 1 MiB (a checkpoint's
 * worth of pages). Until that much is free, the store answers its ping with an error: a
 * `SELECT 1` still answers on a full disk, and without this the worker would resume at once,
 * fail again, and spend a delivery of every message it holds each time, until `max_deliver`
 * dead-letters acknowledged metrics; and /readyz would say ready while nothing can be stored.
 */
export function spaceToRetry(rows: readonly MetricRow[]): number {
  let bytes = 0;
  for (const r of rows) bytes += r.series.length + r.tags.length + (r.extra?.length ?? 0) + 64;
  return Math.max(1024 * 1024, 4 * bytes);
}
