/**
 * `node bench/query-range.ts [sqlite|postgres]`: the latency of `GET /api/v1/query_range` through
 * `npm run serve` and a real worker, for one series over the last hour at 60 s steps, out of
 * 10,000 series × 1,000 samples (a sample every 15 s, ending now). The samples are written with
 * the worker's own store (the path the consumer writes through), not published: what is measured
 * is the read. Prints p50/p99 of sequential requests for random series; docs/performance.md
 * quotes the figures. `BENCH_QUICK=1`: 1,000 series.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect } from "nats";
import { seriesKey } from "../shared/series-identity.ts";
import { ensureStreams } from "../shared/stream-setup.ts";
import { isolated } from "../test/helpers/isolated.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import { startWorker } from "../test/helpers/processes.ts";
import { startServe } from "../test/helpers/serve.ts";
import { waitFor } from "../test/helpers/wait.ts";
import type { MetricRow } from "../worker/metric-rows.ts";
import { openStore } from "../worker/open-store.ts";
import { log, percentiles, QUICK, round } from "./support.ts";

const SERIES = QUICK ? 1000 : 10_000;
const SAMPLES = 1000;
const INTERVAL_MS = 15_000;
/** Series are spread over 100 names (100 series each), told apart by a `host` tag. */
const NAMES = 100;
const REQUESTS = 500;
const BATCH = 10_000;

const kind = process.argv[2] === "postgres" ? "postgres" : "sqlite";
const now = Date.now();

function* rows(): Generator<MetricRow[]> {
  let batch: MetricRow[] = [];
  for (let s = 0; s < SERIES; s++) {
    const name = `bench.metric_${s % NAMES}`;
    const tagObject = { host: `host-${s}`, region: "eu-west-1" };
    const tags = JSON.stringify(tagObject);
    const series = seriesKey(name, tagObject);
    for (let j = 0; j < SAMPLES; j++) {
      const timeMs = now - (SAMPLES - j) * INTERVAL_MS;
      batch.push({
        series,
        name,
        value: (s * 31 + j) % 1000,
        timeMs,
        receivedMs: timeMs,
        tags,
        attributes: null,
        extra: null,
        msgId: "bench",
      });
      if (batch.length === BATCH) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

const dir = await mkdtemp(join(tmpdir(), "bench-query-"));
const db = kind === "postgres" ? await createTestDatabase() : undefined;
const nats = await startNatsServer();
try {
  const setup = isolated(nats.url, "bench_query", dir, db ? { DATABASE_URL: db.url } : {});
  const store = await openStore(setup.config.database);
  const seedStart = performance.now();
  for (const batch of rows()) await store.insert(batch);
  await store.close();
  const seedSeconds = (performance.now() - seedStart) / 1000;
  log(`query-range ${kind}: ${SERIES * SAMPLES} samples written in ${round(seedSeconds, 1)} s`);
  if (kind === "postgres" && db) {
    const pg = (await import("pg")).default;
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query("ANALYZE metrics");
    await client.end();
  }

  const nc = await connect({ servers: nats.url });
  await ensureStreams(await nc.jetstreamManager(), setup.config);
  await nc.close();
  const worker = startWorker(setup.env);
  const serve = await startServe(setup.env);
  try {
    const path = (s: number) =>
      `/api/v1/query_range?name=bench.metric_${s % NAMES}&tag.host=host-${s}&start=${now - 3_600_000}&end=${now}&step=60&agg=avg`;
    await waitFor(
      "the worker's query service",
      async () => ((await fetch(`${serve.base}${path(0)}`)).status === 200 ? true : undefined),
      30_000,
    );
    const latencies: number[] = [];
    let points = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const s = Math.floor(Math.random() * SERIES);
      const started = performance.now();
      const res = await fetch(`${serve.base}${path(s)}`);
      const body = (await res.json()) as { series: { points: unknown[] }[] };
      latencies.push(performance.now() - started);
      if (res.status !== 200 || body.series.length !== 1) {
        throw new Error(`query for series ${s}: ${res.status} ${JSON.stringify(body)}`);
      }
      points += body.series[0]?.points.length ?? 0;
    }
    const { p50Ms, p99Ms } = percentiles(latencies);
    console.log(
      JSON.stringify({
        part: "query-range",
        database: kind,
        series: SERIES,
        samplesPerSeries: SAMPLES,
        requests: REQUESTS,
        pointsPerAnswer: points / REQUESTS,
        p50Ms: round(p50Ms, 1),
        p99Ms: round(p99Ms, 1),
        seedSeconds: round(seedSeconds, 1),
      }),
    );
  } finally {
    await serve.child.stop();
    await worker.stop();
  }
} finally {
  await nats.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
}
