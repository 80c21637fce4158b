import pg from "pg";
import type { Config } from "../shared/config.ts";
import type { Aggregation, Tags } from "../shared/query-protocol.ts";
import { endPool } from "./end-pool.ts";
import { sslOptions } from "./postgres-store.ts";
import type { BucketRow, QueryStore } from "./query-store.ts";

/** The aggregate of each step bucket, in PostgreSQL, as float8 (count is bigint otherwise). */
const AGGREGATE: Readonly<Record<Aggregation, string>> = {
  avg: "avg(value)",
  min: "min(value)",
  max: "max(value)",
  sum: "sum(value)",
  count: "count(*)::float8",
  last: "(array_agg(value ORDER BY time DESC))[1]",
};

/** Reads take few connections: they are short, and the writes keep the pool's others. */
const READ_POOL_MAX = 2;

/**
 * Reads from the worker's PostgreSQL database through a pool of their own, bounded by the same
 * statement timeout as the writes. The queries run against `metrics` (name, value, tags jsonb,
 * time timestamptz), whatever stores it; buckets are `date_bin` of the step from the range's
 * start (PostgreSQL 14 and later).
 */
export function openPostgresQueries(database: Config["database"]): QueryStore {
  const pool = new pg.Pool({
    connectionString: database.url,
    max: READ_POOL_MAX,
    statement_timeout: database.pgStatementTimeoutMs,
    connectionTimeoutMillis: 10_000,
    ssl: sslOptions(database),
    application_name: "metrics-query",
  });
  // An idle connection that broke is dropped by the pool and replaced when next needed.
  pool.on("error", () => undefined);

  return {
    async series(q, limit) {
      const { rows } = await pool.query<{ name: string | null; tags: Tags }>(
        `SELECT DISTINCT name, tags FROM metrics
         WHERE ($1::text IS NULL OR name = $1) AND tags @> $2::jsonb
         ORDER BY name, tags LIMIT $3`,
        [q.name ?? null, JSON.stringify(q.tags), limit],
      );
      return rows;
    },
    async range(q, limit) {
      const { rows } = await pool.query<{ tags: Tags; t: string; v: number }>(
        `SELECT tags,
                (extract(epoch FROM date_bin($2::float8 * interval '1 millisecond', time, $3::timestamptz))
                  * 1000)::bigint AS t,
                ${AGGREGATE[q.agg]} AS v
         FROM metrics
         WHERE name = $1 AND time >= $3::timestamptz AND time <= $4::timestamptz
           AND tags @> $5::jsonb
         GROUP BY tags, 2 ORDER BY tags, 2 LIMIT $6`,
        [
          q.name,
          q.stepMs,
          new Date(q.startMs).toISOString(),
          new Date(q.endMs).toISOString(),
          JSON.stringify(q.tags),
          limit,
        ],
      );
      return rows.map((r): BucketRow => ({ tags: r.tags, t: Number(r.t), v: r.v }));
    },
    close: () => endPool(pool),
  };
}
