/**
 * Measurement 4: from a POST to its row being visible, at a steady request rate, through the
 * self-hosted server and the worker into SQLite; beside the raw HTTP server and the raw
 * consume → insert → ack loop under the same schedule. Each request's metric is a series of its
 * own, tagged with the request's Idempotency-Key; the benchmark reads the database every 2 ms
 * and notes when each one appears (so a figure can be up to 2 ms late).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { startHttpProcess, startProcess } from "./processes.ts";
import { log, percentiles, QUICK, round, type BenchNats } from "./support.ts";

export interface EndToEndFigures {
  readonly requests: number;
  readonly achievedRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Of the same requests, the time to their 202 alone. */
  readonly answerP50Ms: number;
  readonly answerP99Ms: number;
}

export interface EndToEndRow {
  readonly setting: string;
  readonly rate: number;
  readonly seconds: number;
  readonly ours: EndToEndFigures;
  readonly baseline: EndToEndFigures;
}

export async function run(
  nats: BenchNats,
  serverScript: string,
  drainScript: string,
  rate: number,
  seconds: number,
): Promise<EndToEndFigures> {
  await nats.purge();
  const dir = await mkdtemp(join(tmpdir(), "bench-e2e-"));
  const file = join(dir, "metrics.db");
  const env = { NATS_URL: nats.url, DATABASE_URL: `sqlite:${file}`, INGEST_AUTH: "none" };
  const drain = startProcess(drainScript, { ...env, WORKER_HTTP_PORT: "0" });
  const server = await startHttpProcess(serverScript, env);
  try {
    for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(50);
    // A busy timeout: the worker's migration, or a commit, may hold the lock for a moment.
    const db = new DatabaseSync(file, { readOnly: true, timeout: 10_000 });
    for (let i = 0; i < 200; i++) {
      try {
        db.prepare("SELECT 1 FROM metrics LIMIT 1").all();
        break;
      } catch {
        await sleep(50); // the table is not made yet
      }
    }
    // One series a request (a new series id each, read in order), tagged with its key.
    const bodyOf = (key: string) =>
      JSON.stringify({ data: { name: "bench.cpu", value: 0.5, tags: { key } } });
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let lastId = 0;
    const select = db.prepare(
      `SELECT series_id AS id, json_extract(tags, '$.key') AS key FROM metrics
       WHERE series_id > ? ORDER BY series_id`,
    );
    const poll = () => {
      const now = performance.now();
      for (const row of select.all(lastId) as { id: number; key: string }[]) {
        lastId = row.id;
        const t0 = sentAt.get(row.key);
        if (t0 !== undefined) latencies.push(now - t0);
      }
    };
    // Both processes ready and warm: 200 requests, all of them visible, before the clock starts.
    const warm = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${server.base}/api/v1/metrics`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": `warm-${i}` },
          body: bodyOf(`warm-${i}`),
        }).then((res) => res.arrayBuffer()),
      ),
    );
    for (let i = 0; i < 1500 && lastId < warm.length; i++) {
      poll();
      await sleep(10);
    }
    const total = rate * seconds;
    const run = `${Date.now()}`;
    const failures: string[] = [];
    const answers: number[] = [];
    const inFlight: Promise<void>[] = [];
    const start = performance.now();
    // Open loop: request i leaves at start + i / rate, whether or not earlier ones answered.
    for (let i = 0; i < total;) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      for (; i < due; i++) {
        const key = `${run}-${i}`;
        sentAt.set(key, performance.now());
        inFlight.push(
          fetch(`${server.base}/api/v1/metrics`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": key },
            body: bodyOf(key),
          }).then(async (res) => {
            if (res.status !== 202) failures.push(`${res.status}`);
            await res.arrayBuffer();
            answers.push(performance.now() - (sentAt.get(key) ?? NaN));
          }),
        );
      }
      poll();
      await sleep(2);
    }
    const sendSeconds = (performance.now() - start) / 1000;
    await Promise.all(inFlight);
    const deadline = performance.now() + 30_000;
    while (latencies.length < total - failures.length && performance.now() < deadline) {
      poll();
      await sleep(2);
    }
    db.close();
    if (failures.length > 0) throw new Error(`${failures.length} requests failed`);
    if (latencies.length < total) throw new Error(`${total - latencies.length} rows never seen`);
    return {
      requests: total,
      achievedRate: round(total / sendSeconds),
      ...percentiles(latencies),
      maxMs: round(Math.max(...latencies), 1),
      answerP50Ms: percentiles(answers).p50Ms,
      answerP99Ms: percentiles(answers).p99Ms,
    };
  } finally {
    await server.stop();
    await drain.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function measureEndToEnd(nats: BenchNats, rate = 1000): Promise<EndToEndRow> {
  const seconds = QUICK ? 3 : 10;
  const ours = await run(nats, "server/main.ts", "worker/main.ts", rate, seconds);
  const baseline = await run(nats, "bench/raw-http-server.ts", "bench/raw-drain.ts", rate, seconds);
  log(
    `end to end ${rate}/s: ours p50 ${ours.p50Ms} p99 ${ours.p99Ms} ms, raw p50 ${baseline.p50Ms} p99 ${baseline.p99Ms} ms`,
  );
  return { setting: nats.setting, rate, seconds, ours, baseline };
}
