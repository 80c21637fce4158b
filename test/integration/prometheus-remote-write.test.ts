import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { decodeWriteRequest } from "../../edge/remote-write/remote-write.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import {
  PROJECT_ROOT,
  freePort,
  startChild,
  startWorker,
  workerHttpPort,
  type Child,
} from "../helpers/processes.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { readRows, type StoredRow } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The system ingesting its own telemetry: a real Prometheus (Debian's package) scrapes the
 * worker's /metrics every second and remote-writes to the self-hosted server's /api/v1/write,
 * through a proxy that answers one delivered batch with 503 so that Prometheus sends it again.
 * What the database holds is compared with what Prometheus itself stored.
 */
const PROMETHEUS =
  process.env["PROMETHEUS_BIN"] ?? join(PROJECT_ROOT, ".tools/prometheus/prometheus");
const KEY = "remote-write-test-key";

let dbPath: string;
let proxy: RetryProxy;
let prometheus: Child;
let prometheusBase: string;
/** What afterAll stops, in the reverse order of starting. */
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  if (!existsSync(PROMETHEUS)) {
    throw new Error(
      `Prometheus not found at ${PROMETHEUS}: npm run test:tools fetches Debian's into .tools/ (or set PROMETHEUS_BIN); this test needs a real Prometheus`,
    );
  }
  const nats: NatsServer = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = await mkdtemp(join(tmpdir(), "prometheus-rw-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const setup = isolated(nats.url, "prom", dir);
  dbPath = setup.dbPath;
  const worker = startWorker(setup.env);
  cleanups.push(() => worker.stop());
  const workerPort = await waitFor("the worker's HTTP port", () => workerHttpPort(worker));
  const serve: ServeProcess = await startServe({ ...setup.env, INGEST_API_KEYS: KEY });
  cleanups.push(() => serve.child.stop());
  proxy = await startRetryProxy(serve.port);
  cleanups.push(() => proxy.close());

  const port = await freePort();
  prometheusBase = `http://127.0.0.1:${port}`;
  const configFile = join(dir, "prometheus.yml");
  await writeFile(configFile, prometheusConfig(workerPort, proxy.port));
  prometheus = startChild(
    PROMETHEUS,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    {},
  );
  cleanups.push(() => prometheus.stop());
  await waitFor(
    "Prometheus to be ready",
    async () => {
      if (prometheus.process.exitCode !== null) {
        throw new Error(`Prometheus exited at start:\n${prometheus.output()}`);
      }
      const res = await fetch(`${prometheusBase}/-/ready`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    30_000,
  );
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function prometheusConfig(workerPort: number, proxyPort: number): string {
  return `
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: worker
    static_configs:
      - targets: ["127.0.0.1:${workerPort}"]
remote_write:
  - url: http://127.0.0.1:${proxyPort}/api/v1/write
    authorization:
      credentials: ${KEY}
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: ${REQUEST_LIMITS.metricsPerRequest}
      min_backoff: 100ms
      max_backoff: 1s
`;
}

/** A stored row as a series (name and labels) and a sample. */
interface Point {
  series: string;
  timeMs: number;
  value: number;
}

function seriesOf(name: string, labels: Record<string, string>): string {
  const sorted = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([name, sorted]);
}

function pointOf(row: StoredRow): Point {
  return {
    series: seriesOf(row.name ?? "", JSON.parse(row.tags) as Record<string, string>),
    timeMs: row.time_ms,
    value: row.value,
  };
}

const byPoint = (a: Point, b: Point) =>
  a.series < b.series ? -1 : a.series > b.series ? 1 : a.timeMs - b.timeMs;

/** The worker job's finite samples in (endMs - rangeMs, endMs], as Prometheus's API gives them. */
async function prometheusPoints(endMs: number, rangeMs: number): Promise<Point[]> {
  const url = new URL("/api/v1/query", prometheusBase);
  url.searchParams.set("query", `{job="worker"}[${rangeMs}ms]`);
  url.searchParams.set("time", String(endMs / 1000));
  const res = await fetch(url);
  const body = (await res.json()) as {
    status: string;
    data: {
      resultType: string;
      result: { metric: Record<string, string>; values: [number, string][] }[];
    };
  };
  expect([res.status, body.status, body.data.resultType]).toEqual([200, "success", "matrix"]);
  return body.data.result
    .flatMap(({ metric, values }) => {
      const { __name__: name = "", ...labels } = metric;
      return values.map(([seconds, value]) => ({
        series: seriesOf(name, labels),
        timeMs: Math.round(seconds * 1000),
        value: Number(value),
      }));
    })
    .filter((p) => Number.isFinite(p.value))
    .sort(byPoint);
}

function storedPoints(endMs: number, rangeMs: number): Point[] {
  return readRows(dbPath)
    .filter((r) => r.time_ms > endMs - rangeMs && r.time_ms <= endMs)
    .filter((r) => (JSON.parse(r.tags) as Record<string, string>)["job"] === "worker")
    .map(pointOf)
    .sort(byPoint);
}

describe("Prometheus remote write, from a real Prometheus", () => {
  it("stores exactly the samples Prometheus scraped from the worker: names, labels, times, values", async () => {
    await waitFor(
      "rows of the worker's own metrics",
      () => (readRows(dbPath).some((r) => r.name?.startsWith("worker_")) ? true : undefined),
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- Prometheus ---\n${prometheus.output().slice(-4000)}`);
    });
    // A window that closed a few seconds ago, holding several scrapes of every series.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const endMs = Date.now() - 3000;
    const rangeMs = 10_000;
    const expected = await prometheusPoints(endMs, rangeMs);
    expect(expected.length).toBeGreaterThan(20);
    expect(expected.some((p) => p.series.includes("worker_metrics_stored_total"))).toBe(true);
    // Remote write lags the scrape by a batch or two: wait for the database to catch up.
    const stored = await waitFor(
      "the database to hold Prometheus's samples",
      () => {
        const points = storedPoints(endMs, rangeMs);
        return points.length >= expected.length ? points : undefined;
      },
      30_000,
    ).catch(() => storedPoints(endMs, rangeMs));
    expect(stored).toEqual(expected);
  });

  it("adds no row when Prometheus sends a batch again after a 503", async () => {
    const forced = await waitFor(
      "a batch answered 503 and sent again",
      () => proxy.retried(),
      60_000,
    );
    expect(forced.deliveries).toBeGreaterThanOrEqual(2);
    // Every delivery reached the server, which took it each time.
    expect(forced.upstreamStatuses.every((s) => s === 204)).toBe(true);

    const samples = decodeWriteRequest(forced.body, REQUEST_LIMITS.bodyBytes).timeseries.flatMap(
      (ts) => {
        const { __name__: name = "", ...labels } = Object.fromEntries(
          ts.labels.map((l) => [l.name, l.value]),
        );
        return ts.samples
          .filter((s) => Number.isFinite(s.value))
          .map((s) => ({
            series: seriesOf(name, labels),
            timeMs: Number(s.timestamp),
            value: s.value,
          }));
      },
    );
    expect(samples.length).toBeGreaterThan(0);
    const stored = readRows(dbPath).map(pointOf);
    for (const sample of samples) {
      const matches = stored.filter(
        (p) => p.series === sample.series && p.timeMs === sample.timeMs,
      );
      expect(matches, `rows of ${sample.series} at ${sample.timeMs}`).toEqual([sample]);
    }
    // And nowhere in the table does a series hold two rows for one time.
    const keys = stored.map((p) => `${p.series}@${p.timeMs}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

interface RetriedBatch {
  readonly body: Uint8Array;
  readonly deliveries: number;
  readonly upstreamStatuses: readonly number[];
}

interface RetryProxy {
  readonly port: number;
  /** The batch answered 503 once, once Prometheus has delivered it again; else undefined. */
  retried(): RetriedBatch | undefined;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of the server that forwards every request and passes the answer back,
 * except for the first batch of samples after the server has taken a few: that one it forwards,
 * and then answers Prometheus 503, as a server that stored a batch and failed before answering
 * would. It counts the deliveries of that batch by the digest of its body.
 */
async function startRetryProxy(upstreamPort: number): Promise<RetryProxy> {
  const deliveries = new Map<string, { body: Uint8Array; statuses: number[] }>();
  let forced: string | undefined;
  let forwarded = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && !HOP_BY_HOP.has(name)) headers.set(name, value);
      }
      fetch(`http://127.0.0.1:${upstreamPort}${req.url ?? "/"}`, {
        method: req.method ?? "POST",
        headers,
        body,
      })
        .then(async (upstream) => {
          const text = await upstream.text();
          const digest = createHash("sha256").update(body).digest("hex");
          const seen = deliveries.get(digest) ?? { body: new Uint8Array(body), statuses: [] };
          seen.statuses.push(upstream.status);
          deliveries.set(digest, seen);
          forwarded += 1;
          if (
            forced === undefined &&
            forwarded > 3 &&
            upstream.status === 204 &&
            holdsSamples(body)
          ) {
            forced = digest;
            res.writeHead(503, { "retry-after": "1", "content-type": "text/plain" });
            res.end("answered 503 by the test's proxy after the server took the batch");
            return;
          }
          res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
          res.end(text);
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    port,
    retried() {
      const batch = forced === undefined ? undefined : deliveries.get(forced);
      if (batch === undefined || batch.statuses.length < 2) return undefined;
      return {
        body: batch.body,
        deliveries: batch.statuses.length,
        upstreamStatuses: batch.statuses,
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Headers of one connection or one message's framing, which the proxy's own request sets anew. */
const HOP_BY_HOP = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
]);

function holdsSamples(body: Uint8Array): boolean {
  try {
    return decodeWriteRequest(body, REQUEST_LIMITS.bodyBytes).timeseries.some(
      (ts) => ts.samples.length > 0,
    );
  } catch {
    return false;
  }
}
