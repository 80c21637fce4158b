/**
 * Measurement 1 (and 7 for ingest): the ingest handler in-process over a warm NATS connection,
 * beside the raw nats.js JetStream publish of the same bytes, awaiting each PubAck, at the same
 * concurrency. Both publish with a `Nats-Msg-Id`, as the handler does, so that the server does
 * the same duplicate tracking for both.
 */
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { createHandlers, type HandlerSet } from "../edge/http/handlers.ts";
import { createLogger } from "../shared/logger.ts";
import { natsOptions } from "../shared/nats-connection.ts";
import { connect } from "nats";
import { testConfig } from "../test/helpers/ingest.ts";
import { closedLoop, jsonBody, log, QUICK, type BenchNats, type LoadResult } from "./support.ts";

export interface IngestRow {
  readonly setting: string;
  readonly metricsPerRequest: number;
  readonly concurrency: number;
  readonly ours: LoadResult & { metricsPerSecond: number };
  readonly baseline: LoadResult & { metricsPerSecond: number };
}

/** The handlers as the function wires them, logging at `info` (the default) to /dev/null. */
export function benchHandlers(natsUrl: string): HandlerSet {
  const logger = createLogger(
    "ingest",
    "info",
    pino.destination({ dest: "/dev/null", sync: false }),
  );
  return createHandlers(testConfig(natsUrl, { INGEST_AUTH: "none" }), {
    isLocal: false,
    logger,
    connectionName: "bench-ingest",
  });
}

export function ingestRequest(body: string): Request {
  return new Request("http://localhost/api/v1/metrics", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
}

export async function measureIngestInProcess(
  nats: BenchNats,
  cases: { sizes: readonly number[]; concurrencies: readonly number[] },
): Promise<IngestRow[]> {
  const handlers = benchHandlers(nats.url);
  // The baseline's connection has the same options as the handler's.
  const rawNc = await connect(natsOptions(testConfig(nats.url).nats, "bench-raw"));
  const js = rawNc.jetstream();
  const rows: IngestRow[] = [];
  const durationMs = QUICK ? 1500 : 5000;
  try {
    for (const size of cases.sizes) {
      const body = jsonBody(size);
      const bytes = new TextEncoder().encode(body);
      for (const concurrency of cases.concurrencies) {
        // At most ~400 MB per measurement: the stream's max_bytes (1 GiB) is never reached.
        const maxRequests = Math.min(500_000, Math.floor(400e6 / bytes.byteLength));
        const load = { concurrency, durationMs, maxRequests };
        await nats.purge();
        const ours = await closedLoop(async () => {
          const res = await handlers.ingest(ingestRequest(body));
          if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
          await res.arrayBuffer();
        }, load);
        await nats.purge();
        const baseline = await closedLoop(async () => {
          await js.publish("metrics.json", bytes, { msgID: randomUUID() });
        }, load);
        const row: IngestRow = {
          setting: nats.setting,
          metricsPerRequest: size,
          concurrency,
          ours: { ...ours, metricsPerSecond: ours.requestsPerSecond * size },
          baseline: { ...baseline, metricsPerSecond: baseline.requestsPerSecond * size },
        };
        log(
          `in-process ${nats.setting} ${size}×c${concurrency}: ours ${Math.round(ours.requestsPerSecond)} req/s, raw ${Math.round(baseline.requestsPerSecond)} req/s`,
        );
        rows.push(row);
      }
    }
  } finally {
    await handlers.close();
    await rawNc.close();
    await nats.purge();
  }
  return rows;
}
