/**
 * Which way of inserting a batch of rows into PostgreSQL is fastest for the worker?
 * Run: `node bench/pg-insert-methods.ts` (PostgreSQL as for the tests: 127.0.0.1:5432 as user
 * postgres, or TEST_PG_URL). It creates a scratch database and drops it at the end.
 * Method (c) needs pg-copy-streams, which the project does not depend on: to measure it too,
 * `npm install --no-save pg-copy-streams` first.
 *
 * Each method writes to its own copy of the store's `metrics` table; the methods take turns in
 * every repetition, so that the tables grow alike and any drift of the machine hits them all.
 * Figures are for new rows, and for the same batch once more (a redelivery: nothing added).
 */
import type { Writable } from "node:stream";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import type { Envelope } from "../shared/envelope.ts";
import { endPool } from "../worker/end-pool.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import { rowsOfEnvelope, type MetricRow } from "../worker/metric-rows.ts";
import { V1_POSTGRES_DDL } from "../test/helpers/v1-schema.ts";

const SIZES = [
  { rows: 500, repetitions: 40 },
  { rows: 5000, repetitions: 20 },
];
const WARM_UP = 3;
const COLUMNS = "dedup_key, name, value, time, received_at, tags, metric, msg_id";
/** PostgreSQL's limit on the parameters of one statement, over 8 per row. */
const MAX_ROWS_PER_VALUES = Math.floor(65_535 / 8);

type Method = (client: pg.PoolClient, table: string, rows: readonly MetricRow[]) => Promise<number>;

// The methods are compared on schema version 1's wide rows, as they were measured then.
const paramsOf = (r: MetricRow) => [
  `${r.series}/${r.timeMs}`,
  r.name,
  r.value,
  // As ISO text, which PostgreSQL reads exactly: to_timestamp(ms / 1000) is off by microseconds
  // in later centuries, as a float8 of seconds cannot hold them all.
  new Date(r.timeMs).toISOString(),
  new Date(r.receivedMs).toISOString(),
  r.tags,
  JSON.stringify({ name: r.name, value: r.value, tags: JSON.parse(r.tags) as unknown }),
  r.msgId,
];
const columnsOf = (rows: readonly MetricRow[]) =>
  [0, 1, 2, 3, 4, 5, 6, 7].map((c) => rows.map((r) => paramsOf(r)[c]));

/** (a) `INSERT … VALUES (…), (…)`, in statements of at most 65,535 parameters, in a transaction. */
const multiRowValues: Method = async (client, table, rows) => {
  let added = 0;
  await client.query("BEGIN");
  for (let start = 0; start < rows.length; start += MAX_ROWS_PER_VALUES) {
    const chunk = rows.slice(start, start + MAX_ROWS_PER_VALUES);
    const tuples = chunk.map((_, i) => {
      const [d, n, v, t, r, tg, m, id] = [1, 2, 3, 4, 5, 6, 7, 8].map((k) => `$${i * 8 + k}`);
      return `(${d}, ${n}, ${v}::float8, ${t}::timestamptz, ${r}::timestamptz, ${tg}::jsonb, ${m}::jsonb, ${id})`;
    });
    const result = await client.query(
      `INSERT INTO ${table} (${COLUMNS}) VALUES ${tuples.join(", ")}
       ON CONFLICT (dedup_key) DO NOTHING`,
      chunk.flatMap(paramsOf),
    );
    added += result.rowCount ?? 0;
  }
  await client.query("COMMIT");
  return added;
};

/** (b) One `INSERT … SELECT FROM unnest(<one array per column>)`: 8 parameters, one statement. */
const unnestJsonbArrays: Method = async (client, table, rows) => {
  const result = await client.query(
    `INSERT INTO ${table} (${COLUMNS})
     SELECT d, n, v, t, r, tg, m, id
     FROM unnest($1::text[], $2::text[], $3::float8[], $4::timestamptz[], $5::timestamptz[], $6::jsonb[],
                 $7::jsonb[], $8::text[]) AS u(d, n, v, t, r, tg, m, id)
     ON CONFLICT (dedup_key) DO NOTHING`,
    columnsOf(rows),
  );
  return result.rowCount ?? 0;
};

/** (b′) As (b), but tags and metric as text[], each cast to jsonb. */
const unnestTextArrays: Method = async (client, table, rows) => {
  const result = await client.query(
    `INSERT INTO ${table} (${COLUMNS})
     SELECT d, n, v, t, r, tg::jsonb, m::jsonb, id
     FROM unnest($1::text[], $2::text[], $3::float8[], $4::timestamptz[], $5::timestamptz[], $6::text[],
                 $7::text[], $8::text[]) AS u(d, n, v, t, r, tg, m, id)
     ON CONFLICT (dedup_key) DO NOTHING`,
    columnsOf(rows),
  );
  return result.rowCount ?? 0;
};

/** (d) The rows as one JSON array, one parameter, read by `json_to_recordset`: the store's. */
const jsonRecordset: Method = async (client, table, rows) => {
  const json = JSON.stringify(
    rows.map((r) => {
      const [dedup_key, name, value, time, received_at, tags, metric, msg_id] = paramsOf(r);
      return { dedup_key, name, value, time, received_at, tags, metric, msg_id };
    }),
  );
  const result = await client.query(
    `INSERT INTO ${table} (${COLUMNS})
     SELECT dedup_key, name, value, time, received_at, tags::jsonb, metric::jsonb, msg_id
     FROM json_to_recordset($1::json) AS r(dedup_key text, name text, value float8,
          time timestamptz, received_at timestamptz, tags text, metric text, msg_id text)
     ON CONFLICT (dedup_key) DO NOTHING`,
    [json],
  );
  return result.rowCount ?? 0;
};

type CopyFrom = (sql: string) => pg.Submittable & Writable;

/** (c) COPY (CSV) into a temporary table, then `INSERT … SELECT` from it, in a transaction. */
const copyThenInsert =
  (copyFrom: CopyFrom): Method =>
  async (client, table, rows) => {
    await client.query("BEGIN");
    await client.query(
      `CREATE TEMP TABLE incoming (d text, n text, v float8, t timestamptz, r timestamptz,
         tg jsonb, m jsonb, id text) ON COMMIT DROP`,
    );
    const csv = rows.map((r) => paramsOf(r).map(csvField).join(",")).join("\n");
    await pipeline(
      Readable.from([csv]),
      client.query(copyFrom("COPY incoming FROM STDIN (FORMAT csv)")),
    );
    const result = await client.query(
      `INSERT INTO ${table} (${COLUMNS})
       SELECT d, n, v, t, r, tg, m, id FROM incoming
       ON CONFLICT (dedup_key) DO NOTHING`,
    );
    await client.query("COMMIT");
    return result.rowCount ?? 0;
  };

/** An unquoted empty field is NULL in CSV; a quoted one is text. */
function csvField(value: string | number | null): string {
  if (value === null) return "";
  if (typeof value === "number") return String(value);
  return `"${value.replaceAll('"', '""')}"`;
}

/** pg-copy-streams' `from`, when it is installed. */
async function loadCopyFrom(): Promise<CopyFrom | undefined> {
  const name = "pg-copy-streams"; // a variable: the project itself does not depend on it
  try {
    return ((await import(name)) as { from: CopyFrom }).from;
  } catch {
    console.log("(c) not measured: `npm install --no-save pg-copy-streams` to measure it\n");
    return undefined;
  }
}

const NAMES = ["http.server.duration", "cpu.usage", "memory.rss", "queue.depth", "disk.io.read"];
let messages = 0;

/** Rows as the worker makes them: messages of 10 metrics, with names, tags and extra fields. */
function makeRows(count: number): MetricRow[] {
  const rows: MetricRow[] = [];
  while (rows.length < count) {
    const id = `bench-${messages++}-${Math.random().toString(36).slice(2, 10)}`;
    const receivedAt = Date.now();
    const envelope: Envelope = {
      key: "message",
      id,
      receivedAt,
      metrics: Array.from({ length: Math.min(10, count - rows.length) }, (_, i) => ({
        name: NAMES[i % NAMES.length] ?? "x",
        value: Math.random() * 1000,
        timestamp: new Date(receivedAt - i * 1000).toISOString(),
        tags: { host: `web-${i % 7}`, region: "eu-west-1", service: "checkout", env: "prod" },
        unit: "ms",
        attributes: { route: "/api/v1/orders/{id}", method: "POST", status: 200 },
      })),
    };
    rows.push(...rowsOfEnvelope(envelope));
  }
  return rows;
}

const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const perSecond = (rows: number, ms: number) => Math.round((rows / ms) * 1000).toLocaleString("en");

async function main(): Promise<void> {
  const copyFrom = await loadCopyFrom();
  const methods = [
    { name: "(a) multi-row VALUES", table: "metrics_values", run: multiRowValues },
    { name: "(b) unnest, jsonb[]", table: "metrics_unnest_jsonb", run: unnestJsonbArrays },
    { name: "(b′) unnest, text[]::jsonb", table: "metrics_unnest_text", run: unnestTextArrays },
    ...(copyFrom
      ? [{ name: "(c) COPY + INSERT SELECT", table: "metrics_copy", run: copyThenInsert(copyFrom) }]
      : []),
    { name: "(d) json_to_recordset", table: "metrics_json", run: jsonRecordset },
  ];

  const database = await createTestDatabase();
  // Interrupted, it still drops its database.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void database.drop().finally(() => process.exit(130));
    });
  }
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  try {
    // Schema version 1's wide table, as these methods were measured on; each method gets a copy
    // with the same indexes.
    await pool.query(V1_POSTGRES_DDL);
    for (const m of methods) {
      await pool.query(`CREATE TABLE ${m.table} (LIKE metrics INCLUDING ALL)`);
    }

    const client = await pool.connect();
    const version = (await client.query<{ v: string }>("SELECT version() AS v")).rows[0]?.v;
    console.log(`Node ${process.version}; ${version ?? "?"}\n`);
    console.log(
      "| rows per batch | method | new rows: median ms | rows/s at median | rows/s, slowest–fastest | redelivered: median ms | rows/s at median |",
    );
    console.log("| --: | --- | --: | --: | --: | --: | --: |");
    for (const size of SIZES) {
      const fresh = new Map(methods.map((m) => [m.name, [] as number[]]));
      const again = new Map(methods.map((m) => [m.name, [] as number[]]));
      for (let rep = 0; rep < WARM_UP + size.repetitions; rep++) {
        // Each repetition starts with another method, so that none always follows the same one.
        for (let k = 0; k < methods.length; k++) {
          const m = methods[(rep + k) % methods.length];
          if (m === undefined) continue;
          const rows = makeRows(size.rows);
          let start = performance.now();
          const added = await m.run(client, m.table, rows);
          const freshMs = performance.now() - start;
          start = performance.now();
          const addedAgain = await m.run(client, m.table, rows);
          const againMs = performance.now() - start;
          if (added !== rows.length || addedAgain !== 0) {
            throw new Error(`${m.name}: added ${added}, then ${addedAgain}, of ${rows.length}`);
          }
          if (rep >= WARM_UP) {
            fresh.get(m.name)?.push(freshMs);
            again.get(m.name)?.push(againMs);
          }
        }
      }
      for (const m of methods) {
        const f = fresh.get(m.name) ?? [];
        const a = again.get(m.name) ?? [];
        const cells = [
          size.rows.toLocaleString("en"),
          m.name,
          median(f).toFixed(1),
          perSecond(size.rows, median(f)),
          `${perSecond(size.rows, Math.max(...f))}–${perSecond(size.rows, Math.min(...f))}`,
          median(a).toFixed(1),
          perSecond(size.rows, median(a)),
        ];
        console.log(`| ${cells.join(" | ")} |`);
      }
    }
    client.release();
  } finally {
    await endPool(pool);
    await database.drop();
  }
}

await main();
