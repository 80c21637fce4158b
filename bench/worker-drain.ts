/**
 * Measurements 3 and 6 (worker): a backlog of a million metrics in the stream, drained by the
 * worker process (`node worker/main.ts`) into SQLite and into PostgreSQL, beside a raw
 * consume → insert → ack loop (bench/raw-drain.ts) on the same backlog; and each one's peak RSS.
 * The clock runs from starting the process to the consumer having nothing pending or unacked:
 * process start and connecting are included for both.
 *
 * Each drain takes 4 to 10 s, and on this shared machine a few seconds of someone else's load
 * moved one side of a ratio by a third. So ours and the baseline take turns, DRAIN_ROUNDS times,
 * and each keeps its faster drain; its peak RSS is the larger of its drains'.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { encodeEnvelope } from "../shared/envelope.ts";
import { createTestDatabase } from "../test/helpers/postgres.ts";
import { startProcess } from "./processes.ts";
import { log, QUICK, round, type BenchNats } from "./support.ts";

export interface DrainFigures {
  readonly seconds: number;
  readonly metricsPerSecond: number;
  readonly peakRssMb: number;
  readonly rows: number;
}

export interface DrainRow {
  readonly setting: string;
  readonly store: "sqlite" | "postgres";
  readonly messages: number;
  readonly metricsPerMessage: number;
  readonly ours: DrainFigures;
  readonly baseline: DrainFigures;
}

/** Publishes `messages` envelopes of `perMessage` metrics, 256 awaited acks in flight. */
async function fill(nats: BenchNats, messages: number, perMessage: number): Promise<void> {
  const js = nats.nc.jetstream();
  // Each message one sample of `perMessage` series, a millisecond after the previous message's:
  // a sample's identity is its series and time, so every metric is a sample of its own.
  const tags = Array.from({ length: perMessage }, (_, i) => ({
    host: `web-${i % 8}`,
    core: String(i),
  }));
  const start = Date.now() - messages;
  const run = `${Date.now()}`;
  let next = 0;
  async function lane() {
    while (next < messages) {
      const n = next++;
      const id = `${run}-${n}`;
      const data = encodeEnvelope({
        id,
        receivedAt: Date.now(),
        key: "message",
        metrics: tags.map((t, i) => ({
          name: "bench.cpu",
          value: i + 0.5,
          timestamp: start + n,
          tags: t,
        })),
      });
      await js.publish("metrics.json", data, { msgID: id });
    }
  }
  await Promise.all(Array.from({ length: 256 }, lane));
}

async function drained(nats: BenchNats, deadlineMs: number): Promise<void> {
  const jsm = await nats.nc.jetstreamManager();
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline) {
    const info = await jsm.consumers.info("METRICS", "metrics-worker");
    if (info.num_pending === 0 && info.num_ack_pending === 0) return;
    await sleep(50);
  }
  throw new Error(`the backlog was not drained within ${deadlineMs / 1000} s`);
}

export async function countRows(databaseUrl: string): Promise<number> {
  if (databaseUrl.startsWith("sqlite:")) {
    const db = new DatabaseSync(databaseUrl.slice("sqlite:".length), { readOnly: true });
    try {
      return Number(
        (db.prepare("SELECT count(*) AS n FROM metrics").get() as { n: number | bigint }).n,
      );
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM metrics");
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database of the kind asked for, and what removes it. */
export async function freshDatabase(
  kind: "sqlite" | "postgres",
): Promise<{ url: string; drop: () => Promise<void> }> {
  if (kind === "postgres") return createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), "bench-sqlite-"));
  return {
    url: `sqlite:${join(dir, "metrics.db")}`,
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

async function drainOnce(
  nats: BenchNats,
  script: string,
  kind: "sqlite" | "postgres",
  messages: number,
  perMessage: number,
): Promise<DrainFigures> {
  await nats.purge();
  await fill(nats, messages, perMessage);
  const database = await freshDatabase(kind);
  try {
    const start = performance.now();
    const proc = startProcess(script, {
      NATS_URL: nats.url,
      DATABASE_URL: database.url,
      WORKER_HTTP_PORT: "0",
    });
    let peakRssMb;
    try {
      await drained(nats, 600_000);
      peakRssMb = proc.peakRssMb();
    } finally {
      await proc.stop();
    }
    const seconds = (performance.now() - start) / 1000;
    const rows = await countRows(database.url);
    const metrics = messages * perMessage;
    if (rows !== metrics) throw new Error(`${script} stored ${rows} rows of ${metrics}`);
    return {
      seconds: round(seconds, 2),
      metricsPerSecond: round(metrics / seconds),
      peakRssMb,
      rows,
    };
  } finally {
    await database.drop();
  }
}

/** Drains per side, taking turns (1 in a BENCH_QUICK run). */
const DRAIN_ROUNDS = QUICK ? 1 : 2;

/** The faster drain's figures, with the larger peak RSS of all of them. */
function best(drains: readonly DrainFigures[]): DrainFigures {
  const fastest = drains.reduce((a, b) => (b.metricsPerSecond > a.metricsPerSecond ? b : a));
  return { ...fastest, peakRssMb: Math.max(...drains.map((d) => d.peakRssMb)) };
}

export async function measureWorkerDrain(
  nats: BenchNats,
  cases: readonly { store: "sqlite" | "postgres"; messages: number; metricsPerMessage: number }[],
): Promise<DrainRow[]> {
  const rows: DrainRow[] = [];
  for (const c of cases) {
    const ourDrains: DrainFigures[] = [];
    const rawDrains: DrainFigures[] = [];
    for (let round = 0; round < DRAIN_ROUNDS; round++) {
      ourDrains.push(
        await drainOnce(nats, "worker/main.ts", c.store, c.messages, c.metricsPerMessage),
      );
      rawDrains.push(
        await drainOnce(nats, "bench/raw-drain.ts", c.store, c.messages, c.metricsPerMessage),
      );
    }
    const ours = best(ourDrains);
    const baseline = best(rawDrains);
    log(
      `drain ${nats.setting} ${c.store} ${c.messages}×${c.metricsPerMessage}: ours ${ours.metricsPerSecond}/s (${ours.peakRssMb} MB), raw ${baseline.metricsPerSecond}/s (${baseline.peakRssMb} MB)`,
    );
    rows.push({
      setting: nats.setting,
      store: c.store,
      messages: c.messages,
      metricsPerMessage: c.metricsPerMessage,
      ours,
      baseline,
    });
  }
  return rows;
}
