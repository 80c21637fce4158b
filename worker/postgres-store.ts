import pg from "pg";
import type { Config } from "../shared/config.ts";
import type { MetricRow } from "./metric-rows.ts";
import type { MetricStore, MetricStoreOptions } from "./metric-store.ts";
import { endPool } from "./end-pool.ts";
import { postgresStartupError } from "./postgres-startup-error.ts";

/** Each entry migrates the schema from the version of its index to the next. */
const MIGRATIONS = [
  `CREATE TABLE metrics (
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
   CREATE INDEX metrics_time ON metrics (time);`,
];

/** The advisory lock every worker takes to migrate: any fixed number, the same in all of them. */
const MIGRATION_LOCK = 4_615_007_129;

/** Without it, connecting to a host that drops packets would wait for the OS's TCP timeout. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * One statement for the whole batch, so one transaction, committed when it resolves. The batch
 * travels as one JSON parameter, whatever its size (multi-row VALUES needs 8 parameters a row,
 * and a statement takes at most 65,535); bench/pg-insert-methods.md has the figures.
 */
const INSERT = `
  INSERT INTO metrics (dedup_key, name, value, time, received_at, tags, metric, msg_id)
  SELECT dedup_key, name, value, time, received_at, tags::jsonb, metric::jsonb, msg_id
  FROM json_to_recordset($1::json) AS r(dedup_key text, name text, value float8,
       time timestamptz, received_at timestamptz, tags text, metric text, msg_id text)
  ON CONFLICT (dedup_key) DO NOTHING`;

/** PostgreSQL through a `pg` pool; creates or migrates the schema before resolving. */
export async function openPostgresStore(
  database: Config["database"],
  options: MetricStoreOptions = {},
): Promise<MetricStore> {
  // Settings in the URL (`sslmode`, …) take precedence over these: that is how `pg` reads it.
  const pool = new pg.Pool({
    connectionString: database.url,
    max: database.pgPoolMax,
    // Sent when each connection starts, so every statement of the pool is bounded by it.
    statement_timeout: database.pgStatementTimeoutMs,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    ssl: sslOptions(database),
    application_name: "metrics-worker",
  });
  pool.on("error", options.onPoolError ?? warn);

  try {
    await migrate(pool);
  } catch (err) {
    await endPool(pool);
    const known = postgresStartupError(err, where(database.url));
    if (known) throw known;
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot open the PostgreSQL store at ${where(database.url)}: ${reason}`, {
      cause: err,
    });
  }

  let closing: Promise<void> | undefined;
  return {
    async insert(rows) {
      if (rows.length === 0) return 0;
      // Every worker inserts in the order of the keys: two of them storing the same redelivered
      // rows then wait for each other instead of deadlocking.
      const sorted = rows.toSorted((a, b) => compare(a.dedupKey, b.dedupKey));
      const result = await pool.query(INSERT, [jsonOf(sorted)]);
      return result.rowCount ?? 0;
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    close() {
      closing ??= endPool(pool);
      return closing;
    },
  };
}

function warn(err: Error): void {
  process.emitWarning(err);
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The rows as the JSON array that INSERT reads. */
function jsonOf(rows: readonly MetricRow[]): string {
  return JSON.stringify(
    rows.map((r) => ({
      dedup_key: r.dedupKey,
      name: r.name,
      value: r.value,
      // ISO text, which PostgreSQL reads exactly; to_timestamp(ms / 1000) goes through a float8
      // of seconds, off by microseconds in later centuries.
      time: new Date(r.timeMs).toISOString(),
      received_at: new Date(r.receivedMs).toISOString(),
      tags: r.tags,
      metric: r.metric,
      msg_id: r.msgId,
    })),
  );
}

/** The `ssl` option of a pool for the configured `PG_SSL` (the query pool uses it too). */
export function sslOptions(database: Config["database"]): pg.PoolConfig["ssl"] {
  switch (database.pgSsl) {
    case "disable":
      return false;
    case "require":
      return { rejectUnauthorized: false };
    case "verify-full":
      return {
        rejectUnauthorized: true,
        ...(database.pgSslCa === undefined ? {} : { ca: database.pgSslCa }),
      };
  }
}

/**
 * Brings the schema to the latest version, in one transaction. The advisory lock makes workers
 * starting together take turns: the first migrates, the others then find nothing to do.
 */
async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // The statement timeout is for inserts: a migration may have a large table to rewrite, and
    // the workers that wait for the lock meanwhile should wait, not fail.
    await client.query("SET LOCAL statement_timeout = 0");
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    // Created only when missing: a role without the right to create tables can still start a
    // worker on a schema that is up to date.
    const { rows: found } = await client.query<{ exists: boolean }>(
      "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
    );
    if (!found[0]?.exists) {
      await client.query(
        `CREATE TABLE schema_migrations (
           version    integer     PRIMARY KEY,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
    }
    const { rows } = await client.query<{ version: number }>(
      "SELECT coalesce(max(version), 0) AS version FROM schema_migrations",
    );
    const from = rows[0]?.version ?? 0;
    if (from > MIGRATIONS.length) {
      throw new Error(`the database's schema (version ${from}) is newer than this worker's`);
    }
    for (let version = from; version < MIGRATIONS.length; version++) {
      await client.query(MIGRATIONS[version] ?? "");
      await client.query("INSERT INTO schema_migrations (version) VALUES ($1)", [version + 1]);
    }
    await client.query("COMMIT");
    client.release();
  } catch (err) {
    // A connection that failed mid-transaction is not given back to the pool.
    await client.query("ROLLBACK").catch(() => undefined);
    client.release(true);
    throw err;
  }
}

/** Host, port and database of the URL, never its user or password. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "DATABASE_URL";
  }
}
