/**
 * Measurement 2: the self-hosted server (`node server/main.ts`) under autocannon, beside a bare
 * node:http server that parses the body and publishes it raw, under the same load. autocannon
 * runs in the benchmark's own process, on the same two cores as the server and nats-server.
 */
import autocannon from "autocannon";
import { startHttpProcess } from "./processes.ts";
import { jsonBody, log, QUICK, round, type BenchNats } from "./support.ts";

export interface HttpFigures {
  readonly requestsPerSecond: number;
  readonly metricsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
}

export interface HttpRow {
  readonly setting: string;
  readonly metricsPerRequest: number;
  readonly connections: number;
  readonly ours: HttpFigures;
  readonly baseline: HttpFigures;
}

const CONNECTIONS = 64;

async function load(url: string, size: number): Promise<HttpFigures> {
  const body = jsonBody(size);
  const options = {
    url: `${url}/api/v1/metrics`,
    method: "POST" as const,
    headers: { "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
  };
  await autocannon({ ...options, duration: 1 }); // warm-up
  const result = await autocannon({ ...options, duration: QUICK ? 3 : 8 });
  const ok = result.requests.total - result.non2xx;
  const rps = ok / result.duration;
  return {
    requestsPerSecond: round(rps),
    metricsPerSecond: round(rps * size),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

export async function measureHttpServer(
  nats: BenchNats,
  sizes: readonly number[],
): Promise<HttpRow[]> {
  const rows: HttpRow[] = [];
  const env = { NATS_URL: nats.url, INGEST_AUTH: "none" };
  for (const size of sizes) {
    await nats.purge();
    const server = await startHttpProcess("server/main.ts", env);
    let ours;
    try {
      ours = await load(server.base, size);
    } finally {
      await server.stop();
    }
    await nats.purge();
    const raw = await startHttpProcess("bench/raw-http-server.ts", env);
    let baseline;
    try {
      baseline = await load(raw.base, size);
    } finally {
      await raw.stop();
    }
    log(
      `http ${nats.setting} ${size}: ours ${ours.requestsPerSecond} req/s p99 ${ours.p99Ms} ms, raw ${baseline.requestsPerSecond} req/s p99 ${baseline.p99Ms} ms`,
    );
    rows.push({
      setting: nats.setting,
      metricsPerRequest: size,
      connections: CONNECTIONS,
      ours,
      baseline,
    });
  }
  await nats.purge();
  return rows;
}
