import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../helpers/ingest.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { canonical, referenceRange, type Sample } from "../helpers/reference-aggregate.ts";
import { AGGREGATIONS, type RangeQuery, type RangeSeries } from "../../shared/query-protocol.ts";
import { seriesKey } from "../../shared/series-identity.ts";
import type { MetricRow } from "../../worker/metric-rows.ts";
import type { MetricStore } from "../../worker/metric-store.ts";
import { openPostgresQueries } from "../../worker/postgres-queries.ts";
import { openPostgresStore } from "../../worker/postgres-store.ts";
import { answerRange } from "../../worker/query-answers.ts";
import type { QueryStore } from "../../worker/query-store.ts";
import { openSqliteQueries } from "../../worker/sqlite-queries.ts";
import { openSqliteStore } from "../../worker/sqlite-store.ts";

/**
 * The SQL aggregation of each store against a plain computation: random samples (a few series,
 * distinct times within each, as a series' identity makes them), stored by the worker's own
 * store, then random ranges, steps, aggregations and tag filters answered by `query_range`'s
 * SQL, compared with `referenceRange`. min, max, count and last must be equal; avg and sum,
 * whose rounding depends on the order of addition, equal within 1e-12 of the values' magnitude.
 */
const T0 = Date.UTC(2026, 10, 1);
const SPAN_MS = 2 * 3_600_000;

const tagSets = [{}, { host: "a" }, { host: "b" }, { host: "a", region: "eu" }, { region: "us" }];

const samples = fc
  .uniqueArray(
    fc.record({
      series: fc.integer({ min: 0, max: tagSets.length - 1 }),
      // On a 10 s grid, so that buckets often hold several samples.
      timeMs: fc.integer({ min: 0, max: SPAN_MS / 10_000 }).map((k) => T0 + k * 10_000),
      value: fc.double({ min: -1e9, max: 1e9, noNaN: true }),
    }),
    { selector: (s) => `${s.series}/${s.timeMs}`, minLength: 1, maxLength: 300, size: "large" },
  )
  .map((list) =>
    list.map((s): Sample => ({ tags: tagSets[s.series] ?? {}, timeMs: s.timeMs, value: s.value })),
  );

const query = fc
  .record({
    // Mostly on the samples' grid, so that samples fall on the range's very start and end.
    startMs: fc
      .tuple(fc.integer({ min: -6, max: SPAN_MS / 10_000 }), fc.constantFrom(0, 0, 0, 1, 9_999))
      .map(([k, offset]) => T0 + k * 10_000 + offset),
    lengthMs: fc.integer({ min: 0, max: SPAN_MS / 10_000 }).map((k) => k * 10_000),
    stepMs: fc.oneof(
      fc.constantFrom(1000, 60_000, 3_600_000),
      fc.integer({ min: 1000, max: 900_000 }),
    ),
    agg: fc.constantFrom(...AGGREGATIONS),
    filter: fc.constantFrom({}, { host: "a" }, { region: "eu" }, { host: "b", region: "eu" }),
  })
  .map(({ startMs, lengthMs, stepMs, agg, filter }): RangeQuery => ({
    name: "prop",
    tags: filter,
    startMs,
    endMs: startMs + lengthMs,
    stepMs,
    agg,
  }));

function rowsOf(list: readonly Sample[]): MetricRow[] {
  return list.map((s) => ({
    series: seriesKey("prop", s.tags),
    name: "prop",
    value: s.value,
    timeMs: s.timeMs,
    receivedMs: s.timeMs,
    tags: JSON.stringify(s.tags),
    attributes: null,
    extra: null,
    msgId: "prop",
  }));
}

function expectSameAnswer(got: RangeSeries[], want: RangeSeries[], q: RangeQuery) {
  const a = canonical(got);
  const b = canonical(want);
  expect(a.map((s) => [s.tags, s.points.map(([t]) => t)])).toEqual(
    b.map((s) => [s.tags, s.points.map(([t]) => t)]),
  );
  a.forEach((series, i) => {
    series.points.forEach(([, v], j) => {
      const expected = b[i]?.points[j]?.[1] ?? NaN;
      if (q.agg === "avg" || q.agg === "sum") {
        expect(Math.abs(v - expected)).toBeLessThanOrEqual(1e-12 * 1e9 * 200);
      } else {
        // + 0 makes -0 and 0 one value: a store may keep -0 as 0, and JSON writes both as 0.
        expect(v + 0).toBe(expected + 0);
      }
    });
  });
}

interface Subject {
  store: MetricStore;
  queries: QueryStore;
  clear(): Promise<void>;
  close(): Promise<void>;
}

async function checkAgainstReference(subject: () => Subject, runs: number) {
  await fc.assert(
    fc.asyncProperty(samples, fc.array(query, { minLength: 1, maxLength: 5 }), async (list, qs) => {
      const { store, queries } = subject();
      await subject().clear();
      await store.insert(rowsOf(list));
      for (const q of qs) {
        const matching = list.filter((s) =>
          Object.entries(q.tags).every(([k, v]) => (s.tags as Record<string, string>)[k] === v),
        );
        expectSameAnswer(await answerRange(queries, q), referenceRange("prop", matching, q), q);
      }
    }),
    { numRuns: runs },
  );
}

describe("on SQLite", () => {
  let dir: string;
  let subject: Subject;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "query-prop-"));
    const path = join(dir, "prop.db");
    const store = openSqliteStore(path);
    const queries = openSqliteQueries(path);
    const { DatabaseSync } = await import("node:sqlite");
    const admin = new DatabaseSync(path);
    subject = {
      store,
      queries,
      clear: () => {
        // Samples only: the store keeps the ids of the series it made.
        admin.exec("DELETE FROM samples");
        return Promise.resolve();
      },
      close: async () => {
        admin.close();
        await queries.close();
        await store.close();
      },
    };
  });

  afterAll(async () => {
    await subject.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers every range query as the reference computes it", async () => {
    await checkAgainstReference(() => subject, 150);
  }, 120_000);
});

describe("on PostgreSQL", () => {
  let db: TestDatabase;
  let subject: Subject;

  beforeAll(async () => {
    db = await createTestDatabase();
    const { database } = testConfig("nats://127.0.0.1:4222", { DATABASE_URL: db.url });
    const store = await openPostgresStore(database);
    const queries = openPostgresQueries(database);
    const pg = (await import("pg")).default;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    subject = {
      store,
      queries,
      clear: async () => {
        // Samples only: the store keeps the ids of the series it made.
        await admin.query("TRUNCATE samples");
      },
      close: async () => {
        await admin.end();
        await queries.close();
        await store.close();
      },
    };
  });

  afterAll(async () => {
    await subject.close();
    await db.drop();
  });

  it("answers every range query as the reference computes it", async () => {
    await checkAgainstReference(() => subject, 60);
  }, 120_000);
});
