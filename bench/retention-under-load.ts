/**
 * Retention under load: RETENTION=1d over samples spread across 3 days, one enforcement
 * (`enforceRetention`, as the worker's retention runs it) while a writer keeps inserting fresh
 * samples in the worker's batches through the same store; then what is left before the cutoff,
 * and the writer's throughput while the enforcement ran against the windows before and after.
 * SQLite in a temp dir, then a PostgreSQL database of its own, dropped at the end.
 *
 * Run: `node bench/retention-under-load.ts` (RETENTION_STEP_S, default 120: one sample of each of
 * 100 series every 120 s over 3 days, 216,000 samples; PostgreSQL as for the tests).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate, setTimeout as sleep } from "node:timers/promises";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { endPool } from "../worker/end-pool.ts";
import type { MetricStore } from "../worker/metric-store.ts";
import { rowsOfEnvelope } from "../worker/metric-rows.ts";
import { openPostgresStore } from "../worker/postgres-store.ts";
import { openSqliteStore } from "../worker/sqlite-store.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import { machineLine, perSecond, postgresDatabase, workerBatches } from "./store-bench.ts";
import { telegrafEnvelopes } from "./telegraf-samples.ts";

const DAY_MS = 86_400_000;
const RETENTION_MS = DAY_MS;
const SERIES = 100;
const STEP_MS = Number(process.env["RETENTION_STEP_S"] ?? 120) * 1000;
/** How long the writer runs alone before the enforcement and after it, each. */
const WINDOW_MS = 5000;
const NOW = Date.now();
const FILL_END = NOW - 10 * 60_000;
const perSeries = Math.floor((3 * DAY_MS - 10 * 60_000) / STEP_MS);
const fill = {
  series: SERIES,
  perSeries,
  startMs: FILL_END - (perSeries - 1) * STEP_MS,
  stepMs: STEP_MS,
};
const cutoffMs = NOW - RETENTION_MS;

interface Batch {
  start: number;
  end: number;
  samples: number;
}

async function fillStore(store: MetricStore): Promise<number> {
  let added = 0;
  for (const batch of workerBatches(telegrafEnvelopes(fill, FILL_END, "fill:"))) {
    added += await store.insert(batch.flatMap(rowsOfEnvelope));
  }
  return added;
}

/**
 * A writer inserting fresh samples (a millisecond apart, after the fill) batch after batch
 * until `stop` resolves; every batch's interval.
 */
async function writer(store: MetricStore, stop: Promise<void>): Promise<Batch[]> {
  const state = { stopped: false };
  void stop.then(() => (state.stopped = true));
  const fresh = { series: SERIES, perSeries: 10_000_000, startMs: FILL_END + 1, stepMs: 1 };
  const done: Batch[] = [];
  for (const batch of workerBatches(telegrafEnvelopes(fresh, Date.now(), "w:"))) {
    if (state.stopped) break;
    const start = performance.now();
    const samples = await store.insert(batch.flatMap(rowsOfEnvelope));
    done.push({ start, end: performance.now(), samples });
    // The worker's next batch arrives from the network: let timers and the retention run.
    await setImmediate();
  }
  return done;
}

/** Samples a second of the batches, and the slowest batch's milliseconds. */
function rate(batches: readonly Batch[]): { perSecond: number; maxMs: number; batches: number } {
  const samples = batches.reduce((n, b) => n + b.samples, 0);
  const ms = batches.reduce((n, b) => n + (b.end - b.start), 0);
  const maxMs = Math.round(Math.max(...batches.map((b) => b.end - b.start)));
  return { perSecond: perSecond(samples, ms), maxMs, batches: batches.length };
}

/** The writer alone for a window, then with one enforcement, then alone for a window. */
async function underLoad(
  label: string,
  store: MetricStore,
  count: (before: number) => Promise<number>,
): Promise<void> {
  const filled = await fillStore(store);
  const expiredBefore = await count(cutoffMs);
  let finish = () => {};
  const stop = new Promise<void>((resolve) => (finish = resolve));
  const writing = writer(store, stop);
  await sleep(1000 + WINDOW_MS); // the first second warms the writer up
  const from = performance.now();
  const deleted = await (store.enforceRetention as (cutoff: number) => Promise<number>)(cutoffMs);
  const to = performance.now();
  await sleep(WINDOW_MS);
  finish();
  const batches = await writing;
  const alone = batches.filter(
    (b) =>
      (b.end <= from && b.start >= from - WINDOW_MS) || (b.start >= to && b.end <= to + WINDOW_MS),
  );
  const during = batches.filter((b) => b.end > from && b.start < to);
  const a = rate(alone);
  const d = rate(during);
  const ratio = Math.round((d.perSecond / a.perSecond) * 100) / 100;
  const left = await count(cutoffMs);
  const leftBeforeDay = await count(Math.floor(cutoffMs / DAY_MS) * DAY_MS);
  console.log(
    `| ${label} | ${filled} | ${expiredBefore} | ${deleted} | ${left} | ${leftBeforeDay} | ${Math.round(to - from)} ms | ${a.perSecond} (${a.batches} batches, slowest ${a.maxMs} ms) | ${d.perSecond} (${d.batches} batches, slowest ${d.maxMs} ms) | ${ratio}× | ${ratio >= 0.8 ? "met" : "missed"} |`,
  );
}

console.log(machineLine());
console.log(
  `RETENTION=1d; ${SERIES} series, a sample every ${STEP_MS / 1000} s from ${new Date(fill.startMs).toISOString()} to ${new Date(FILL_END).toISOString()}; cutoff ${new Date(cutoffMs).toISOString()}\n`,
);
console.log(
  "| store | samples filled | before the cutoff | enforcement deleted | left before the cutoff | left before the cutoff's day | enforcement took | writer alone, samples/s | writer during the enforcement, samples/s | ratio | goal ≥ 0.8 |",
);
console.log("| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |");

const dir = await mkdtemp(join(tmpdir(), "retention-under-load-"));
try {
  const path = join(dir, "store.db");
  const store = openSqliteStore(path);
  const reader = new DatabaseSync(path);
  try {
    await underLoad("SQLite", store, (before) => {
      const row = reader.prepare("SELECT count(*) AS n FROM samples WHERE time_ms < ?").get(before);
      return Promise.resolve((row as { n: number }).n);
    });
  } finally {
    reader.close();
    await store.close();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const database = await createTestDatabase();
try {
  const store = await openPostgresStore(postgresDatabase(database.url));
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  try {
    await underLoad("PostgreSQL", store, async (before) => {
      const { rows } = await pool.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM samples WHERE time < $1",
        [new Date(before).toISOString()],
      );
      return Number(rows[0]?.n ?? NaN);
    });
  } finally {
    await store.close();
    await endPool(pool);
  }
} finally {
  await database.drop();
}
