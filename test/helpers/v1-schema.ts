/**
 * Schema version 1 as the release before series and samples wrote it: its tables and the rows
 * it made of an envelope, copied from that release, so that a test can fill a database exactly
 * as a worker of that release would have, and open it with the current store.
 */
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { runToEnd } from "../../shared/cooperative.ts";
import type { Envelope } from "../../shared/envelope.ts";
import { seriesRowKeys } from "../../shared/series-identity.ts";
import { measurementTimeMs } from "../../shared/timestamp.ts";
import { endPool } from "../../worker/end-pool.ts";

const SQLITE_DDL = `CREATE TABLE IF NOT EXISTS metrics (
     id          INTEGER PRIMARY KEY,
     dedup_key   TEXT    NOT NULL UNIQUE,
     name        TEXT,
     value       REAL    NOT NULL,
     time_ms     INTEGER NOT NULL,
     received_ms INTEGER NOT NULL,
     tags        TEXT    NOT NULL,
     metric      TEXT    NOT NULL,
     msg_id      TEXT    NOT NULL
   );
   CREATE INDEX IF NOT EXISTS metrics_name_time ON metrics (name, time_ms);
   CREATE INDEX IF NOT EXISTS metrics_time ON metrics (time_ms);`;

export const V1_POSTGRES_DDL = `CREATE TABLE schema_migrations (
     version    integer     PRIMARY KEY,
     applied_at timestamptz NOT NULL DEFAULT now()
   );
   INSERT INTO schema_migrations (version) VALUES (1);
   CREATE TABLE IF NOT EXISTS metrics (
     id          bigserial        PRIMARY KEY,
     dedup_key   text             NOT NULL UNIQUE,
     name        text,
     value       double precision NOT NULL,
     time        timestamptz      NOT NULL,
     received_at timestamptz      NOT NULL,
     tags        jsonb            NOT NULL,
     metric      jsonb            NOT NULL,
     msg_id      text             NOT NULL
   );
   CREATE INDEX metrics_name_time ON metrics (name, time);
   CREATE INDEX metrics_time ON metrics (time);`;

interface V1Row {
  dedupKey: string;
  name: string | null;
  value: number;
  timeMs: number;
  receivedMs: number;
  tags: string;
  metric: string;
  msgId: string;
}

/** Version 1's rows of an envelope: keyed by message and index, or by series and time. */
function v1Rows(envelope: Envelope): V1Row[] {
  const { id, receivedAt, key, metrics } = envelope;
  const seriesKeys = key === "series" ? runToEnd(seriesRowKeys(metrics, receivedAt)) : undefined;
  return metrics.map((metric, index) => ({
    dedupKey: seriesKeys?.[index] ?? `${id}/${index}`,
    name: metric.name ?? null,
    value: metric.value,
    timeMs: measurementTimeMs(metric.timestamp, receivedAt),
    receivedMs: receivedAt,
    tags: JSON.stringify(metric.tags ?? {}),
    metric: JSON.stringify(metric),
    msgId: id,
  }));
}

/** Stores the envelopes in a version 1 SQLite file at `path`; resolves to the rows added. */
export function fillV1Sqlite(path: string, envelopes: readonly Envelope[]): number {
  const writer = openV1SqliteWriter(path);
  try {
    return writer.insert(envelopes);
  } finally {
    writer.close();
  }
}

/**
 * A version 1 SQLite file at `path` kept open as that release's store kept it (WAL,
 * `synchronous=FULL`), storing envelopes a transaction a call: the baseline of a benchmark.
 */
export function openV1SqliteWriter(path: string): {
  insert(envelopes: readonly Envelope[]): number;
  close(): void;
} {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec(SQLITE_DDL);
  db.exec("PRAGMA user_version = 1");
  const insert = db.prepare(
    `INSERT INTO metrics (dedup_key, name, value, time_ms, received_ms, tags, metric, msg_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING`,
  );
  return {
    insert(envelopes) {
      let added = 0;
      db.exec("BEGIN");
      try {
        for (const r of envelopes.flatMap(v1Rows)) {
          added += Number(
            insert.run(
              r.dedupKey,
              r.name,
              r.value,
              r.timeMs,
              r.receivedMs,
              r.tags,
              r.metric,
              r.msgId,
            ).changes,
          );
        }
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
      return added;
    },
    close() {
      db.close();
    },
  };
}

/** Stores the envelopes in a version 1 PostgreSQL database at `url`; resolves to the rows added. */
export async function fillV1Postgres(
  url: string,
  envelopes: readonly Envelope[],
  createSchema = true,
): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    if (createSchema) await pool.query(V1_POSTGRES_DDL);
    return await insertV1Postgres(pool, envelopes);
  } finally {
    await endPool(pool);
  }
}

/**
 * Stores the envelopes in one statement as that release's store did (a JSON parameter of the
 * rows, `ON CONFLICT (dedup_key) DO NOTHING`), in a database with version 1's tables; resolves to
 * the rows added.
 */
export async function insertV1Postgres(
  pool: pg.Pool,
  envelopes: readonly Envelope[],
): Promise<number> {
  const rows = envelopes.flatMap(v1Rows).map((r) => ({
    dedup_key: r.dedupKey,
    name: r.name,
    value: r.value,
    time: new Date(r.timeMs).toISOString(),
    received_at: new Date(r.receivedMs).toISOString(),
    tags: r.tags,
    metric: r.metric,
    msg_id: r.msgId,
  }));
  const result = await pool.query(
    `INSERT INTO metrics (dedup_key, name, value, time, received_at, tags, metric, msg_id)
     SELECT dedup_key, name, value, time, received_at, tags::jsonb, metric::jsonb, msg_id
     FROM json_to_recordset($1::json) AS r(dedup_key text, name text, value float8,
          time timestamptz, received_at timestamptz, tags text, metric text, msg_id text)
     ON CONFLICT (dedup_key) DO NOTHING`,
    [JSON.stringify(rows)],
  );
  return result.rowCount ?? 0;
}

/**
 * Envelopes as a version 1 worker met them: `messages` JSON API messages of 10 metrics each
 * (tagged series, named and unnamed, some with fields of their own), agent batches with series
 * fields, and two metrics without a timestamp of one series in one message, which version 1
 * stored as two rows and the current schema as one sample.
 */
export function v1Envelopes(messages: number): Envelope[] {
  const base = Date.UTC(2026, 10, 1);
  const envelopes: Envelope[] = [];
  for (let m = 0; m < messages; m++) {
    envelopes.push({
      id: `json-${m}`,
      receivedAt: base + m * 1000,
      key: "message",
      metrics: Array.from({ length: 10 }, (_, i) => ({
        name: `app.requests`,
        value: m * 10 + i,
        timestamp: base + m * 1000 + i,
        tags: { host: `h${i % 4}` },
        ...(i === 0 ? { note: "first", nested: { a: [1, 2] } } : {}),
      })),
    });
    envelopes.push({
      id: `s:agent-${m}`,
      receivedAt: base + m * 1000,
      key: "series",
      metrics: [
        {
          name: "weather_temp",
          value: m,
          timestamp: new Date(base + m * 60_000).toISOString(),
          tags: { site: "roof" },
          influx: { bucket: "home", measurement: "weather", field: "temp", type: "float" },
        },
        {
          name: "weather_note",
          value: 1,
          timestamp: new Date(base + m * 60_000).toISOString(),
          tags: { site: "roof" },
          influx: {
            bucket: "home",
            measurement: "weather",
            field: "note",
            type: "string",
            text: `n${m}`,
          },
        },
      ] as unknown as Envelope["metrics"],
    });
  }
  envelopes.push({
    id: "twins",
    receivedAt: base,
    key: "message",
    metrics: [{ value: 1 }, { value: 2 }],
  });
  return envelopes;
}
