/**
 * Worker throughput into the current schema (series and samples) against schema version 1's
 * wide rows, in the same run: the same samples, cut into the batches a worker takes from a
 * backlog, each batch made into rows and stored in one transaction, the two schemas taking
 * turns a chunk at a time so that both databases grow alike and any drift of the machine hits
 * both. SQLite files in a temp dir, then a PostgreSQL database each, dropped at the end.
 *
 * Run: `node bench/schema-throughput.ts` (THROUGHPUT_SAMPLES, default 200,000: InfluxDB line
 * protocol's shape, 50 hosts × 2 fields a request; WORKER_BATCH_SIZE as the worker reads it;
 * PostgreSQL as for the tests).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Envelope } from "../shared/envelope.ts";
import { endPool } from "../worker/end-pool.ts";
import type { MetricStore } from "../worker/metric-store.ts";
import { rowsOfEnvelope } from "../worker/metric-rows.ts";
import { openPostgresStore } from "../worker/postgres-store.ts";
import { openSqliteStore } from "../worker/sqlite-store.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import {
  insertV1Postgres,
  openV1SqliteWriter,
  V1_POSTGRES_DDL,
} from "../test/helpers/v1-schema.ts";
import {
  machineLine,
  perSecond,
  postgresDatabase,
  WORKER_BATCH_SIZE,
  workerBatches,
} from "./store-bench.ts";
import { telegrafEnvelopes } from "./telegraf-samples.ts";

const SERIES = 100; // 50 hosts × 2 fields
const SAMPLES = Number(process.env["THROUGHPUT_SAMPLES"] ?? 200_000);
/** Turns each schema takes: chunks of the batches, the new schema first in every other one. */
const TURNS = 8;
const STEP_MS = 10_000;
const END = Date.now() - 60_000;
const perSeries = Math.ceil(SAMPLES / SERIES);
const shape = {
  series: SERIES,
  perSeries,
  startMs: END - (perSeries - 1) * STEP_MS,
  stepMs: STEP_MS,
};

type Insert = (batch: readonly Envelope[]) => Promise<number>;
interface Tally {
  ms: number;
  added: number;
}

const batches = [...workerBatches(telegrafEnvelopes(shape, END))];
const total = batches.reduce((n, b) => n + b.reduce((m, e) => m + e.metrics.length, 0), 0);

/** Inserts every batch through both, a chunk of batches a turn; the time of each side. */
async function alternate(current: Insert, v1: Insert): Promise<{ current: Tally; v1: Tally }> {
  const tally = { current: { ms: 0, added: 0 }, v1: { ms: 0, added: 0 } };
  const chunk = Math.ceil(batches.length / TURNS);
  for (let turn = 0; turn < TURNS; turn++) {
    const mine = batches.slice(turn * chunk, (turn + 1) * chunk);
    const order = turn % 2 === 0 ? (["current", "v1"] as const) : (["v1", "current"] as const);
    for (const side of order) {
      const insert = side === "current" ? current : v1;
      const started = performance.now();
      for (const batch of mine) tally[side].added += await insert(batch);
      tally[side].ms += performance.now() - started;
    }
  }
  return tally;
}

const viaStore = (store: MetricStore) => (batch: readonly Envelope[]) =>
  store.insert(batch.flatMap(rowsOfEnvelope));

function report(label: string, t: { current: Tally; v1: Tally }): void {
  const current = perSecond(t.current.added, t.current.ms);
  const v1 = perSecond(t.v1.added, t.v1.ms);
  const ratio = Math.round((current / v1) * 100) / 100;
  console.log(
    `| ${label} | ${current} | ${v1} | ${ratio}× | ${ratio >= 1 ? "met" : "missed"} | ${t.current.added} / ${t.v1.added} |`,
  );
}

console.log(machineLine());
console.log(
  `${total} samples (${SERIES} series), ${batches.length} batches (WORKER_BATCH_SIZE ${WORKER_BATCH_SIZE}), ${TURNS} turns each\n`,
);
console.log(
  "| store | current schema, samples/s | version 1, samples/s | ratio | goal ≥ 1 | rows added |",
);
console.log("| --- | --: | --: | --: | --- | --: |");

const dir = await mkdtemp(join(tmpdir(), "schema-throughput-"));
try {
  const store = openSqliteStore(join(dir, "current.db"));
  const v1 = openV1SqliteWriter(join(dir, "v1.db"));
  try {
    report("SQLite", await alternate(viaStore(store), (b) => Promise.resolve(v1.insert(b))));
  } finally {
    await store.close();
    v1.close();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const current = await createTestDatabase();
const old = await createTestDatabase();
try {
  const store = await openPostgresStore(postgresDatabase(current.url));
  const pool = new pg.Pool({ connectionString: old.url, max: 1 });
  try {
    await pool.query(V1_POSTGRES_DDL);
    report("PostgreSQL", await alternate(viaStore(store), (b) => insertV1Postgres(pool, b)));
  } finally {
    await store.close();
    await endPool(pool);
  }
} finally {
  await current.drop();
  await old.drop();
}
