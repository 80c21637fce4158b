/**
 * What every measurement shares: the nats-server of a run and its two settings, request bodies,
 * a bounded closed-loop load runner and latency percentiles.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "nats";
import { ensureStreams } from "../shared/stream-setup.ts";
import { testConfig } from "../test/helpers/ingest.ts";
import { startNatsServer, type NatsServer } from "../test/helpers/nats-server.ts";
import { PROJECT_ROOT } from "../test/helpers/processes.ts";

/**
 * The nats-server 2.10 that `scripts/get-nats-server.sh` fetches, fetched when missing (unless
 * NATS_SERVER_BIN names another): the server production runs, not Debian 12's 2.9.10 on the
 * PATH, whose figures differ (a worker's pulls from it once drained ~27× slower).
 */
const TOOLS_NATS = join(PROJECT_ROOT, ".tools", "nats-server", "nats-server");
if (process.env["NATS_SERVER_BIN"] === undefined) {
  if (!existsSync(TOOLS_NATS)) {
    execFileSync("bash", [join(PROJECT_ROOT, "scripts", "get-nats-server.sh")], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  process.env["NATS_SERVER_BIN"] = TOOLS_NATS;
}

/** The two JetStream settings compared: the server's default, and an fsync of every write. */
export const NATS_SETTINGS = {
  default: "jetstream { } (sync_interval default: 2 min, no fsync per write)",
  durable: "jetstream { sync_interval: always } (fsync of every write before the ack)",
} as const;
export type NatsSetting = keyof typeof NATS_SETTINGS;

export interface BenchNats {
  readonly server: NatsServer;
  readonly url: string;
  readonly setting: NatsSetting;
  /** A connection of the benchmark's own, for baselines, setup and checks. */
  readonly nc: NatsConnection;
  /** Removes every message of the metrics stream, so that each measurement starts empty. */
  purge(): Promise<void>;
  stop(): Promise<void>;
}

/** A private nats-server with the streams and consumer of the default configuration. */
export async function startBenchNats(setting: NatsSetting): Promise<BenchNats> {
  const confDir = await mkdtemp(join(tmpdir(), "bench-nats-"));
  const conf = join(confDir, "nats.conf");
  await writeFile(conf, setting === "durable" ? "jetstream { sync_interval: always }\n" : "");
  const server = await startNatsServer(["-c", conf]);
  const nc = await connect({ servers: server.url });
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, testConfig(server.url));
  return {
    server,
    url: server.url,
    setting,
    nc,
    async purge() {
      await jsm.streams.purge("METRICS");
    },
    async stop() {
      await nc.close();
      await server.stop();
      await rm(confDir, { recursive: true, force: true });
    },
  };
}

/** A JSON request body of `n` metrics, each with a name, a value and a tag. */
export function jsonBody(n: number): string {
  const data = Array.from({ length: n }, (_, i) => ({
    name: "bench.cpu",
    value: i + 0.5,
    tags: { host: `web-${i % 8}` },
  }));
  return JSON.stringify({ data: n === 1 ? data[0] : data });
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Calls `send` from `concurrency` lanes, each awaiting its previous call, until `maxRequests`
 * calls were made or `durationMs` passed, after `warmUp` calls that are not counted.
 */
export async function closedLoop(
  send: (i: number) => Promise<void>,
  options: { concurrency: number; durationMs: number; maxRequests: number; warmUp?: number },
): Promise<LoadResult> {
  const warmUp = options.warmUp ?? Math.min(200, options.concurrency * 4);
  for (let i = 0; i < warmUp; i += options.concurrency) {
    await Promise.all(Array.from({ length: options.concurrency }, (_, k) => send(i + k)));
  }
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  const deadline = start + options.durationMs;
  async function lane() {
    while (next < options.maxRequests && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      await send(warmUp + i);
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  const seconds = (performance.now() - start) / 1000;
  return {
    requests: latencies.length,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    ...percentiles(latencies),
  };
}

/** p50 and p99 of a list of durations in milliseconds (nearest rank). */
export function percentiles(values: readonly number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return { p50Ms: round(at(0.5) ?? NaN, 2), p99Ms: round(at(0.99) ?? NaN, 2) };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 === 1
    ? (sorted[Math.floor(mid)] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Scale of the run: `BENCH_QUICK=1` for short development runs, the full run otherwise. */
export const QUICK = process.env["BENCH_QUICK"] === "1";

export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}
