import type { RangeQuery, SeriesEntry, SeriesQuery, Tags } from "../shared/query-protocol.ts";

/** One aggregate of one series' step bucket, as the database computed it. */
export interface BucketRow {
  /** The series' tags as the store keeps them (JSON text in SQLite, an object in PostgreSQL). */
  readonly tags: Tags;
  /** The bucket's start, in ms since the epoch: startMs + k * stepMs. */
  readonly t: number;
  readonly v: number;
}

/**
 * The reads a worker answers from its own store. Each database has its module
 * (`sqlite-queries.ts`, `postgres-queries.ts`), holding all of its read SQL and its own
 * connection, separate from the writes. `limit` bounds the rows read: callers ask for one more
 * than they accept, to tell "exactly the limit" from "over it".
 */
export interface QueryStore {
  /** Distinct series (name and tags) of the query, ordered by name then tags. */
  series(q: SeriesQuery, limit: number): Promise<SeriesEntry[]>;
  /** One row per series and bucket holding samples, ordered by series then time. */
  range(q: RangeQuery, limit: number): Promise<BucketRow[]>;
  close(): Promise<void>;
}
