import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  HttpError,
  InfluxDB,
  Point,
  setLogger,
  type WriteOptions,
  type WritePrecisionType,
} from "@influxdata/influxdb-client";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../shared/config.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { startWorker, type Child } from "../helpers/processes.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { metricOf, readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The real `@influxdata/influxdb-client` writing to the self-hosted server (`npm run serve`),
 * which publishes to a private nats-server, from which the worker stores into SQLite: every
 * case ends in the database with the exact names, values, tags and timestamps the client sent.
 */
const KEY = "influx-client-test-key";
/** Short, so that a resend after it can be seen reaching the worker. */
const DUPLICATE_WINDOW_SECONDS = 1;

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let worker: Child;
let serve: ServeProcess;
let config: Config;
let dbPath: string;
/** What the client logged: its retries are logged as warnings. */
const clientLog: string[] = [];

beforeAll(async () => {
  setLogger({
    error: (message) => clientLog.push(`error: ${message}`),
    warn: (message) => clientLog.push(`warn: ${message}`),
  });
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  dir = await mkdtemp(join(tmpdir(), "influx-client-test-"));
  const setup = isolated(nats.url, "influx", dir, {
    STREAM_DUPLICATE_WINDOW_SECONDS: String(DUPLICATE_WINDOW_SECONDS),
    INGEST_API_KEYS: KEY,
  });
  config = setup.config;
  dbPath = setup.dbPath;
  worker = startWorker(setup.env);
  await waitFor("the worker's consumer", () =>
    jsm.consumers.info(config.stream.name, config.consumer.name).catch(() => undefined),
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n--- worker output ---\n${worker.output()}`, { cause: err });
  });
  serve = await startServe(setup.env);
});

afterAll(async () => {
  await serve.child.stop();
  await worker.stop();
  await nc.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

function writeApi(url: string, precision: WritePrecisionType, options: Partial<WriteOptions> = {}) {
  return new InfluxDB({ url, token: KEY }).getWriteApi("acme", "home", precision, {
    flushInterval: 0,
    maxRetries: 0,
    ...options,
  });
}

interface StoredMetric {
  name: string | null;
  value: number;
  time_ms: number;
  tags: Record<string, string>;
  /** The sample as a metric again (`metricOf`): its series' `influx` fields and its own. */
  metric: { influx: Record<string, unknown> } & Record<string, unknown>;
}

/** The rows of one measurement, sorted by name and then tags. */
function rowsOf(measurement: string): StoredMetric[] {
  return readRows(dbPath)
    .map((row) => ({
      name: row.name,
      value: row.value,
      time_ms: row.time_ms,
      tags: JSON.parse(row.tags) as Record<string, string>,
      metric: metricOf(row) as StoredMetric["metric"],
    }))
    .filter(
      (row) =>
        (row.metric.influx as Record<string, unknown> | undefined)?.["measurement"] === measurement,
    )
    .sort((a, b) =>
      `${a.name}${JSON.stringify(a.tags)}`.localeCompare(`${b.name}${JSON.stringify(b.tags)}`),
    );
}

async function rowsWhenThere(measurement: string, count: number): Promise<StoredMetric[]> {
  return waitFor(`${count} rows of ${measurement}`, () => {
    const rows = rowsOf(measurement);
    return rows.length >= count ? rows : undefined;
  });
}

/** Resolves once the worker has taken every message the stream ever held. */
async function drained(): Promise<number> {
  return waitFor("the worker to take every message", async () => {
    const stream = await jsm.streams.info(config.stream.name);
    const consumer = await jsm.consumers.info(config.stream.name, config.consumer.name);
    const done =
      consumer.num_pending === 0 &&
      consumer.num_ack_pending === 0 &&
      consumer.delivered.stream_seq === stream.state.last_seq;
    return done ? stream.state.last_seq : undefined;
  });
}

const STAMPS = {
  ns: ["1714566896123456789", "2024-05-01T12:34:56.123456789Z", 1714566896123],
  us: ["1714566896123456", "2024-05-01T12:34:56.123456000Z", 1714566896123],
  ms: ["1714566896123", "2024-05-01T12:34:56.123000000Z", 1714566896123],
  s: ["1714566896", "2024-05-01T12:34:56.000000000Z", 1714566896000],
} as const;

describe("the influx client", () => {
  it.each([
    ["ns", true],
    ["us", false],
    ["ms", true],
    ["s", false],
  ] as const)(
    "writes points at precision %s (gzip: %s) that are stored exactly",
    async (precision, gzip) => {
      const [stamp, , timeMs] = STAMPS[precision];
      const measurement = `weather_${precision}`;
      const api = writeApi(serve.base, precision, gzip ? { gzipThreshold: 0 } : {});
      api.writePoints([
        new Point(measurement)
          .tag("location", "Zürich")
          .tag("sensor", "roof west,a=1")
          .floatField("temperature", 21.5)
          .intField("readings", -42)
          .uintField("errors", "7")
          .booleanField("ok", true)
          .stringField("note", 'says "hi", \\ and\nmore')
          .timestamp(stamp),
        new Point(measurement)
          .tag("location", "Bern")
          .floatField("temperature", -3.25)
          .timestamp(stamp),
      ]);
      await api.close();

      const zurich = { location: "Zürich", sensor: "roof west,a=1" };
      const about = (field: string, type: string) => ({
        org: "acme",
        bucket: "home",
        measurement,
        field,
        type,
      });
      const row = (
        field: string,
        value: number,
        tags: Record<string, string>,
        type: string,
        extra = {},
      ) => ({
        name: `${measurement}_${field}`,
        value,
        time_ms: timeMs,
        tags,
        metric: {
          name: `${measurement}_${field}`,
          value,
          tags,
          influx: { ...about(field, type), ...extra },
        },
      });
      const rows = await rowsWhenThere(measurement, 6);
      await drained();
      expect(rowsOf(measurement)).toEqual([
        row("errors", 7, zurich, "unsigned"),
        row("note", 1, zurich, "string", { text: 'says "hi", \\ and\nmore' }),
        row("ok", 1, zurich, "boolean"),
        row("readings", -42, zurich, "integer"),
        row("temperature", -3.25, { location: "Bern" }, "float"),
        row("temperature", 21.5, zurich, "float"),
      ]);
      expect(rows).toHaveLength(6);
    },
  );

  it("writes a point without a timestamp, stored at the time the server received it", async () => {
    const api = writeApi(serve.base, "ms");
    api.writePoint(new Point("no_time").floatField("v", 1).timestamp(""));
    const before = Date.now();
    await api.close();
    const after = Date.now();
    const [row] = await rowsWhenThere("no_time", 1);
    expect(row?.time_ms).toBeGreaterThanOrEqual(before);
    expect(row?.time_ms).toBeLessThanOrEqual(after);
  });

  it("keeps the first value stored for a series and timestamp, in one request or later", async () => {
    const at = "1714566896";
    const first = writeApi(serve.base, "s");
    first.writePoints([
      new Point("same").tag("host", "a").floatField("v", 1).timestamp(at),
      new Point("same").tag("host", "a").floatField("v", 2).timestamp(at),
    ]);
    await first.close();
    await rowsWhenThere("same", 1);
    const later = writeApi(serve.base, "s");
    later.writePoint(new Point("same").tag("host", "a").floatField("v", 3).timestamp(at));
    await later.close();
    await drained();
    expect(rowsOf("same").map((r) => [r.name, r.value, r.tags])).toEqual([
      ["same_v", 1, { host: "a" }],
    ]);
  });

  it("is refused with InfluxDB's code and message for a bad key, and nothing is stored", async () => {
    const api = new InfluxDB({ url: serve.base, token: "wrong" }).getWriteApi("acme", "home", "s", {
      flushInterval: 0,
      maxRetries: 0,
    });
    api.writePoint(new Point("refused").floatField("v", 1));
    const err = await api.close().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).statusCode).toBe(401);
    expect((err as HttpError).code).toBe("unauthorized");
    expect((err as HttpError).message).toBe("The API key is not valid.");
    await drained();
    expect(rowsOf("refused")).toEqual([]);
  });
});

/** A request as the proxy saw it, and what the server answered it. */
interface Forwarded {
  readonly body: Buffer;
  readonly upstreamStatus: number;
}

/**
 * An HTTP proxy in front of the server that forwards every request, but answers the first one
 * 503 with Retry-After whatever the server said, as if the answer had been lost on the way.
 */
async function startAnswerLosingProxy(target: string) {
  const forwarded: Forwarded[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      void (async () => {
        const upstream = await fetch(`${target}${req.url ?? ""}`, {
          method: req.method ?? "POST",
          headers: forwardable(req.headers),
          body,
        });
        const upstreamBody = Buffer.from(await upstream.arrayBuffer());
        forwarded.push({ body, upstreamStatus: upstream.status });
        if (forwarded.length === 1) {
          res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
          res.end(JSON.stringify({ code: "unavailable", message: "the answer was lost" }));
          return;
        }
        const contentType = upstream.headers.get("content-type");
        res.writeHead(upstream.status, contentType ? { "content-type": contentType } : {});
        res.end(upstreamBody);
      })().catch((err: unknown) => {
        res.writeHead(502);
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    forwarded,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}

function forwardable(headers: IncomingHttpHeaders): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of ["authorization", "content-type", "content-encoding"]) {
    const value = headers[name];
    if (typeof value === "string") kept[name] = value;
  }
  return kept;
}

describe("a retried batch", () => {
  it("after a lost answer, the client's own retry adds no row", async () => {
    const proxy = await startAnswerLosingProxy(serve.base);
    try {
      let succeeded: (lines: string[]) => void = () => undefined;
      const success = new Promise<string[]>((resolve) => (succeeded = resolve));
      const api = writeApi(proxy.url, "ms", {
        maxRetries: 3,
        writeSuccess: (lines) => {
          succeeded(lines);
        },
      });
      const points = [1, 2, 3].map((i) =>
        new Point("retried")
          .tag("host", `h${i}`)
          .floatField("v", i / 10)
          .intField("n", i)
          .timestamp(String(1714566896000 + i)),
      );
      api.writePoints(points);
      const first = await api.flush().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((first as HttpError).statusCode).toBe(503);
      expect(clientLog.some((line) => line.includes("Write to InfluxDB failed (attempt: 1)"))).toBe(
        true,
      );

      const written = await Promise.race([
        success,
        sleep(10_000).then(() => {
          throw new Error("the client did not retry within 10 s");
        }),
      ]);
      await api.close();
      expect(written).toHaveLength(3);
      expect(proxy.forwarded.map((f) => f.upstreamStatus)).toEqual([204, 204]);
      expect(proxy.forwarded[1]?.body.equals(proxy.forwarded[0]?.body ?? Buffer.alloc(0))).toBe(
        true,
      );

      await drained();
      const rows = rowsOf("retried");
      expect(rows.map((r) => [r.name, r.value, r.tags])).toEqual([
        ["retried_n", 1, { host: "h1" }],
        ["retried_n", 2, { host: "h2" }],
        ["retried_n", 3, { host: "h3" }],
        ["retried_v", 0.1, { host: "h1" }],
        ["retried_v", 0.2, { host: "h2" }],
        ["retried_v", 0.3, { host: "h3" }],
      ]);
    } finally {
      await proxy.close();
    }
  });

  it("sent again after the stream's duplicate window reaches the worker and adds no row", async () => {
    const batch = () => [
      new Point("resent").tag("host", "a").floatField("v", 1).timestamp("1714566896"),
      new Point("resent").tag("host", "b").floatField("v", 2).timestamp("1714566896"),
    ];
    const first = writeApi(serve.base, "s");
    first.writePoints(batch());
    await first.close();
    await rowsWhenThere("resent", 2);
    const seqBefore = await drained();

    // JetStream forgets a message id between one and two windows after it saw it.
    await sleep(DUPLICATE_WINDOW_SECONDS * 2000 + 500);
    const again = writeApi(serve.base, "s");
    again.writePoints(batch());
    await again.close();

    const seqAfter = await waitFor("the resent batch in the stream", async () => {
      const seq = await drained();
      return seq > seqBefore ? seq : undefined;
    });
    expect(seqAfter).toBe(seqBefore + 1);
    expect(rowsOf("resent").map((r) => [r.name, r.value, r.tags])).toEqual([
      ["resent_v", 1, { host: "a" }],
      ["resent_v", 2, { host: "b" }],
    ]);
  });
});
