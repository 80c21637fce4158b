/**
 * What the store benchmarks share: batches cut as the worker cuts them, the PostgreSQL store's
 * settings, and the machine line their results are recorded with.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { JsMsg } from "nats";
import { ConfigEnv } from "../shared/config-schema.ts";
import { encodeEnvelope, type Envelope } from "../shared/envelope.ts";
import type { Config } from "../shared/config.ts";
import { BATCH_BYTES, batchLength } from "../worker/held-messages.ts";

/** WORKER_BATCH_SIZE as the worker reads it: the environment's, else the default. */
export const WORKER_BATCH_SIZE = Number(
  process.env["WORKER_BATCH_SIZE"] ?? ConfigEnv.properties.WORKER_BATCH_SIZE.default,
);

/**
 * The envelopes in the batches a worker would take them in from a full backlog: at most
 * WORKER_BATCH_SIZE messages and BATCH_BYTES of their encoded bytes a batch
 * (worker/held-messages.ts). Lazy, so that a writer can draw batches for as long as it runs.
 */
export function* workerBatches(envelopes: Iterable<Envelope>): Generator<Envelope[]> {
  const queue: { envelope: Envelope; data: Uint8Array }[] = [];
  let bytes = 0;
  const source = envelopes[Symbol.iterator]();
  for (;;) {
    while (queue.length <= WORKER_BATCH_SIZE && bytes <= BATCH_BYTES) {
      const next = source.next();
      if (next.done === true) break;
      const data = encodeEnvelope(next.value);
      queue.push({ envelope: next.value, data });
      bytes += data.byteLength;
    }
    if (queue.length === 0) return;
    const taken = queue.splice(0, batchLength(queue as unknown as JsMsg[], WORKER_BATCH_SIZE));
    for (const m of taken) bytes -= m.data.byteLength;
    yield taken.map((m) => m.envelope);
  }
}

/** The PostgreSQL store's settings for a benchmark database: the worker's defaults. */
export function postgresDatabase(url: string): Config["database"] {
  const env = ConfigEnv.properties;
  return {
    url,
    pgPoolMax: Number(env.PG_POOL_MAX.default),
    pgStatementTimeoutMs: 600_000,
    pgSsl: "disable",
    pgSslCa: undefined,
    retentionMs: undefined,
  };
}

/** `nproc`, the CPU model and the time, for the line a result is recorded with. */
export function machineLine(): string {
  const nproc = execFileSync("nproc", { encoding: "utf8" }).trim();
  const model =
    /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return `${new Date().toISOString()}, nproc ${nproc}, ${model}, load average ${load}, Node ${process.version}`;
}

export const perSecond = (samples: number, ms: number) => Math.round(samples / (ms / 1000));
