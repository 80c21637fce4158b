import { mkdirSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { MetricRow } from "./metric-rows.ts";
import type { MetricStore } from "./metric-store.ts";
import { StartupError } from "../shared/startup-error.ts";

/** Each entry migrates the schema from the version of its index to the next. */
const MIGRATIONS = [
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
];

/**
 * SQLite through Node's built-in `node:sqlite`: nothing to compile, and it ships with the Node
 * the project pins. WAL with `synchronous=FULL` makes every commit durable before the worker
 * acks the messages it held; a batch of many messages per transaction pays for that fsync.
 */
export function openSqliteStore(path: string): MetricStore {
  const db = openFile(path);
  /**
   * Free bytes the file's disk must have before the store answers a ping again, after an insert
   * failed because the disk is full (0: no such failure since the last insert that worked). A
   * `SELECT 1` still answers on a full disk: without this the worker would resume at once, fail
   * again, and spend a delivery of every message it holds each time, until `max_deliver`
   * dead-letters acknowledged metrics; and /readyz would say ready while nothing can be stored.
   */
  let neededBytes = 0;
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  migrate(db);

  const insert = db.prepare(
    `INSERT INTO metrics (dedup_key, name, value, time_ms, received_ms, tags, metric, msg_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (dedup_key) DO NOTHING`,
  );

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
          if (isDiskFull(err)) neededBytes = spaceFor(rows);
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
    close() {
      if (db.isOpen) db.close();
      return Promise.resolve();
    },
  };

  function insertAll(rows: readonly MetricRow[]): number {
    let added = 0;
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const r of rows) {
        const result = insert.run(
          r.dedupKey,
          r.name,
          r.value,
          r.timeMs,
          r.receivedMs,
          r.tags,
          r.metric,
          r.msgId,
        );
        added += Number(result.changes);
      }
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    }
    return added;
  }
}

/** SQLITE_FULL: "database or disk is full". */
function isDiskFull(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string } | null;
  return e?.errcode === 13 || /database or disk is full/i.test(e?.message ?? "");
}

/**
 * Room enough to retry a batch: every byte of its rows written to the WAL, then to the file,
 * twice over for the indexes, and never less than 1 MiB (a checkpoint's worth of pages).
 */
function spaceFor(rows: readonly MetricRow[]): number {
  let bytes = 0;
  for (const r of rows) bytes += r.dedupKey.length + r.tags.length + r.metric.length + 64;
  return Math.max(1024 * 1024, 4 * bytes);
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

function migrate(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const { user_version: from } = db.prepare("PRAGMA user_version").get() as {
      user_version: number;
    };
    if (from > MIGRATIONS.length) {
      throw new Error(`the database's schema (version ${from}) is newer than this worker's`);
    }
    for (let version = from; version < MIGRATIONS.length; version++) {
      db.exec(MIGRATIONS[version] ?? "");
    }
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
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
