/**
 * Bytes per stored sample: the same samples stored by the worker's stores (SQLite file,
 * PostgreSQL tables with their indexes), by schema version 1's wide rows beside them, and by
 * VictoriaMetrics when its binary is in .tools/ (scripts/get-debian-binary.sh bookworm
 * victoria-metrics usr/bin/victoria-metrics). Then the plan of the query for the last hour of
 * one series, in both stores.
 *
 * Run: `node bench/storage-size.ts` (STORAGE_SERIES, STORAGE_SAMPLES_PER_SERIES to change the
 * shape; PostgreSQL as for the tests). The samples look like Telegraf's cpu input: one series
 * per host and field, one point every 10 s, values with two decimals.
 */
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import type { Envelope } from "../shared/envelope.ts";
import { endPool } from "../worker/end-pool.ts";
import { rowsOfEnvelope } from "../worker/metric-rows.ts";
import { openPostgresStore } from "../worker/postgres-store.ts";
import type { MetricStore } from "../worker/metric-store.ts";
import { openSqliteStore } from "../worker/sqlite-store.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import { freePort } from "../test/helpers/processes.ts";
import { fillV1Postgres, fillV1Sqlite } from "../test/helpers/v1-schema.ts";
import { telegrafEnvelopes, telegrafLineProtocol } from "./telegraf-samples.ts";

const SERIES = Number(process.env["STORAGE_SERIES"] ?? 1000);
const PER_SERIES = Number(process.env["STORAGE_SAMPLES_PER_SERIES"] ?? 1000);
/** The last sample is a minute ago, so that "the last hour" holds 360 of each series. */
const END = Date.now() - 60_000;
const STEP_MS = 10_000;
const SHAPE = {
  series: SERIES,
  perSeries: PER_SERIES,
  startMs: END - (PER_SERIES - 1) * STEP_MS,
  stepMs: STEP_MS,
};
const VM_BIN = join(process.cwd(), ".tools/victoria-metrics/victoria-metrics");

const envelopes = () => telegrafEnvelopes(SHAPE, END);
const lineProtocol = () => telegrafLineProtocol(SHAPE);

const total = SERIES * PER_SERIES;
const perSample = (bytes: number) => Math.round((bytes / total) * 10) / 10;

function sqliteFileBytes(path: string): number {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);
}

/** Stores every envelope's rows in batches of 5,000, as a worker would: the seconds it took. */
async function storeAll(store: MetricStore): Promise<number> {
  const started = performance.now();
  let batch = [];
  for (const envelope of envelopes()) {
    batch.push(...rowsOfEnvelope(envelope));
    if (batch.length >= 5000) {
      await store.insert(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await store.insert(batch);
  return (performance.now() - started) / 1000;
}

async function sqliteNew(dir: string): Promise<{ bytes: number; seconds: number; plan: string }> {
  const path = join(dir, "new.db");
  const store = openSqliteStore(path);
  const seconds = await storeAll(store);
  await store.close();
  const db = new DatabaseSync(path);
  db.exec("ANALYZE");
  const query = `SELECT time_ms, value FROM metrics
     WHERE name = 'cpu_usage_user' AND tags = '{"host":"host-7","cpu":"cpu-total"}'
       AND time_ms >= ${END - 3_600_000}`;
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${query}`).all() as { detail: string }[])
    .map((r) => r.detail)
    .join("\n");
  const t = performance.now();
  const rows = db.prepare(query).all().length;
  const ms = Math.round((performance.now() - t) * 100) / 100;
  db.close();
  return {
    bytes: sqliteFileBytes(path),
    seconds,
    plan: `${query}\n-- ${rows} rows in ${ms} ms\n${plan}`,
  };
}

function sqliteOld(dir: string): number {
  const path = join(dir, "old.db");
  let chunk: Envelope[] = [];
  for (const envelope of envelopes()) {
    chunk.push(envelope);
    if (chunk.length >= 20) {
      fillV1Sqlite(path, chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) fillV1Sqlite(path, chunk);
  return sqliteFileBytes(path);
}

async function postgresNew(): Promise<{
  bytes: number;
  heap: number;
  seconds: number;
  plan: string;
}> {
  const database = await createTestDatabase();
  try {
    const store = await openPostgresStore({
      url: database.url,
      pgPoolMax: 2,
      pgStatementTimeoutMs: 600_000,
      pgSsl: "disable",
      pgSslCa: undefined,
      retentionMs: undefined,
    });
    const seconds = await storeAll(store);
    await store.close();
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      await pool.query("VACUUM ANALYZE");
      const sizes = await pool.query<{ total: string; heap: string }>(
        `SELECT sum(pg_total_relation_size(c.oid))::text AS total,
                sum(pg_relation_size(c.oid))::text AS heap
         FROM pg_class c
         WHERE c.relkind = 'r' AND (c.relname LIKE 'samples_%' OR c.relname = 'series')`,
      );
      const query = `SELECT time, value FROM metrics
         WHERE name = 'cpu_usage_user' AND tags = '{"host":"host-7","cpu":"cpu-total"}'
           AND time >= now() - interval '1 hour'`;
      const plan = await pool.query<{ "QUERY PLAN": string }>(
        `EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) ${query}`,
      );
      return {
        bytes: Number(sizes.rows[0]?.total ?? 0),
        heap: Number(sizes.rows[0]?.heap ?? 0),
        seconds,
        plan: `${query}\n${plan.rows.map((r) => r["QUERY PLAN"]).join("\n")}`,
      };
    } finally {
      await endPool(pool);
    }
  } finally {
    await database.drop();
  }
}

async function postgresOld(): Promise<number> {
  const database = await createTestDatabase();
  try {
    let chunk: Envelope[] = [];
    let first = true;
    for (const envelope of envelopes()) {
      chunk.push(envelope);
      if (chunk.length >= 10) {
        await fillV1Postgres(database.url, chunk, first);
        first = false;
        chunk = [];
      }
    }
    if (chunk.length > 0) await fillV1Postgres(database.url, chunk, first);
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      await pool.query("VACUUM ANALYZE metrics");
      const size = await pool.query<{ total: string }>(
        "SELECT pg_total_relation_size('metrics')::text AS total",
      );
      return Number(size.rows[0]?.total ?? 0);
    } finally {
      await endPool(pool);
    }
  } finally {
    await database.drop();
  }
}

async function dirBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}

async function victoriaMetrics(dir: string): Promise<number | undefined> {
  if (!existsSync(VM_BIN)) return undefined;
  const port = await freePort();
  const data = join(dir, "vm");
  const child = spawn(
    VM_BIN,
    [`-storageDataPath=${data}`, `-httpListenAddr=127.0.0.1:${port}`, "-loggerLevel=ERROR"],
    { stdio: "ignore" },
  );
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const up = await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 100) throw new Error("victoria-metrics did not start");
      await sleep(100);
    }
    let body: string[] = [];
    const send = async () => {
      const res = await fetch(`${base}/api/v2/write?precision=ms`, {
        method: "POST",
        body: body.join("\n"),
      });
      if (!res.ok) throw new Error(`victoria-metrics answered ${res.status}`);
      body = [];
    };
    for (const lines of lineProtocol()) {
      body.push(lines);
      if (body.length >= 20) await send();
    }
    if (body.length > 0) await send();
    // Samples wait in memory for a second or so before they are written into parts.
    await sleep(2000);
    await fetch(`${base}/internal/force_flush`);
    await sleep(2000);
    await fetch(`${base}/internal/force_merge`);
    await sleep(5000);
    return await dirBytes(data);
  } finally {
    child.kill("SIGINT");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}

const dir = await mkdtemp(join(tmpdir(), "storage-size-"));
try {
  console.log(
    `${total.toLocaleString("en")} samples: ${SERIES} series × ${PER_SERIES} samples, every ${STEP_MS / 1000} s\n`,
  );
  const sqlite = await sqliteNew(dir);
  const sqliteV1 = sqliteOld(dir);
  const postgres = await postgresNew();
  const postgresV1 = await postgresOld();
  const vm = await victoriaMetrics(dir);
  console.log("| store | bytes | bytes per sample | schema version 1: bytes per sample |");
  console.log("| --- | --: | --: | --: |");
  console.log(`| SQLite | ${sqlite.bytes} | ${perSample(sqlite.bytes)} | ${perSample(sqliteV1)} |`);
  console.log(
    `| PostgreSQL | ${postgres.bytes} | ${perSample(postgres.bytes)} (heap ${perSample(postgres.heap)}) | ${perSample(postgresV1)} |`,
  );
  if (vm !== undefined) console.log(`| VictoriaMetrics | ${vm} | ${perSample(vm)} | |`);
  else console.log("| VictoriaMetrics | not measured: no .tools/victoria-metrics | | |");
  console.log(
    `\nstore inserts (5,000 rows a transaction): SQLite ${Math.round(total / sqlite.seconds)} samples/s, PostgreSQL ${Math.round(total / postgres.seconds)} samples/s`,
  );
  console.log(`\nSQLite, the last hour of one series:\n${sqlite.plan}`);
  console.log(`\nPostgreSQL, the last hour of one series:\n${postgres.plan}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
