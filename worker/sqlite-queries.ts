import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import type { Aggregation, Tags } from "../shared/query-protocol.ts";
import type { BucketRow, QueryStore } from "./query-store.ts";

/**
 * The aggregate of each step bucket, in SQLite. `last` relies on SQLite's documented bare
 * column rule: with one max() in the select list, the other columns come from the row holding
 * that maximum, i.e. the bucket's latest sample.
 */
const AGGREGATE: Readonly<Record<Aggregation, string>> = {
  avg: "avg(value)",
  min: "min(value)",
  max: "max(value)",
  sum: "sum(value)",
  count: "count(*)",
  last: "value, max(time_ms)",
};

/** One `AND` per tag filter: the series' tags hold that key with that value. */
function tagFilters(tags: Tags): { sql: string; params: string[] } {
  const entries = Object.entries(tags);
  return {
    sql: entries
      .map(() => " AND EXISTS (SELECT 1 FROM json_each(tags) WHERE key = ? AND value = ?)")
      .join(""),
    params: entries.flat(),
  };
}

/**
 * Reads from the worker's SQLite file through a connection of their own, made read-only
 * (`query_only`): in WAL mode they read the last commit while the writer goes on. The queries
 * run against `metrics` (name, value, tags, time_ms), whatever stores it.
 */
export function openSqliteQueries(path: string): QueryStore {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 10000");
  db.exec("PRAGMA query_only = 1");

  return {
    series: (q, limit) =>
      Promise.resolve().then(() => {
        const filters = tagFilters(q.tags);
        const params: SQLInputValue[] = [...filters.params, limit];
        const byName = q.name === undefined ? "" : " AND name = ?";
        if (q.name !== undefined) params.unshift(q.name);
        const rows = db
          .prepare(
            `SELECT DISTINCT name, tags FROM metrics WHERE 1 = 1${byName}${filters.sql}
             ORDER BY name, tags LIMIT ?`,
          )
          .all(...params) as { name: string | null; tags: string }[];
        return rows.map((r) => ({ name: r.name, tags: JSON.parse(r.tags) as Tags }));
      }),
    range: (q, limit) =>
      Promise.resolve().then(() => {
        const filters = tagFilters(q.tags);
        // Integers bound as BigInt stay INTEGER, so the bucket is an integer division.
        const start = BigInt(q.startMs);
        const rows = db
          .prepare(
            `SELECT tags, (time_ms - ?) / ? AS bucket, ${AGGREGATE[q.agg]} AS v
             FROM metrics
             WHERE name = ? AND time_ms BETWEEN ? AND ?${filters.sql}
             GROUP BY tags, bucket ORDER BY tags, bucket LIMIT ?`,
          )
          .all(
            start,
            BigInt(q.stepMs),
            q.name,
            start,
            BigInt(q.endMs),
            ...filters.params,
            limit,
          ) as { tags: string; bucket: number; v: number; value?: number }[];
        return rows.map((r): BucketRow => ({
          tags: JSON.parse(r.tags) as Tags,
          t: q.startMs + r.bucket * q.stepMs,
          v: Number(q.agg === "last" ? r.value : r.v),
        }));
      }),
    close() {
      if (db.isOpen) db.close();
      return Promise.resolve();
    },
  };
}
