import { mkdirSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate as yieldToWriter } from "node:timers/promises";
import { spaceToRetry } from "./disk-space.ts";
import { extraBeside, type MetricRow } from "./metric-rows.ts";
import type { MetricStore, Migrated } from "./metric-store.ts";
import { SeriesCache, type KnownSeries } from "./series-cache.ts";
import { StartupError } from "../shared/startup-error.ts";
import { storedRowOfV1, type V1Row } from "./v1-rows.ts";

/**
 * Series stored once; samples narrow, in a WITHOUT ROWID table clustered by series and time:
 * the key is the row, so a sample costs its key and value once (no rowid, no second index),
 * and a series' samples of an hour are neighbours. `metrics` is the view SQL users query.
 */
const SCHEMA_V2 = `
  CREATE TABLE series (
    id         INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    name       TEXT,
    tags       TEXT    NOT NULL,
    attributes TEXT
  );
  CREATE INDEX series_name ON series (name);
  CREATE TABLE samples (
    series_id INTEGER NOT NULL,
    time_ms   INTEGER NOT NULL,
    value     REAL    NOT NULL,
    extra     TEXT,
    PRIMARY KEY (series_id, time_ms)
  ) WITHOUT ROWID;
  CREATE VIEW metrics AS
    SELECT s.name, v.value, s.tags, v.time_ms, v.series_id, s.attributes, v.extra
    FROM samples v JOIN series s ON s.id = v.series_id;`;

/** Each entry migrates the schema from the version of its index to the next. */
const MIGRATIONS = [
  // Version 1: one wide row per metric. Kept as it was, for databases made by older releases.
  `CREATE TABLE metrics (
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
   CREATE INDEX metrics_name_time ON metrics (name, time_ms);
   CREATE INDEX metrics_time ON metrics (time_ms);`,
  // Version 2: the old rows wait in metrics_v1 until `moveV1Rows` has moved them all.
  `ALTER TABLE metrics RENAME TO metrics_v1;
   ${SCHEMA_V2}`,
];

/** Rows of a version 1 table moved a transaction, so that inserts are held up briefly. */
const MIGRATION_BATCH = 5000;

/**
 * SQLite through Node's built-in `node:sqlite`: nothing to compile, and it ships with the Node
 * the project pins. WAL with `synchronous=FULL` makes every commit durable before the worker
 * acks the messages it held; a batch of many messages per transaction pays for that fsync.
 */
export function openSqliteStore(path: string): MetricStore {
  const db = openFile(path);
  /**
   * Free bytes the file's disk must have before the store answers a ping again, after an insert
   * failed because the disk is full (0: no such failure since the last insert that worked).
   */
  let neededBytes = 0;
  // Before anything writes the file's header (switching to WAL does): only a file without
  // tables takes it, so a new file gives space back as retention deletes; an older one keeps
  // its free pages for new samples.
  db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  // A batch adds a few samples to each of many series, so it touches as many pages all over the
  // table, and the next batch the same pages again: a larger cache (64 MiB, against SQLite's
  // 2 MiB) keeps them in memory. 30,000 → 40,000 samples/s over a million samples of 1,000
  // series (bench/storage-size.ts's shape), with checkpoints every 10,000 pages of WAL then.
  // The WAL stays at SQLite's 1,000 pages (4 MiB): at 10,000 it grew to 40 MiB before a
  // checkpoint, so a disk with less room than that filled for good, and the worker waited for
  // space that only a checkpoint could give back (fault scenario 11, full form). The current
  // schema showed no difference between the two (bench/schema-throughput.ts, 400,000 samples,
  // two runs each: 84,755 and 118,590 samples/s at 10,000 pages, 109,818 and 112,475 at 1,000).
  db.exec("PRAGMA cache_size = -65536");
  db.exec("PRAGMA wal_autocheckpoint = 1000");
  migrate(db);
  const migrated = moveV1Rows(db);

  const statements = prepare(db);
  const cache = new SeriesCache();

  return {
    // node:sqlite is synchronous; running it in a promise's callback makes every failure a
    // rejection, as the interface promises.
    insert: (rows) =>
      Promise.resolve().then(() => {
        try {
          const added = insertAll(rows);
          neededBytes = 0;
          return added;
        } catch (err) {
          if (isDiskFull(err)) neededBytes = spaceToRetry(rows);
          throw err;
        }
      }),
    ping: () =>
      Promise.resolve().then(() => {
        db.prepare("SELECT 1").get();
        if (neededBytes === 0 || path === ":memory:") return;
        const free = freeBytes(dirname(path));
        if (free < neededBytes) {
          throw new Error(
            `the disk holding ${path} is full: ${free} bytes free, waiting for ${neededBytes}`,
          );
        }
      }),
    enforceRetention: (cutoffMs) => deleteBefore(db, cutoffMs),
    migrated,
    close() {
      if (db.isOpen) db.close();
      return Promise.resolve();
    },
  };

  function insertAll(rows: readonly MetricRow[]): number {
    // Series made in this transaction join the cache only once it committed.
    const made = new Map<string, KnownSeries>();
    const added = inTransaction(db, () => insertSamples(statements, rows, made, cache));
    for (const [key, series] of made) cache.set(key, series);
    return added;
  }
}

/**
 * Inserts the rows' samples, skipping those already stored, and resolves to the number added.
 * Each row's series is looked up in `made`, then in `cached`, and made when in neither; `made`
 * collects every series of this call, cached, stored or found.
 */
function insertSamples(
  statements: Statements,
  rows: readonly MetricRow[],
  made: Map<string, KnownSeries>,
  cached?: { get(key: string): KnownSeries | undefined },
): number {
  let count = 0;
  for (const row of rows) {
    // `made` first: the cache's lookup also marks a series as used lately, a Map delete and
    // set, too much to pay per sample (7.5% of a drain); once per series of a call is enough.
    let series = made.get(row.series);
    if (series === undefined) {
      series = cached?.get(row.series) ?? storedSeries(statements, row);
      made.set(row.series, series);
    }
    const extra = extraBeside(row, series.attributes);
    count += Number(statements.insertSample.run(series.id, row.timeMs, row.value, extra).changes);
  }
  return count;
}

/** The series of `row`, made when it is not stored yet. */
function storedSeries(statements: Statements, row: MetricRow): KnownSeries {
  const found =
    statements.insertSeries.get(row.series, row.name, row.tags, row.attributes) ??
    statements.selectSeries.get(row.series);
  if (found === undefined) throw new Error(`series ${row.series} neither made nor found`);
  return { id: Number(found["id"]), attributes: (found["attributes"] as string | null) ?? null };
}

interface Statements {
  readonly insertSeries: StatementSync;
  readonly selectSeries: StatementSync;
  readonly insertSample: StatementSync;
}

function prepare(db: DatabaseSync): Statements {
  return {
    insertSeries: db.prepare(
      `INSERT INTO series (key, name, tags, attributes) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO NOTHING RETURNING id, attributes`,
    ),
    selectSeries: db.prepare("SELECT id, attributes FROM series WHERE key = ?"),
    insertSample: db.prepare(
      `INSERT INTO samples (series_id, time_ms, value, extra) VALUES (?, ?, ?, ?)
       ON CONFLICT (series_id, time_ms) DO NOTHING`,
    ),
  };
}

/** Runs `work` in a write transaction, committed before it returns. */
function inTransaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = work();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

function migrate(db: DatabaseSync): void {
  const version = () =>
    (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  inTransaction(db, () => {
    const from = version();
    if (from > MIGRATIONS.length) {
      throw new Error(`the database's schema (version ${from}) is newer than this worker's`);
    }
    // A new file gets the current schema at once.
    if (from === 0) db.exec(SCHEMA_V2);
    else for (let v = from; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v] ?? "");
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
  });
}

/**
 * Moves the rows of a version 1 table (`metrics_v1`) into series and samples, a batch a
 * transaction, deleting each batch from it in the same transaction, then drops it. Workers
 * starting together take turns (`BEGIN IMMEDIATE`), each moving what is left, so every row is
 * moved once. Undefined when there was nothing to move.
 */
function moveV1Rows(db: DatabaseSync): Migrated | undefined {
  const hasV1 = () =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'metrics_v1'").get() !==
    undefined;
  if (!hasV1()) return undefined;
  const statements = prepare(db);
  let rows = 0;
  let added = 0;
  for (;;) {
    const moved = inTransaction(db, () => {
      if (!hasV1()) return 0;
      const batch = db
        .prepare(
          `SELECT id, dedup_key, name, value, time_ms, received_ms, tags, metric, msg_id
           FROM metrics_v1 ORDER BY id LIMIT ${MIGRATION_BATCH}`,
        )
        .all() as unknown as (V1Row & { id: number })[];
      if (batch.length === 0) {
        db.exec("DROP TABLE metrics_v1");
        return 0;
      }
      added += insertSamples(statements, batch.map(storedRowOfV1), new Map());
      db.prepare("DELETE FROM metrics_v1 WHERE id <= ?").run(batch.at(-1)?.id ?? 0);
      return batch.length;
    });
    if (moved === 0) break;
    rows += moved;
  }
  return { rows, collapsed: rows - added };
}

/**
 * Deletes the samples before `cutoffMs` series by series, at most a few thousand rows a
 * transaction, letting the event loop (and so the worker's inserts) run between transactions;
 * then gives the freed pages back to the file system a chunk at a time.
 */
async function deleteBefore(db: DatabaseSync, cutoffMs: number): Promise<number> {
  const CHUNK = 1000;
  const TRANSACTION_ROWS = 5000;
  const ids = db.prepare("SELECT id FROM series ORDER BY id").all() as { id: number }[];
  // At most CHUNK rows of one series: the CHUNK-th oldest expired sample bounds the delete.
  const deleteChunk = db.prepare(
    `DELETE FROM samples WHERE series_id = ?1 AND time_ms < ?2 AND time_ms <= coalesce(
       (SELECT time_ms FROM samples WHERE series_id = ?1 AND time_ms < ?2
        ORDER BY time_ms LIMIT 1 OFFSET ${CHUNK - 1}), ?2)`,
  );
  let deleted = 0;
  let next = 0;
  while (next < ids.length) {
    deleted += inTransaction(db, () => {
      let count = 0;
      while (next < ids.length && count < TRANSACTION_ROWS) {
        const changes = Number(deleteChunk.run(ids[next]?.id ?? 0, cutoffMs).changes);
        count += changes;
        if (changes < CHUNK) next++;
      }
      return count;
    });
    await yieldToWriter();
  }
  const freePages = () =>
    (db.prepare("PRAGMA freelist_count").get() as { freelist_count: number }).freelist_count;
  while (freePages() > 0) {
    db.exec("PRAGMA incremental_vacuum(2000)");
    // A file made before version 2 has no incremental vacuum: the pragma does nothing there.
    const { auto_vacuum: mode } = db.prepare("PRAGMA auto_vacuum").get() as {
      auto_vacuum: number;
    };
    if (mode !== 2) break;
    await yieldToWriter();
  }
  return deleted;
}

/** The file opened, or a `StartupError` saying why not (a folder that cannot be written, …). */
function openFile(path: string): DatabaseSync {
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    // Several worker processes may share one file; a writer waits for another's transaction.
    // First of all: two workers opening a new file at once both switch it to WAL, which takes a
    // lock, and without the timeout the second fails at once with "database is locked".
    db.exec("PRAGMA busy_timeout = 10000");
    return db;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new StartupError(
      `cannot open the SQLite file ${path}: ${reason}; check DATABASE_URL and that its folder can be written`,
    );
  }
}

/** SQLITE_FULL: "database or disk is full". */
function isDiskFull(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string } | null;
  return e?.errcode === 13 || /database or disk is full/i.test(e?.message ?? "");
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
