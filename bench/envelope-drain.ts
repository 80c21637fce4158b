/**
 * `node bench/envelope-drain.ts`: the worker process draining the same backlog of agent
 * messages into SQLite, written as envelope version 3 (JSON) and as version 4 (JSON columns),
 * the two taking turns `ROUNDS` times. The backlog is what the edge publishes for remote-write
 * batches of 100 samples (8 series, a sample per millisecond); `BENCH_QUICK=1` drains 100,000
 * samples, else 1,000,000. The clock runs from starting the process to the consumer having
 * nothing pending or unacked.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeSeriesMessages } from "../shared/envelope-encoder.ts";
import { encodeSeriesMessagesV4 } from "../test/helpers/envelope-v4-by-metric.ts";
import { drainWithWorker } from "./processes.ts";
import { QUICK, round, startBenchNats, type BenchNats } from "./support.ts";

const PER_MESSAGE = 100;
const MESSAGES = QUICK ? 1000 : 10_000;
const ROUNDS = 2;
const BASE_MS = Date.parse("2026-11-01T00:00:00Z");
const ENCODERS = { 3: encodeSeriesMessages, 4: encodeSeriesMessagesV4 } as const;

/** Drains so far: each fills with samples of its own, which JetStream's duplicate window keeps. */
let drains = 0;

async function fill(nats: BenchNats, version: 3 | 4): Promise<number> {
  const js = nats.nc.jetstream();
  const base = BASE_MS + drains++ * MESSAGES * PER_MESSAGE;
  const tags = Array.from({ length: 8 }, (_, h) => ({ host: `web-${h}`, run: "drain" }));
  let next = 0;
  let bytes = 0;
  async function lane() {
    while (next < MESSAGES) {
      const m = next++;
      const metrics = Array.from({ length: PER_MESSAGE }, (_, i) => ({
        name: "bench_cpu",
        value: (m * PER_MESSAGE + i) % 997,
        timestamp: base + m * PER_MESSAGE + i,
        tags: tags[i % 8] as Record<string, string>,
      }));
      const [message] = runToEnd(ENCODERS[version](metrics, Date.now(), 1024 * 1024));
      if (message === undefined) throw new Error("no message");
      bytes += message.data.byteLength;
      await js.publish("metrics.prometheus", message.data, { msgID: message.id });
    }
  }
  await Promise.all(Array.from({ length: 256 }, lane));
  return bytes;
}

async function drainOnce(nats: BenchNats, version: 3 | 4) {
  await nats.purge();
  const bytes = await fill(nats, version);
  const dir = await mkdtemp(join(tmpdir(), "bench-envelope-"));
  const file = join(dir, "metrics.db");
  try {
    const { seconds, peakRssMb } = await drainWithWorker(nats, { DATABASE_URL: `sqlite:${file}` });
    const db = new DatabaseSync(file, { readOnly: true });
    const rows = Number(
      (db.prepare("SELECT count(*) AS n FROM metrics").get() as { n: number | bigint }).n,
    );
    db.close();
    return {
      version,
      seconds: round(seconds, 2),
      samplesPerSecond: round(rows / seconds),
      bytesPerMessage: round(bytes / MESSAGES),
      peakRssMb,
      rows,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const nats = await startBenchNats("default");
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const version of [3, 4] as const) {
      console.log(
        JSON.stringify({ date: new Date().toISOString(), ...(await drainOnce(nats, version)) }),
      );
    }
  }
} finally {
  await nats.stop();
}
