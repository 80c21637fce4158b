/**
 * Measurement 6 (function): the heap after 100,000 single-metric requests through the ingest
 * handler in-process (64 at a time), beside the raw publish of the same bytes 100,000 times.
 * Each runs in a process of its own, started with --expose-gc, so that the figure is the
 * handler's and the client's alone: heap used after a full collection, before and after.
 * Run as a script: `node --expose-gc bench/function-heap.ts ours|raw <NATS_URL> <requests>`.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { connect } from "nats";
import { natsOptions } from "../shared/nats-connection.ts";
import { testConfig } from "../test/helpers/ingest.ts";
import { PROJECT_ROOT } from "../test/helpers/processes.ts";
import { benchHandlers, ingestRequest } from "./ingest-in-process.ts";
import { closedLoop, jsonBody, log, round, type BenchNats } from "./support.ts";

export interface HeapFigures {
  readonly requests: number;
  readonly heapBeforeMb: number;
  readonly heapAfterMb: number;
  readonly rssAfterMb: number;
}

export interface HeapRow {
  readonly setting: string;
  readonly ours: HeapFigures;
  readonly baseline: HeapFigures;
}

const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);

async function inChild(kind: "ours" | "raw", url: string, requests: number): Promise<HeapFigures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const body = jsonBody(1);
  let send: () => Promise<void>;
  let close: () => Promise<void>;
  if (kind === "ours") {
    const handlers = benchHandlers(url);
    send = async () => {
      const res = await handlers.ingest(ingestRequest(body));
      if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
      await res.arrayBuffer();
    };
    close = () => handlers.close();
  } else {
    const nc = await connect(natsOptions(testConfig(url).nats, "bench-raw"));
    const js = nc.jetstream();
    const bytes = new TextEncoder().encode(body);
    send = async () => {
      await js.publish("metrics.json", bytes, { msgID: randomUUID() });
    };
    close = () => nc.close();
  }
  const load = { concurrency: 64, durationMs: 300_000, warmUp: 1000 };
  await closedLoop(send, { ...load, maxRequests: 1000 });
  gc();
  const before = process.memoryUsage().heapUsed;
  const result = await closedLoop(send, { ...load, warmUp: 0, maxRequests: requests });
  gc();
  const after = process.memoryUsage();
  await close();
  return {
    requests: result.requests,
    heapBeforeMb: mb(before),
    heapAfterMb: mb(after.heapUsed),
    rssAfterMb: mb(after.rss),
  };
}

export async function measureFunctionHeap(nats: BenchNats, requests = 100_000): Promise<HeapRow> {
  const run = async (kind: string) => {
    await nats.purge();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--expose-gc", "bench/function-heap.ts", kind, nats.url, String(requests)],
      { cwd: PROJECT_ROOT, timeout: 300_000 },
    );
    return JSON.parse(stdout.trim()) as HeapFigures;
  };
  const ours = await run("ours");
  const baseline = await run("raw");
  await nats.purge();
  log(`heap after ${requests}: ours ${ours.heapAfterMb} MB, raw ${baseline.heapAfterMb} MB`);
  return { setting: nats.setting, ours, baseline };
}

if (import.meta.filename === process.argv[1]) {
  const [kind, url, requests] = process.argv.slice(2);
  if ((kind !== "ours" && kind !== "raw") || url === undefined) {
    throw new Error("usage: node --expose-gc bench/function-heap.ts ours|raw <NATS_URL> <n>");
  }
  console.log(JSON.stringify(await inChild(kind, url, Number(requests ?? 100_000))));
  process.exit(0);
}
