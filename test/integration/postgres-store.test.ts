import { createServer, type Server } from "node:net";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../shared/config.ts";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../shared/envelope.ts";
import { endPool } from "../../worker/end-pool.ts";
import { rowsOfEnvelope, type MetricRow } from "../../worker/metric-rows.ts";
import type { MetricStore, MetricStoreOptions } from "../../worker/metric-store.ts";
import { openStore } from "../../worker/open-store.ts";
import { openPostgresStore } from "../../worker/postgres-store.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { startTcpProxy } from "../helpers/tcp-proxy.ts";
import { fillV1Postgres, v1Envelopes } from "../helpers/v1-schema.ts";
import { waitFor } from "../helpers/wait.ts";

const RECEIVED_AT = 1_714_566_896_789;

let db: TestDatabase;
/** A connection of the test's own, reading what the stores wrote as another client would. */
let reader: pg.Pool;
const opened: MetricStore[] = [];
const extraDatabases: TestDatabase[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  reader = new pg.Pool({ connectionString: db.url, max: 2 });
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  for (const server of servers.splice(0)) await closeServer(server);
  for (const extra of extraDatabases.splice(0)) await extra.drop();
});

afterAll(async () => {
  // Both are unset when beforeAll failed (no PostgreSQL): its error is the one to read.
  if ((reader as pg.Pool | undefined) !== undefined) await endPool(reader);
  await (db as TestDatabase | undefined)?.drop();
});

function settings(url: string, more: Partial<Config["database"]> = {}): Config["database"] {
  return {
    url,
    pgPoolMax: 2,
    pgStatementTimeoutMs: 10_000,
    pgSsl: "disable",
    pgSslCa: undefined,
    retentionMs: undefined,
    ...more,
  };
}

async function open(
  database: Config["database"] = settings(db.url),
  options: MetricStoreOptions = {},
): Promise<MetricStore> {
  const store = await openPostgresStore(database, options);
  opened.push(store);
  return store;
}

async function freshDatabase(): Promise<TestDatabase> {
  const extra = await createTestDatabase();
  extraDatabases.push(extra);
  return extra;
}

/** The rows a worker would make of a message published with these metrics. */
function rowsOf(id: string, metrics: unknown[]): MetricRow[] {
  const data = encodeEnvelope({
    key: "message",
    id,
    receivedAt: RECEIVED_AT,
    metrics: metrics as Envelope["metrics"],
  });
  const decoded = decodeEnvelope(data);
  if (!decoded.ok) throw new Error(decoded.message);
  return rowsOfEnvelope(decoded.envelope);
}

/** `count` metrics named `id`, each a series of its own (tag `i`), at the receive time. */
const plainRows = (id: string, count: number) =>
  rowsOf(
    id,
    Array.from({ length: count }, (_, i) => ({ value: i, name: id, tags: { i: String(i) } })),
  );

async function query<T extends pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
  pool: pg.Pool = reader,
) {
  return (await pool.query<T>(sql, params)).rows;
}

/** How many rows, and how many distinct identities, the metrics named `prefix…` have. */
async function counts(prefix: string): Promise<{ rows: number; keys: number }> {
  const [row] = await query<{ rows: number; keys: number }>(
    `SELECT count(*)::int AS rows, count(DISTINCT (series_id, time))::int AS keys
     FROM metrics WHERE name LIKE $1`,
    [`${prefix}%`],
  );
  return row ?? { rows: -1, keys: -1 };
}

function listen(server: Server, port = 0): Promise<number> {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : -1);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    // Resolves even when it was closed already.
    server.close(() => {
      resolve();
    });
  });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  servers.splice(servers.indexOf(server), 1);
  await closeServer(server);
  return port;
}

/** `url` with its host and port replaced. */
function via(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

/** A TCP proxy to the test's PostgreSQL server, which can be cut (see helpers/tcp-proxy.ts). */
function startProxy() {
  const target = new URL(db.url);
  return startTcpProxy(target.hostname || "127.0.0.1", Number(target.port || 5432));
}

describe("the PostgreSQL store", () => {
  it("is what openStore opens for a postgres:// or postgresql:// URL", async () => {
    for (const [i, url] of [db.url, db.url.replace(/^postgres:/, "postgresql:")].entries()) {
      const store = await openStore(settings(url));
      opened.push(store);
      expect(await store.insert(plainRows(`open-${i}`, 2))).toBe(2);
    }
    expect(await counts("open-")).toEqual({ rows: 4, keys: 4 });
  });

  it("creates series, samples partitioned by time, the metrics view and the schema's version", async () => {
    await open();
    const columnsOf = async (table: string) =>
      (
        await query<{ column_name: string; data_type: string; is_nullable: string }>(
          `SELECT column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_name = $1 ORDER BY ordinal_position`,
          [table],
        )
      ).map((c) => [c.column_name, c.data_type, c.is_nullable]);
    expect(await columnsOf("series")).toEqual([
      ["id", "integer", "NO"],
      ["key", "text", "NO"],
      ["name", "text", "YES"],
      ["tags", "jsonb", "NO"],
      ["attributes", "jsonb", "YES"],
    ]);
    expect(await columnsOf("samples")).toEqual([
      ["series_id", "integer", "NO"],
      ["time", "timestamp with time zone", "NO"],
      ["value", "double precision", "NO"],
      ["extra", "jsonb", "YES"],
    ]);
    expect((await columnsOf("metrics")).map(([name]) => name)).toEqual([
      "name",
      "value",
      "tags",
      "time",
      "series_id",
      "attributes",
      "extra",
    ]);
    const [partitioned] = await query<{ strategy: string }>(
      "SELECT partstrat AS strategy FROM pg_partitioned_table WHERE partrelid = 'samples'::regclass",
    );
    expect(partitioned).toEqual({ strategy: "r" });
    const indexes = await query<{ indexdef: string }>(
      "SELECT indexdef FROM pg_indexes WHERE tablename IN ('series', 'samples') ORDER BY indexname",
    );
    expect(indexes.map((i) => i.indexdef)).toEqual([
      'CREATE UNIQUE INDEX samples_pkey ON ONLY public.samples USING btree (series_id, "time")',
      "CREATE UNIQUE INDEX series_key_key ON public.series USING btree (key)",
      "CREATE INDEX series_name ON public.series USING btree (name)",
      "CREATE UNIQUE INDEX series_pkey ON public.series USING btree (id)",
    ]);
    expect(await query("SELECT version FROM schema_migrations ORDER BY version")).toEqual([
      { version: 1 },
      { version: 2 },
    ]);
  });

  it("stores each metric's series once, its time, value and other fields", async () => {
    const store = await open();
    // As JSON text, so that "__proto__" is a key like any other, as it is in a request.
    const sent = String.raw`[
      {"value": 1.5, "name": "fields", "tags": {"host": "a", "dc": "eu"},
       "timestamp": "2024-05-01T12:34:56.789+02:00", "unit": "%"},
      {"value": -2, "name": "fields", "tags": {"dc": "eu", "host": "a"}, "timestamp": 1700000000001},
      {"value": 0.30000000000000004, "name": "fields", "text": "a \"quote\", a \\ backslash, a tab\t, a newline\n, ünïcödé, 😀",
       "extra": {"__proto__": {"x": 1}, "list": [1, null, 2.5e-300, true], "empty": {}}}
    ]`;
    const metrics = JSON.parse(sent) as Record<string, unknown>[];
    expect(await store.insert(rowsOf("fields", metrics))).toBe(3);

    const stored = await query<Record<string, unknown>>(
      `SELECT name, value, tags, extra, series_id,
              (extract(epoch FROM time) * 1000000)::bigint::text AS time_us
       FROM metrics WHERE name = 'fields' ORDER BY time`,
    );
    const { text, extra } = metrics[2] ?? {};
    expect(stored).toEqual([
      {
        name: "fields",
        value: -2,
        tags: { host: "a", dc: "eu" },
        extra: null,
        series_id: stored[1]?.["series_id"],
        time_us: "1700000000001000",
      },
      {
        name: "fields",
        value: 1.5,
        tags: { host: "a", dc: "eu" },
        extra: { unit: "%" },
        series_id: stored[0]?.["series_id"],
        time_us: "1714559696789000",
      },
      {
        name: "fields",
        value: 0.30000000000000004,
        tags: {},
        extra: { text, extra },
        series_id: expect.any(Number) as number,
        time_us: `${RECEIVED_AT}000`,
      },
    ]);
    // Tags in another order are the same series.
    expect(await query("SELECT count(*)::int AS n FROM series WHERE name = 'fields'")).toEqual([
      { n: 2 },
    ]);
  });

  it("adds nothing when the same rows come again, and only the new ones of a mixed batch", async () => {
    const store = await open();
    const first = plainRows("again-a", 3);
    expect(await store.insert(first)).toBe(3);
    expect(await store.insert(first)).toBe(0);
    expect(await counts("again-a")).toEqual({ rows: 3, keys: 3 });

    const second = plainRows("again-b", 2);
    expect(await store.insert([...second, ...first])).toBe(2);
    // The same message twice in one batch (delivered again before its ack) adds it once.
    const third = plainRows("again-c", 2);
    expect(await store.insert([...third, ...third])).toBe(2);
    expect(await counts("again-")).toEqual({ rows: 7, keys: 7 });
    expect(await store.insert([])).toBe(0);
  });

  it("keys an agent's points by series and timestamp: a resent batch, however split, adds nothing", async () => {
    const store = await open();
    const points = Array.from({ length: 6 }, (_, i) => ({
      name: "agent_cpu",
      value: i,
      timestamp: `2026-11-27T10:00:00.00${i}Z`,
      tags: { host: "a", core: String(i % 2) },
    }));
    const seriesRows = (id: string, metrics: typeof points) =>
      rowsOfEnvelope({ key: "series", id, receivedAt: RECEIVED_AT, metrics });
    expect(await store.insert(seriesRows("agent-1", points))).toBe(6);
    // The same points again under other message ids, in other groupings and order, with other
    // values (the first stored stays), and a point sent twice in one batch.
    expect(await store.insert(seriesRows("agent-2", points.slice(0, 3).reverse()))).toBe(0);
    const changed = points.slice(3).map((p) => ({ ...p, value: p.value + 100 }));
    expect(await store.insert(seriesRows("agent-3", [...changed, ...changed]))).toBe(0);
    const [row] = await query<{ rows: number; values: number[] }>(
      `SELECT count(*)::int AS rows, array_agg(value ORDER BY value) AS values
       FROM metrics WHERE name = 'agent_cpu'`,
    );
    expect(row).toEqual({ rows: 6, values: [0, 1, 2, 3, 4, 5] });
  });

  it("keeps one row per key when two stores write the same rows at once", async () => {
    // Two stores are two pools, as two worker processes would have; one gets the rows in the
    // opposite order, as a redelivery to another worker may.
    const [a, b] = await Promise.all([open(), open()]);
    let added = 0;
    for (let round = 0; round < 10; round++) {
      const rows = Array.from({ length: 20 }, (_, m) => plainRows(`both-${round}-${m}`, 25)).flat();
      const [byA, byB] = await Promise.all([a.insert(rows), b.insert(rows.toReversed())]);
      expect(byA + byB).toBe(rows.length);
      added += byA + byB;
    }
    expect(added).toBe(5000);
    expect(await counts("both-")).toEqual({ rows: 5000, keys: 5000 });
  });

  it("migrates once, however often and however many workers open it at once", async () => {
    const fresh = await freshDatabase();
    const opening = await Promise.allSettled([1, 2, 3, 4].map(() => open(settings(fresh.url))));
    expect(opening.map((o) => o.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    expect(await opened[0]?.insert(plainRows("kept", 2))).toBe(2);
    for (const store of opened.splice(0)) await store.close();

    const again = await open(settings(fresh.url));
    expect(await again.insert(plainRows("kept", 2))).toBe(0);
    const other = new pg.Pool({ connectionString: fresh.url, max: 1 });
    try {
      expect(
        await query("SELECT version FROM schema_migrations ORDER BY version", [], other),
      ).toEqual([{ version: 1 }, { version: 2 }]);
      expect(await query("SELECT count(*)::int AS n FROM metrics", [], other)).toEqual([{ n: 2 }]);
    } finally {
      await endPool(other);
    }
  });

  it("migrates a version 1 database once, keeping every row, when several workers start on it", async () => {
    const fresh = await freshDatabase();
    const envelopes = v1Envelopes(1500);
    const v1Count = await fillV1Postgres(fresh.url, envelopes);
    expect(v1Count).toBe(1500 * 12 + 2);

    const stores = await Promise.all([1, 2, 3].map(() => open(settings(fresh.url))));
    const moved = stores.reduce((sum, s) => sum + (s.migrated?.rows ?? 0), 0);
    const collapsed = stores.reduce((sum, s) => sum + (s.migrated?.collapsed ?? 0), 0);
    expect(moved).toBe(v1Count);
    // The two metrics without timestamp of one series in one message are one sample now.
    expect(collapsed).toBe(1);
    const other = new pg.Pool({ connectionString: fresh.url, max: 1 });
    try {
      expect(await query("SELECT count(*)::int AS n FROM metrics", [], other)).toEqual([
        { n: v1Count - 1 },
      ]);
      expect(await query("SELECT to_regclass('metrics_v1') AS v1", [], other)).toEqual([
        { v1: null },
      ]);
      const [note] = await query<{ attributes: unknown; extra: unknown }>(
        "SELECT attributes, extra FROM metrics WHERE name = 'weather_note' ORDER BY time LIMIT 1",
        [],
        other,
      );
      expect(note).toEqual({
        attributes: {
          influx: { bucket: "home", measurement: "weather", field: "note", type: "string" },
        },
        extra: { influx: { text: "n0" } },
      });
      // Every sample of the old rows, with its series, time and value.
      const stored = await query<{ k: string | null }>(
        `SELECT name || '|' || tags::text || '|' || (extract(epoch FROM time) * 1000)::bigint
                || '|' || value AS k FROM metrics`,
        [],
        other,
      );
      const expected = new Set(
        envelopes
          .flatMap(rowsOfEnvelope)
          .filter((r) => r.name !== null)
          .map((r) => `${r.name}|${JSON.stringify(JSON.parse(r.tags))}|${r.timeMs}|${r.value}`),
      );
      const named = stored.map((r) => r.k).filter((k): k is string => k !== null);
      expect(named).toHaveLength(expected.size);
      expect(new Set(named.map((k) => k.replaceAll(": ", ":").replaceAll(", ", ",")))).toEqual(
        expected,
      );
    } finally {
      await endPool(other);
    }
    // Stored again, the old samples add nothing.
    expect(await stores[0]?.insert(envelopes.flatMap(rowsOfEnvelope))).toBe(0);
  });

  it("writes old and future samples into day partitions it makes, and drops whole expired days", async () => {
    const fresh = await freshDatabase();
    const [a, b] = await Promise.all([open(settings(fresh.url)), open(settings(fresh.url))]);
    const day = 86_400_000;
    const start = Date.UTC(2026, 10, 1);
    const at = (d: number) =>
      rowsOfEnvelope({
        key: "series",
        id: `d${d}`,
        receivedAt: start,
        metrics: Array.from({ length: 100 }, (_, i) => ({
          name: "daily",
          value: i,
          timestamp: start + d * day + i * 1000,
          tags: { d: String(d % 2) },
        })),
      });
    // Two workers meeting the same new days at once.
    const days = [-400, -2, -1, 0, 1, 30];
    const rows = days.flatMap(at);
    const [byA, byB] = await Promise.all([a.insert(rows), b.insert(rows.toReversed())]);
    expect(byA + byB).toBe(600);
    const other = new pg.Pool({ connectionString: fresh.url, max: 1 });
    try {
      const partitions = async () =>
        (
          await query<{ name: string }>(
            `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'samples'::regclass ORDER BY 1`,
            [],
            other,
          )
        ).map((p) => p.name);
      expect(await partitions()).toEqual([
        "samples_20250927",
        "samples_20261030",
        "samples_20261031",
        "samples_20261101",
        "samples_20261102",
        "samples_20261201",
      ]);
      // Never analyzed (PostgreSQL's estimate is -1): the dropped samples are counted.
      // Mid-day: the day that holds the cutoff stays whole, the days before it go.
      expect(await a.enforceRetention?.(start + day / 2)).toBe(300);
      expect(await partitions()).toEqual([
        "samples_20261101",
        "samples_20261102",
        "samples_20261201",
      ]);
      expect(await query("SELECT count(*)::int AS n FROM metrics", [], other)).toEqual([
        { n: 300 },
      ]);
      // The other worker still writes into the days that remain, and makes a dropped one again.
      expect(await b.insert([...at(1), ...at(2)])).toBe(100);
    } finally {
      await endPool(other);
    }
  });

  it("refuses a database whose schema is newer than the worker's", async () => {
    const fresh = await freshDatabase();
    await (await open(settings(fresh.url))).close();
    const other = new pg.Pool({ connectionString: fresh.url, max: 1 });
    try {
      await other.query("INSERT INTO schema_migrations (version) VALUES (3)");
    } finally {
      await endPool(other);
    }
    await expect(open(settings(fresh.url))).rejects.toThrow(
      "the database's schema (version 3) is newer than this worker's",
    );
  });

  it("cancels a statement that runs longer than the statement timeout", async () => {
    const store = await open(settings(db.url, { pgStatementTimeoutMs: 300 }));
    const blocker = await reader.connect();
    // A lock that makes every insert wait, as a long-running migration or a stuck writer would;
    // let go after 5 s, so that a store without the timeout fails this test instead of hanging.
    await blocker.query("BEGIN");
    await blocker.query("LOCK TABLE samples IN SHARE MODE");
    const unlock = setTimeout(() => void blocker.query("ROLLBACK"), 5000);
    try {
      const started = Date.now();
      await expect(store.insert(plainRows("timeout", 1))).rejects.toThrow(
        "canceling statement due to statement timeout",
      );
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      clearTimeout(unlock);
      await blocker.query("ROLLBACK");
      blocker.release();
    }
    expect(await counts("timeout")).toEqual({ rows: 0, keys: 0 });
  });

  it("refuses to open when the server cannot be reached, naming it but not the password", async () => {
    const port = await closedPort();
    const url = `postgres://someone:s3cret@127.0.0.1:${port}/metrics`;
    const error = await openPostgresStore(settings(url)).then(
      () => new Error("opened"),
      (err: unknown) => err as Error,
    );
    expect(error.message).toBe(
      `cannot reach PostgreSQL at 127.0.0.1:${port}/metrics (ECONNREFUSED): is the server running? check DATABASE_URL's host and port`,
    );
    expect(error.message).not.toContain("s3cret");
  });

  it("answers ping while the server is there, rejects while it is not, and recovers", async () => {
    const proxy = await startProxy();
    const poolErrors: Error[] = [];
    const store = await open(settings(via(db.url, proxy.port)), {
      onPoolError: (err) => poolErrors.push(err),
    });
    // Without a listener of its own, a store turns the error into a process warning.
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const byDefault = await open(settings(via(db.url, proxy.port)));
      await Promise.all([store.ping(), byDefault.ping()]);

      await proxy.cut();
      // The pools' idle connections broke: told to the listener, not thrown at the process.
      await waitFor("the pool's error event", () => poolErrors[0], 5000);
      await waitFor("a process warning", () => warnings[0], 5000);
      expect(poolErrors[0]?.message).toMatch(/terminated unexpectedly/);
      expect(warnings[0]?.message).toMatch(/terminated unexpectedly/);
      await expect(store.ping()).rejects.toThrow("ECONNREFUSED");
      await expect(store.insert(plainRows("outage", 1))).rejects.toThrow("ECONNREFUSED");
    } finally {
      process.off("warning", onWarning);
    }

    await proxy.restore();
    await store.ping();
    expect(await store.insert(plainRows("outage", 1))).toBe(1);
    await proxy.close();
  });

  it("asks for TLS unless PG_SSL is disable", async () => {
    // A server that answers TLS requests with "no", and records what each client sent first.
    const firstCodes: number[] = [];
    const port = await listen(
      createServer((socket) => {
        socket.on("error", () => undefined);
        socket.once("data", (chunk) => {
          firstCodes.push(chunk.readInt32BE(4));
          if (chunk.readInt32BE(4) === SSL_REQUEST) socket.write("N");
          else socket.destroy();
        });
      }),
    );
    const url = `postgres://postgres@127.0.0.1:${port}/test`;
    for (const pgSsl of ["require", "verify-full"] as const) {
      await expect(openPostgresStore(settings(url, { pgSsl }))).rejects.toThrow(
        "The server does not support SSL connections",
      );
    }
    await expect(openPostgresStore(settings(url, { pgSsl: "disable" }))).rejects.toThrow();
    expect(firstCodes).toEqual([SSL_REQUEST, SSL_REQUEST, PROTOCOL_3]);
  });

  it("ends a pool only once every connection has closed (endPool)", async () => {
    // pool.end() resolves before its connections close; a database dropped in that moment makes
    // a closing connection fail with 57P01, emitted after its owner believed the pool closed.
    const pool = new pg.Pool({ connectionString: db.url, max: 3 });
    const clients = await Promise.all([1, 2, 3].map(() => pool.connect()));
    for (const client of clients) client.release();
    let closed = 0;
    pool.on("remove", () => (closed += 1));
    await endPool(pool);
    expect(closed).toBe(3);
  });

  it("closes more than once without failing", async () => {
    const store = await openPostgresStore(settings(db.url));
    await store.close();
    await store.close();
    await expect(store.ping()).rejects.toThrow();
  });
});

/** The code of PostgreSQL's SSLRequest message, and the protocol version of a startup message. */
const SSL_REQUEST = 80_877_103;
const PROTOCOL_3 = 196_608;
