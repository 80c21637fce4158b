import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../shared/envelope.ts";
import { seriesKey } from "../../shared/series-identity.ts";
import { rowsOfEnvelope, type MetricRow } from "../../worker/metric-rows.ts";
import type { MetricStore } from "../../worker/metric-store.ts";
import { openSqliteStore } from "../../worker/sqlite-store.ts";
import type { StoredRow } from "../helpers/sqlite.ts";
import { fillV1Sqlite, v1Envelopes } from "../helpers/v1-schema.ts";

const RECEIVED_AT = 1_714_566_896_789;

/** Reads the file with a connection of its own, as another process would. */
function query<T>(path: string, sql: string): T[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all() as unknown as T[];
  } finally {
    db.close();
  }
}

const storedRows = (path: string) =>
  query<Omit<StoredRow, "series_id">>(
    path,
    "SELECT name, value, time_ms, tags, attributes, extra FROM metrics ORDER BY time_ms, series_id",
  );

/** The envelope a worker would decode from a message published with this JSON body's data. */
function envelopeOf(id: string, metricsJson: string): Envelope {
  const data = encodeEnvelope({
    key: "message",
    id,
    receivedAt: RECEIVED_AT,
    metrics: JSON.parse(metricsJson) as Envelope["metrics"],
  });
  const decoded = decodeEnvelope(data);
  if (!decoded.ok) throw new Error(decoded.message);
  return decoded.envelope;
}

/** `count` samples of series `name`, a millisecond apart. */
const rowsOf = (name: string, count: number) =>
  rowsOfEnvelope(
    envelopeOf(
      "msg",
      JSON.stringify(
        Array.from({ length: count }, (_, i) => ({ name, value: i, timestamp: RECEIVED_AT + i })),
      ),
    ),
  );
const identities = (path: string) => storedRows(path).map((r) => `${r.name}@${r.time_ms}`);

describe("rowsOfEnvelope", () => {
  const sent =
    '[{"value": 1.5, "name": "cpu", "tags": {"host": "a", "dc": "eu"}, "timestamp": "2024-05-01T12:34:56.789+02:00", "unit": "%"}, {"value": -2, "timestamp": 1700000000000}, {"value": 3, "extra": {"__proto__": {"x": 1}, "list": [1, null]}}]';
  const rows = rowsOfEnvelope(envelopeOf("order-42", sent));

  it("makes one row per metric, keyed by its series: name and tags", () => {
    expect(rows.map((r) => r.msgId)).toEqual(["order-42", "order-42", "order-42"]);
    expect(rows[0]?.series).toBe(seriesKey("cpu", { dc: "eu", host: "a" }));
    expect(rows[1]?.series).toBe(rows[2]?.series);
  });

  it("carries name and value, with null for a metric without a name", () => {
    expect(rows.map((r) => [r.name, r.value])).toEqual([
      ["cpu", 1.5],
      [null, -2],
      [null, 3],
    ]);
  });

  it("takes the time from the timestamp, string or integer, else from receivedAt", () => {
    expect(rows.map((r) => r.timeMs)).toEqual([1_714_559_696_789, 1_700_000_000_000, RECEIVED_AT]);
    expect(rows.map((r) => r.receivedMs)).toEqual([RECEIVED_AT, RECEIVED_AT, RECEIVED_AT]);
  });

  it("keeps the tags as a JSON object, {} when there are none", () => {
    expect(rows.map((r) => JSON.parse(r.tags) as unknown)).toEqual([
      { host: "a", dc: "eu" },
      {},
      {},
    ]);
  });

  it("keeps a JSON metric's other fields as its own, and no series attributes", () => {
    expect(rows.map((r) => r.extra)).toEqual([
      '{"unit":"%"}',
      null,
      '{"extra":{"__proto__":{"x":1},"list":[1,null]}}',
    ]);
    expect(rows.map((r) => r.attributes)).toEqual([null, null, null]);
  });
});

describe("rowsOfEnvelope with series keys (the agent protocols)", () => {
  const seriesRows = (metrics: Envelope["metrics"], id = "batch") =>
    rowsOfEnvelope({ key: "series", id, receivedAt: RECEIVED_AT, metrics });
  const at = "2026-11-27T10:00:00.123456789Z";

  const identity = (r: MetricRow | undefined) => `${r?.series}@${r?.timeMs}`;

  it("keys a metric by name, tags (in any order) and timestamp, not by message", () => {
    const [a] = seriesRows([{ name: "cpu", value: 1, timestamp: at, tags: { h: "a", dc: "eu" } }]);
    const [b] = seriesRows(
      [{ name: "cpu", value: 2, timestamp: at, tags: { dc: "eu", h: "a" } }],
      "another",
    );
    expect(a?.series).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(identity(b)).toBe(identity(a));
  });

  it("tells apart points a millisecond apart, other names, other tags and other tag values", () => {
    const keys = seriesRows([
      { name: "cpu", value: 1, timestamp: at, tags: { h: "a" } },
      { name: "cpu", value: 1, timestamp: "2026-11-27T10:00:00.122456789Z", tags: { h: "a" } },
      { name: "mem", value: 1, timestamp: at, tags: { h: "a" } },
      { name: "cpu", value: 1, timestamp: at, tags: { h: "b" } },
      { name: "cpu", value: 1, timestamp: at, tags: { g: "a" } },
      { name: "cpu", value: 1, timestamp: at },
    ]).map(identity);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("stores time to the millisecond: points of a series within one are one sample", () => {
    const keys = seriesRows([
      { name: "cpu", value: 1, timestamp: at },
      { name: "cpu", value: 1, timestamp: "2026-11-27T10:00:00.123456788Z" },
    ]).map(identity);
    expect(new Set(keys).size).toBe(1);
  });

  it("gives the same instant the same key whatever its offset or form", () => {
    const keys = seriesRows([
      { name: "cpu", value: 1, timestamp: "2026-11-27T10:00:00.123Z" },
      { name: "cpu", value: 1, timestamp: "2026-11-27T11:00:00.123000+01:00" },
      { name: "cpu", value: 1, timestamp: Date.UTC(2026, 10, 27, 10, 0, 0, 123) },
    ]).map(identity);
    expect(new Set(keys).size).toBe(1);
  });

  it("gives a series what is the same for all its points, and keeps the rest per sample", () => {
    const [text, otlp] = seriesRows([
      {
        name: "log_msg",
        value: 1,
        timestamp: at,
        influx: { bucket: "b", measurement: "log", field: "msg", type: "string", text: "hi" },
      },
      {
        name: "http.duration",
        value: 2,
        timestamp: at,
        kind: "histogram",
        unit: "ms",
        temporality: "cumulative",
        startTime: at,
      },
    ] as unknown as Envelope["metrics"]);
    // Keys sorted, so that the same attributes are the same text whoever stored them.
    expect(text?.attributes).toBe(
      '{"influx":{"bucket":"b","field":"msg","measurement":"log","type":"string"}}',
    );
    expect(text?.extra).toBe('{"influx":{"text":"hi"}}');
    expect(otlp?.attributes).toBe('{"kind":"histogram","temporality":"cumulative","unit":"ms"}');
    expect(otlp?.extra).toBe(`{"startTime":"${at}"}`);
  });
});

describe("an envelope of version 1 (written before row keys were named)", () => {
  it("is read as version 2 keyed by message", () => {
    const decoded = decodeEnvelope(
      Buffer.from(JSON.stringify({ v: 1, id: "old", receivedAt: 5, metrics: [{ value: 1 }] })),
    );
    expect(decoded).toEqual({
      ok: true,
      version: 1,
      envelope: { key: "message", id: "old", receivedAt: 5, metrics: [{ value: 1 }] },
    });
    if (decoded.ok) expect(rowsOfEnvelope(decoded.envelope)[0]?.timeMs).toBe(5);
  });
});

describe("the SQLite store", () => {
  let dir: string;
  let path: string;
  const opened: MetricStore[] = [];

  const open = () => {
    const store = openSqliteStore(path);
    opened.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "sqlite-store-"));
    // A folder that does not exist yet: the store makes it.
    path = join(dir, "data", "metrics.db");
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("waits for another process's lock on a new file instead of failing to open it", async () => {
    // Two workers starting on one new file both switch it to WAL; the second must wait.
    mkdirSync(dirname(path), { recursive: true });
    const holder = spawn(process.execPath, [
      "-e",
      `const db = new (require("node:sqlite").DatabaseSync)(${JSON.stringify(path)});
       db.exec("BEGIN EXCLUSIVE"); console.log("locked");
       setTimeout(() => { db.exec("COMMIT"); db.close(); }, 500);`,
    ]);
    await once(holder.stdout, "data");
    const store = open();
    expect(await store.insert(rowsOf("a", 1))).toBe(1);
    await once(holder, "exit");
  });

  it("resolves to the number of rows added", async () => {
    const store = open();
    expect(await store.insert(rowsOf("a", 3))).toBe(3);
    expect(storedRows(path)).toHaveLength(3);
  });

  it("adds nothing when the same rows are inserted again, leaving one row each", async () => {
    const store = open();
    const rows = rowsOf("a", 3);
    await store.insert(rows);
    expect(await store.insert(rows)).toBe(0);
    expect(await store.insert([...rowsOf("a", 4), ...rowsOf("b", 1)])).toBe(2);
    const t = RECEIVED_AT;
    expect(identities(path)).toEqual([
      `a@${t}`,
      `b@${t}`,
      `a@${t + 1}`,
      `a@${t + 2}`,
      `a@${t + 3}`,
    ]);
  });

  it("adds a row once even when it appears twice in one insert", async () => {
    const store = open();
    const rows = rowsOf("a", 1);
    expect(await store.insert([...rows, ...rows])).toBe(1);
    expect(storedRows(path)).toHaveLength(1);
  });

  it("stores every field of a row", async () => {
    const envelope = envelopeOf(
      "order-42",
      '[{"value": 1.5, "name": "cpu", "tags": {"host": "a"}, "timestamp": "2024-05-01T12:34:56Z", "unit": "%"}, {"value": 7}]',
    );
    await open().insert(rowsOfEnvelope(envelope));
    expect(storedRows(path)).toEqual([
      {
        name: "cpu",
        value: 1.5,
        time_ms: 1_714_566_896_000,
        tags: '{"host":"a"}',
        attributes: null,
        extra: '{"unit":"%"}',
      },
      { name: null, value: 7, time_ms: RECEIVED_AT, tags: "{}", attributes: null, extra: null },
    ]);
  });

  it("stores all the rows of an insert or none of them", async () => {
    const store = open();
    const good = rowsOf("a", 2);
    const broken = { ...rowsOf("b", 1)[0], value: null } as unknown as MetricRow;
    await expect(store.insert([...good, broken])).rejects.toThrow();
    expect(storedRows(path)).toEqual([]);
    expect(await store.insert(good)).toBe(2);
  });

  it("migrates idempotently: reopening keeps the schema version and the rows", async () => {
    const first = open();
    await first.insert(rowsOf("a", 2));
    await first.close();

    const second = open();
    expect(query<{ user_version: number }>(path, "PRAGMA user_version")).toEqual([
      { user_version: 2 },
    ]);
    expect(await second.insert(rowsOf("a", 2))).toBe(0);
    expect(storedRows(path)).toHaveLength(2);
    await second.close();

    open();
    const tables = query<{ name: string }>(
      path,
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    expect(tables.map((t) => t.name)).toEqual(["samples", "series", "series_name"]);
  });

  it("refuses a database whose schema is newer than the worker's", async () => {
    await open().close();
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    expect(() => openSqliteStore(path)).toThrow(/newer/);
  });

  it("answers ping and closes more than once", async () => {
    const store = open();
    await expect(store.ping()).resolves.toBeUndefined();
    await store.close();
    await expect(store.close()).resolves.toBeUndefined();
  });

  it("reports a database it cannot use as a rejected promise, never a throw", async () => {
    const store = open();
    await store.close();
    // MetricStore's methods return promises; a caller chaining .catch() must see the failure.
    await expect(Promise.resolve().then(() => store.insert(rowsOf("a", 1)))).rejects.toThrow();
    expect(() => void store.insert(rowsOf("a", 1)).catch(() => undefined)).not.toThrow();
    expect(() => void store.ping().catch(() => undefined)).not.toThrow();
  });

  it("works in memory", async () => {
    const store = openSqliteStore(":memory:");
    opened.push(store);
    expect(await store.insert(rowsOf("m", 2))).toBe(2);
    expect(await store.insert(rowsOf("m", 2))).toBe(0);
  });
});

describe("the SQLite store on a version 1 file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "sqlite-v1-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("moves every stored row into series and samples, once, collapsing only equal identities", async () => {
    const path = join(dir, "v1.db");
    const envelopes = v1Envelopes(1200);
    const v1Count = fillV1Sqlite(path, envelopes);
    expect(v1Count).toBe(1200 * 12 + 2);

    const store = openSqliteStore(path);
    // The two metrics without timestamp of one series in one message are one sample now.
    expect(store.migrated).toEqual({ rows: v1Count, collapsed: 1 });
    expect(query<{ n: number }>(path, "SELECT count(*) AS n FROM metrics")).toEqual([
      { n: v1Count - 1 },
    ]);
    expect(query(path, "SELECT name FROM sqlite_master WHERE name = 'metrics_v1'")).toEqual([]);
    // Every sample is there with its value, time, tags and fields.
    // The first of two samples with one identity stays.
    const byIdentity = new Map<string, MetricRow>();
    for (const r of rowsOfEnvelopeAll(envelopes)) {
      if (!byIdentity.has(`${r.series}@${r.timeMs}`)) byIdentity.set(`${r.series}@${r.timeMs}`, r);
    }
    const expected = [...byIdentity.values()];
    const stored = storedRows(path);
    expect(new Set(stored.map((r) => `${r.name}|${r.tags}|${r.time_ms}|${r.value}`))).toEqual(
      new Set(expected.map((r) => `${r.name}|${r.tags}|${r.timeMs}|${r.value}`)),
    );
    const note = stored.find((r) => r.name === "weather_note");
    expect(note?.attributes).toBe(
      '{"influx":{"bucket":"home","field":"note","measurement":"weather","type":"string"}}',
    );
    expect(note?.extra).toMatch(/^\{"influx":\{"text":"n\d+"\}\}$/);
    expect(stored.find((r) => r.extra?.includes("first"))?.extra).toBe(
      '{"note":"first","nested":{"a":[1,2]}}',
    );
    // What was stored before is stored again as nothing new; a new sample is added.
    expect(await store.insert(expected)).toBe(0);
    await store.close();

    const again = openSqliteStore(path);
    expect(again.migrated).toBeUndefined();
    expect(query<{ n: number }>(path, "SELECT count(*) AS n FROM metrics")).toEqual([
      { n: v1Count - 1 },
    ]);
    await again.close();
  });

  it("is migrated once when two workers start on it at once", async () => {
    const path = join(dir, "v1-twice.db");
    const v1Count = fillV1Sqlite(path, v1Envelopes(3000));
    const code = `
      import { openSqliteStore } from ${JSON.stringify(join(process.cwd(), "worker/sqlite-store.ts"))};
      const store = openSqliteStore(${JSON.stringify(path)});
      console.log(JSON.stringify(store.migrated ?? null));
      await store.close();`;
    const workers = [1, 2].map(() =>
      spawn(process.execPath, ["--input-type=module", "-e", code], {
        stdio: ["ignore", "pipe", "inherit"],
      }),
    );
    const outputs = await Promise.all(
      workers.map(async (child) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
        await once(child, "exit");
        return JSON.parse(out) as { rows: number; collapsed: number } | null;
      }),
    );
    // Each moved some batches (or none); together every row, once.
    const moved = outputs.reduce((sum, o) => sum + (o?.rows ?? 0), 0);
    expect(moved).toBe(v1Count);
    expect(query<{ n: number }>(path, "SELECT count(*) AS n FROM metrics")).toEqual([
      { n: v1Count - 1 },
    ]);
  });
});

describe("the SQLite store shared by two writers", () => {
  it("gives a series met by both at once one id, and each sample one row", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sqlite-two-"));
    const path = join(dir, "two.db");
    const [a, b] = [openSqliteStore(path), openSqliteStore(path)];
    try {
      const rows = Array.from({ length: 50 }, (_, s) => rowsOf(`two-${s}`, 20)).flat();
      const [byA, byB] = await Promise.all([a.insert(rows), b.insert(rows.toReversed())]);
      expect(byA + byB).toBe(1000);
      expect(query<{ n: number }>(path, "SELECT count(*) AS n FROM series")).toEqual([{ n: 50 }]);
      // Each store's cache holds the ids the other made: new samples of every series go in.
      const later = Array.from({ length: 50 }, (_, s) => rowsOf(`two-${s}`, 21).slice(20)).flat();
      expect(await a.insert(later)).toBe(50);
      expect(await b.insert(later)).toBe(0);
      expect(query<{ n: number }>(path, "SELECT count(*) AS n FROM series")).toEqual([{ n: 50 }]);
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("retention in SQLite", () => {
  it("deletes the samples before the cutoff, keeps the rest, and gives the space back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sqlite-retention-"));
    const path = join(dir, "retention.db");
    const store = openSqliteStore(path);
    try {
      const day = 86_400_000;
      const start = Date.UTC(2026, 10, 1);
      const rows = Array.from({ length: 30 }, (_, s) =>
        rowsOfEnvelope({
          key: "series",
          id: `r-${s}`,
          receivedAt: start,
          metrics: Array.from({ length: 3000 }, (_, i) => ({
            name: "retained",
            value: i,
            timestamp: start + Math.floor((i * 3 * day) / 3000),
            tags: { s: String(s) },
          })),
        }),
      ).flat();
      expect(await store.insert(rows)).toBe(90_000);
      const pages = () =>
        query<{ page_count: number }>(path, "PRAGMA page_count")[0]?.page_count ?? 0;
      const before = pages();
      const deleted = await store.enforceRetention?.(start + 2 * day);
      expect(deleted).toBe(60_000);
      const left = query<{ n: number; oldest: number }>(
        path,
        "SELECT count(*) AS n, min(time_ms) AS oldest FROM samples",
      );
      expect(left).toEqual([{ n: 30_000, oldest: start + 2 * day }]);
      expect(pages()).toBeLessThan(before / 2);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const rowsOfEnvelopeAll = (envelopes: readonly Envelope[]) => envelopes.flatMap(rowsOfEnvelope);
