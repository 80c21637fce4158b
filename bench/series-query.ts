/**
 * The last hour of one series out of 10,000 series × 1,000 samples, through the `metrics` view:
 * its plan (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)) and its time,
 * the first run and the median of the runs after. SQLite in a temp dir, then a PostgreSQL
 * database of its own, dropped at the end.
 *
 * The store's own insert makes the series and the first and last samples of each (and so
 * PostgreSQL's day partitions); the samples between are filled with one INSERT … SELECT, in
 * time order for PostgreSQL so that its heap holds them as the worker's batches would (each
 * series' samples a few to a page, among all the others'), series after series for SQLite, whose
 * WITHOUT ROWID table keeps them clustered by series and time whatever the order (its pages end
 * up fuller than the worker's batches leave them).
 *
 * Run: `node bench/series-query.ts` (QUERY_SERIES, QUERY_SAMPLES_PER_SERIES to change the
 * shape; PostgreSQL as for the tests).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { endPool } from "../worker/end-pool.ts";
import type { MetricStore } from "../worker/metric-store.ts";
import { rowsOfEnvelope } from "../worker/metric-rows.ts";
import { openPostgresStore } from "../worker/postgres-store.ts";
import { openSqliteStore } from "../worker/sqlite-store.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import { machineLine, postgresDatabase } from "./store-bench.ts";
import { telegrafEnvelopes } from "./telegraf-samples.ts";

const SERIES = Number(process.env["QUERY_SERIES"] ?? 10_000);
const PER_SERIES = Number(process.env["QUERY_SAMPLES_PER_SERIES"] ?? 1000);
const STEP_MS = 10_000;
const END = Date.now() - 60_000;
const START = END - (PER_SERIES - 1) * STEP_MS;
const RUNS = 21;
const HOST = `host-${Math.floor(SERIES / 4)}`;
const SERIES_WHERE = `name = 'cpu_usage_user' AND tags = '{"host":"${HOST}","cpu":"cpu-total"}'`;
/** A deterministic value with two decimals from a series id and a sample's index. */
const VALUE = "((series_id * 7 + i * 13) % 10000) / 100.0";

/** The first and the last time step of every series, through the store. */
async function seriesAndEnds(store: MetricStore): Promise<void> {
  const shape = { series: SERIES, perSeries: PER_SERIES, startMs: START, stepMs: STEP_MS };
  const steps = [...telegrafEnvelopes(shape, END)];
  for (const envelope of [steps[0], steps.at(-1)]) {
    if (envelope !== undefined) await store.insert(rowsOfEnvelope(envelope));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const ms = (x: number) => Math.round(x * 100) / 100;

function timings(run: () => number): { first: number; median: number; rows: number } {
  const times: number[] = [];
  let rows = 0;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    rows = run();
    times.push(performance.now() - t);
  }
  return { first: ms(times[0] ?? NaN), median: ms(median(times.slice(1))), rows };
}

async function sqlite(dir: string): Promise<void> {
  const path = join(dir, "store.db");
  const store = openSqliteStore(path);
  const filling = performance.now();
  await seriesAndEnds(store);
  await store.close();
  const db = new DatabaseSync(path);
  try {
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${PER_SERIES - 2})
      INSERT INTO samples (series_id, time_ms, value)
      SELECT series_id, ${START} + i * ${STEP_MS}, ${VALUE}
      FROM (SELECT id AS series_id FROM series) CROSS JOIN n`);
    db.exec("ANALYZE");
    const count = db.prepare("SELECT count(*) AS n FROM samples").get() as { n: number };
    const filled = Math.round((performance.now() - filling) / 1000);
    const query = `SELECT time_ms, value FROM metrics\nWHERE ${SERIES_WHERE}\n  AND time_ms >= ?`;
    const hourAgo = Date.now() - 3_600_000;
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${query}`).all(hourAgo) as { detail: string }[];
    const statement = db.prepare(query);
    const t = timings(() => statement.all(hourAgo).length);
    console.log(
      `\nSQLite: ${count.n} samples of ${SERIES} series (filled in ${filled} s); the last hour of one series: ${t.rows} rows, first run ${t.first} ms, median of ${RUNS - 1} more ${t.median} ms (goal < 50 ms: ${t.median < 50 && t.first < 50 ? "met" : "missed"})`,
    );
    console.log(
      `\n${query.replace("?", String(hourAgo))}\n${plan.map((r) => r.detail).join("\n")}`,
    );
  } finally {
    db.close();
  }
}

async function postgres(): Promise<void> {
  const database = await createTestDatabase();
  try {
    const store = await openPostgresStore(postgresDatabase(database.url));
    const filling = performance.now();
    await seriesAndEnds(store);
    await store.close();
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      // Room to sort the samples into time order in memory.
      await pool.query("SET work_mem = '512MB'");
      await pool.query(`INSERT INTO samples (series_id, time, value)
        SELECT series_id, timestamptz 'epoch' + (${START} + i * ${STEP_MS}) * interval '1 millisecond', ${VALUE}
        FROM generate_series(1, ${PER_SERIES - 2}) AS i, (SELECT id AS series_id FROM series) s
        ORDER BY i, series_id`);
      await pool.query("VACUUM ANALYZE");
      const count = await pool.query<{ n: string }>("SELECT count(*)::text AS n FROM samples");
      const filled = Math.round((performance.now() - filling) / 1000);
      const query = `SELECT time, value FROM metrics\nWHERE ${SERIES_WHERE}\n  AND time >= now() - interval '1 hour'`;
      const plan = await pool.query<{ "QUERY PLAN": string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${query}`,
      );
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        rows = (await pool.query(query)).rowCount ?? 0;
        times.push(performance.now() - t);
      }
      const first = ms(times[0] ?? NaN);
      const med = ms(median(times.slice(1)));
      console.log(
        `\nPostgreSQL: ${count.rows[0]?.n} samples of ${SERIES} series (filled in ${filled} s); the last hour of one series: ${rows} rows, first run ${first} ms (after EXPLAIN ANALYZE), median of ${RUNS - 1} more ${med} ms, as the client sees them (goal < 50 ms: ${med < 50 && first < 50 ? "met" : "missed"})`,
      );
      console.log(
        `\nEXPLAIN (ANALYZE, BUFFERS, COSTS OFF)\n${query}\n${plan.rows.map((r) => r["QUERY PLAN"]).join("\n")}`,
      );
    } finally {
      await endPool(pool);
    }
  } finally {
    await database.drop();
  }
}

console.log(machineLine());
const dir = await mkdtemp(join(tmpdir(), "series-query-"));
try {
  await sqlite(dir);
} finally {
  await rm(dir, { recursive: true, force: true });
}
await postgres();
