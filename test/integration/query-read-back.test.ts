import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGGREGATIONS, type RangeSeries, type SeriesEntry } from "../../shared/query-protocol.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { remoteWrite, PATHS } from "../helpers/payloads.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { canonical, referenceRange, type Sample } from "../helpers/reference-aggregate.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { waitFor } from "../helpers/wait.ts";
import { workerFleet } from "../helpers/worker-fleet.ts";

/**
 * Reading back what was written: known samples posted through each ingest protocol to `npm run
 * serve`, stored by a real worker in a real SQLite file and in real PostgreSQL, then read through
 * `GET /api/v1/series` and `GET /api/v1/query_range` — exact values and exact aggregates.
 */
const WRITE_KEY = "write-key-0123456789abcdef";
const READ_KEY = "read-key-0123456789abcdefgh";
const KEYS = `${WRITE_KEY}@json,influx,otlp,prom, ${READ_KEY}@read`;

/** 2026-11-01T00:00:00Z: a whole minute, so 60 s buckets start on it. */
const T0 = Date.UTC(2026, 10, 1);

/** Two series per protocol, values a binary fraction can hold, so every aggregate is exact. */
const SAMPLES: readonly Sample[] = [
  { tags: { host: "a" }, timeMs: T0, value: 1 },
  { tags: { host: "a" }, timeMs: T0 + 10_000, value: 2.5 },
  { tags: { host: "a" }, timeMs: T0 + 20_000, value: -4 },
  { tags: { host: "a" }, timeMs: T0 + 60_000, value: 8 },
  { tags: { host: "a" }, timeMs: T0 + 119_999, value: 16.25 },
  { tags: { host: "b" }, timeMs: T0 + 5_000, value: 100 },
  { tags: { host: "b" }, timeMs: T0 + 180_000, value: 0.5 },
];

type Protocol = keyof typeof PATHS;

/** The stored name of the samples sent by each protocol, and the request that sends them. */
const PROTOCOLS: Readonly<Record<Protocol, { name: string; body: () => RequestInit }>> = {
  json: {
    name: "rb.json",
    body: () => ({
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        data: SAMPLES.map((s) => ({
          name: "rb.json",
          value: s.value,
          timestamp: s.timeMs,
          tags: s.tags,
        })),
      }),
    }),
  },
  influx: {
    // A line's measurement and field make the name: rb_influx + v.
    name: "rb_influx_v",
    body: () => ({
      headers: { "content-type": "text/plain" },
      body: SAMPLES.map(
        (s) => `rb_influx,host=${s.tags["host"]} v=${s.value} ${s.timeMs}000000`,
      ).join("\n"),
    }),
  },
  otlp: {
    name: "rb.otlp",
    body: () => ({
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        resourceMetrics: [
          {
            scopeMetrics: [
              {
                metrics: [
                  {
                    name: "rb.otlp",
                    gauge: {
                      dataPoints: SAMPLES.map((s) => ({
                        asDouble: s.value,
                        timeUnixNano: `${s.timeMs}000000`,
                        attributes: [{ key: "host", value: { stringValue: s.tags["host"] } }],
                      })),
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    }),
  },
  prometheus: {
    name: "rb_prom",
    body: () => {
      const hosts = [...new Set(SAMPLES.map((s) => s.tags["host"] ?? ""))];
      const payload = remoteWrite(
        {
          timeseries: hosts.map((host) => ({
            labels: [
              { name: "__name__", value: "rb_prom" },
              { name: "host", value: host },
            ],
            samples: SAMPLES.filter((s) => s.tags["host"] === host).map((s) => ({
              value: s.value,
              timestamp: BigInt(s.timeMs),
            })),
          })),
        },
        SAMPLES.length,
      );
      return { headers: { ...payload.headers }, body: payload.body };
    },
  },
};

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
const fleet = workerFleet(() => jsm);
const serves: ServeProcess[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  dir = await mkdtemp(join(tmpdir(), "query-read-back-"));
});

afterAll(async () => {
  for (const s of serves) await s.child.stop("SIGKILL");
  await fleet.killAll();
  await nc.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

async function serveFor(env: Record<string, string>): Promise<ServeProcess> {
  const serve = await startServe(env);
  serves.push(serve);
  return serve;
}

function read(serve: ServeProcess, path: string, key = READ_KEY): Promise<Response> {
  return fetch(`${serve.base}${path}`, { headers: { authorization: `Bearer ${key}` } });
}

async function readOk<T>(serve: ServeProcess, path: string): Promise<T[]> {
  const res = await read(serve, path);
  const body = (await res.json()) as { status: string; series: T[] };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.series;
}

const RANGE = `start=${T0}&end=${T0 + 3_600_000}&step=60`;

describe.each(["sqlite", "postgres"] as const)("read back from %s", (kind) => {
  let serve: ServeProcess;
  let db: TestDatabase | undefined;

  beforeAll(async () => {
    db = kind === "postgres" ? await createTestDatabase() : undefined;
    const setup = isolated(nats.url, `rb_${kind}`, dir, {
      INGEST_API_KEYS: KEYS,
      ...(db ? { DATABASE_URL: db.url } : {}),
    });
    const worker = fleet.start(setup.env);
    await fleet.ready(worker, setup.config);
    serve = await serveFor(setup.env);
    for (const [protocol, { body }] of Object.entries(PROTOCOLS) as [
      Protocol,
      { body: () => RequestInit },
    ][]) {
      const init = body();
      const res = await fetch(`${serve.base}${PATHS[protocol]}`, {
        method: "POST",
        ...init,
        headers: {
          ...(init.headers as Record<string, string>),
          authorization: `Bearer ${WRITE_KEY}`,
        },
      });
      expect(res.status, `${protocol}: ${await res.text()}`).toBeLessThan(300);
    }
    // Stored once every protocol's samples are all counted.
    await waitFor(
      "every sample stored",
      async () => {
        for (const { name } of Object.values(PROTOCOLS)) {
          const series = await readOk<RangeSeries>(
            serve,
            `/api/v1/query_range?name=${name}&${RANGE}&agg=count`,
          );
          const count = series.flatMap((s) => s.points).reduce((n, [, c]) => n + c, 0);
          if (count < SAMPLES.length) return undefined;
        }
        return true;
      },
      60_000,
    );
  }, 120_000);

  afterAll(async () => {
    await fleet.killAll();
    await db?.drop();
  });

  it.each(Object.keys(PROTOCOLS) as Protocol[])(
    "%s: every aggregation of every bucket is exactly the reference's",
    async (protocol) => {
      const { name } = PROTOCOLS[protocol];
      for (const agg of AGGREGATIONS) {
        const got = await readOk<RangeSeries>(
          serve,
          `/api/v1/query_range?name=${encodeURIComponent(name)}&${RANGE}&agg=${agg}`,
        );
        const want = referenceRange(name, SAMPLES, {
          startMs: T0,
          endMs: T0 + 3_600_000,
          stepMs: 60_000,
          agg,
        });
        expect(canonical(got), agg).toEqual(canonical(want));
      }
    },
  );

  it("reads each sample's exact value, in its second's bucket at a step of 1 s, and filters by tag", async () => {
    const got = await readOk<RangeSeries>(
      serve,
      `/api/v1/query_range?name=rb_prom&start=${T0}&end=${new Date(T0 + 600_000).toISOString()}&step=1&agg=last&tag.host=a`,
    );
    expect(got).toEqual([
      {
        name: "rb_prom",
        tags: { host: "a" },
        points: SAMPLES.filter((s) => s.tags["host"] === "a").map((s) => [
          s.timeMs - (s.timeMs % 1000),
          s.value,
        ]),
      },
    ]);
  });

  it("lists the series of a name, and of every name", async () => {
    const one = await readOk<SeriesEntry>(serve, "/api/v1/series?name=rb.json");
    expect(one).toEqual([
      { name: "rb.json", tags: { host: "a" } },
      { name: "rb.json", tags: { host: "b" } },
    ]);
    const all = await readOk<SeriesEntry>(serve, "/api/v1/series");
    expect(new Set(all.map((s) => s.name))).toEqual(
      new Set(Object.values(PROTOCOLS).map((p) => p.name)),
    );
    expect(await readOk<SeriesEntry>(serve, "/api/v1/series?name=rb.json&tag.host=b")).toEqual([
      { name: "rb.json", tags: { host: "b" } },
    ]);
  });

  it("shows the pipeline in the health answer: one worker answering, every metric stored, nothing waiting", async () => {
    const expected = {
      acceptedMessages: Object.keys(PROTOCOLS).length,
      consumer: { pending: 0, ackPending: 0 },
      deadLetters: 0,
      workers: { answering: 1, metricsStored: SAMPLES.length * Object.keys(PROTOCOLS).length },
    };
    // The last ack may follow the commit that made the samples readable by a moment.
    let last: unknown;
    await waitFor("the health answer's pipeline", async () => {
      const res = await fetch(`${serve.base}/api/v1/health`);
      expect(res.status).toBe(200);
      last = ((await res.json()) as { pipeline: unknown }).pipeline;
      return JSON.stringify(last) === JSON.stringify(expected) ? true : undefined;
    }).catch(() => undefined);
    expect(last).toEqual(expected);
  });

  it("asks for a key with the read scope, and refuses a query over its bounds naming the bound", async () => {
    expect((await read(serve, `/api/v1/series`, "not-a-key-at-all-0123")).status).toBe(401);
    const writeOnly = await read(serve, `/api/v1/series`, WRITE_KEY);
    expect(writeOnly.status).toBe(403);
    const tooMany = await read(serve, `/api/v1/query_range?name=rb.json&start=0&end=${T0}&step=60`);
    expect(tooMany.status).toBe(400);
    const body = (await tooMany.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("query_too_large");
    expect(body.error.message).toMatch(/32 days/);
  });
});

describe("with no worker answering", () => {
  it("answers 503 query_unavailable at once, with Retry-After", async () => {
    const setup = isolated(nats.url, "rb_nobody", dir, { INGEST_API_KEYS: KEYS });
    const serve = await serveFor(setup.env);
    const started = Date.now();
    const res = await read(serve, `/api/v1/query_range?name=x`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("query_unavailable");
    expect(body.error.message).toMatch(/No worker is answering/);
    // No responders is known at once: nobody waits for the timeout.
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
