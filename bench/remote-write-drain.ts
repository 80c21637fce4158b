/**
 * `npm run bench -- --only remote-write-drain` (or `node bench/remote-write-drain.ts` alone):
 * the worker draining a backlog of a million samples into
 * VictoriaMetrics (`DATABASE_URL=remote-write+http://…`), beside VictoriaMetrics ingesting the
 * same samples posted directly by a bare remote-write client (pre-encoded requests, 4 at once),
 * in the same run, against the same VictoriaMetrics; and the worker's peak RSS. The worker's
 * clock runs from its first delivery to the consumer having nothing pending or unacked (its
 * process's start-up, ~0.3 s, is reported beside it, as `withStartSeconds`).
 * `BENCH_QUICK=1` drains a tenth; `BENCH_CPU_PROF=<dir>` profiles the worker. Goals: worker ≥ 0.5 × direct, peak RSS ≤ 200 MB.
 * `BENCH_ENVELOPE=3` or `4` fills the stream with series-keyed messages of that version, as
 * the edge publishes a remote-write batch, instead of the JSON API's (version 3, keyed by message).
 */
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { compress } from "snappyjs";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeEnvelope } from "../shared/envelope.ts";
import { encodeSeriesMessages } from "../shared/envelope-encoder.ts";
import { encodeSeriesMessagesV4 } from "../shared/envelope-v4-encoder.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { WriteRequestSchema } from "../shared/gen/proto/prometheus/remote_pb.js";
import { startVictoriaMetrics, type Receiver } from "../test/helpers/receivers.ts";
import { remoteWriteHeaders } from "../worker/remote-write-request.ts";
import { drainWithWorker } from "./processes.ts";
import { log, QUICK, round, startBenchNats, type BenchNats } from "./support.ts";

const PER_MESSAGE = 100;
const MESSAGES = QUICK ? 1000 : 10_000;
const SAMPLES = MESSAGES * PER_MESSAGE;
const HOSTS = 8;
const BASE_MS = Date.parse("2026-11-01T00:00:00Z");
const ENVELOPE = process.env["BENCH_ENVELOPE"];

/** Message `m` as the JSON API publishes it, or as the edge publishes an agent's batch. */
function messageOf(m: number, metrics: readonly Metric[]): { id: string; data: Uint8Array } {
  if (ENVELOPE === undefined) {
    const id = `rw-${m}`;
    return { id, data: encodeEnvelope({ id, receivedAt: Date.now(), key: "message", metrics }) };
  }
  const encode = ENVELOPE === "4" ? encodeSeriesMessagesV4 : encodeSeriesMessages;
  const [message, ...rest] = runToEnd(encode(metrics, Date.now(), 1024 * 1024));
  if (message === undefined || rest.length > 0) throw new Error("not one message");
  return message;
}

/** Sample `i` of message `m`: its series (by host) and a timestamp unique in that series. */
const pointOf = (m: number, i: number) => ({
  host: `web-${i % HOSTS}`,
  timestamp: BASE_MS + m * PER_MESSAGE + i,
  value: (m * PER_MESSAGE + i) % 997,
});

async function fill(nats: BenchNats): Promise<void> {
  const js = nats.nc.jetstream();
  let next = 0;
  async function lane() {
    while (next < MESSAGES) {
      const m = next++;
      const metrics = Array.from({ length: PER_MESSAGE }, (_, i) => {
        const p = pointOf(m, i);
        return {
          name: "bench_cpu",
          value: p.value,
          timestamp: p.timestamp,
          tags: { host: p.host, run: "worker" },
        };
      });
      const { id, data } = messageOf(m, metrics);
      await js.publish(ENVELOPE === undefined ? "metrics.json" : "metrics.prometheus", data, {
        msgID: id,
      });
    }
  }
  await Promise.all(Array.from({ length: 256 }, lane));
}

/** The same samples as remote-write requests of 10,000 samples, encoded before the clock starts. */
function directRequests(): Uint8Array[] {
  const requests: Uint8Array[] = [];
  const messagesPerRequest = 100;
  for (let first = 0; first < MESSAGES; first += messagesPerRequest) {
    const series = new Map<string, { value: number; timestamp: bigint }[]>();
    for (let m = first; m < Math.min(MESSAGES, first + messagesPerRequest); m++) {
      for (let i = 0; i < PER_MESSAGE; i++) {
        const p = pointOf(m, i);
        let samples = series.get(p.host);
        if (samples === undefined) series.set(p.host, (samples = []));
        samples.push({ value: p.value, timestamp: BigInt(p.timestamp) });
      }
    }
    const timeseries = [...series].map(([host, samples]) => ({
      labels: [
        { name: "__name__", value: "bench_cpu" },
        { name: "host", value: host },
        { name: "run", value: "direct" },
      ],
      samples,
    }));
    requests.push(
      compress(toBinary(WriteRequestSchema, create(WriteRequestSchema, { timeseries }))),
    );
  }
  return requests;
}

async function postDirect(vm: Receiver, requests: readonly Uint8Array[]): Promise<number> {
  const headers = remoteWriteHeaders("bench-direct");
  let next = 0;
  const start = performance.now();
  async function lane() {
    while (next < requests.length) {
      const body = requests[next++] ?? new Uint8Array();
      const res = await fetch(vm.writeUrl, { method: "POST", headers, body });
      if (res.status >= 300)
        throw new Error(`VictoriaMetrics answered ${res.status}: ${await res.text()}`);
    }
  }
  await Promise.all(Array.from({ length: 4 }, lane));
  return (performance.now() - start) / 1000;
}

/** Samples VictoriaMetrics holds for `run`: all of them, or what it held after a minute. */
async function storedSamples(vm: Receiver, run: string): Promise<number> {
  let n = 0;
  for (let tries = 0; tries < 60 && n < SAMPLES; tries++) {
    const url = new URL("/api/v1/query", vm.base);
    url.searchParams.set("query", `sum(count_over_time(bench_cpu{run="${run}"}[30d]))`);
    url.searchParams.set("time", String((BASE_MS + 20 * 86_400_000) / 1000));
    const body = (await (await fetch(url)).json()) as {
      data: { result: { value: [number, string] }[] };
    };
    n = Number(body.data.result[0]?.value[1] ?? 0);
    if (n < SAMPLES) await sleep(1000);
  }
  return n;
}

export interface RemoteWriteDrainRow {
  readonly samples: number;
  readonly worker: {
    /** From the worker's first delivery to the last ack. */
    readonly seconds: number;
    readonly samplesPerSecond: number;
    /** From starting the worker's process to the last ack. */
    readonly withStartSeconds: number;
    readonly peakRssMb: number;
    readonly stored: number;
  };
  readonly direct: {
    readonly seconds: number;
    readonly samplesPerSecond: number;
    readonly stored: number;
  };
}

/** One drain into a VictoriaMetrics of its own, then the same samples posted to it directly. */
export async function measureRemoteWriteDrain(nats: BenchNats): Promise<RemoteWriteDrainRow> {
  await nats.purge();
  const vm = await startVictoriaMetrics();
  try {
    await fill(nats);
    const drain = await drainWithWorker(nats, { DATABASE_URL: `remote-write+${vm.writeUrl}` });
    const workerSeconds = drain.seconds;
    const { peakRssMb, withStartSeconds } = drain;
    const directSeconds = await postDirect(vm, directRequests());
    const row = {
      samples: SAMPLES,
      worker: {
        seconds: round(workerSeconds, 2),
        samplesPerSecond: round(SAMPLES / workerSeconds),
        withStartSeconds: round(withStartSeconds, 2),
        peakRssMb,
        stored: await storedSamples(vm, "worker"),
      },
      direct: {
        seconds: round(directSeconds, 2),
        samplesPerSecond: round(SAMPLES / directSeconds),
        stored: await storedSamples(vm, "direct"),
      },
    };
    for (const side of ["worker", "direct"] as const) {
      if (row[side].stored !== SAMPLES) {
        throw new Error(
          `VictoriaMetrics holds ${row[side].stored} of the ${side} side's ${SAMPLES} samples`,
        );
      }
    }
    log(
      `remote-write drain: worker ${row.worker.samplesPerSecond}/s (${peakRssMb} MB), direct ${row.direct.samplesPerSecond}/s`,
    );
    return row;
  } finally {
    await vm.close();
  }
}

if (import.meta.main) {
  const nats = await startBenchNats("default");
  try {
    const row = await measureRemoteWriteDrain(nats);
    console.log(
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: `${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${round(totalmem() / 2 ** 30, 1)} GiB`,
          ...row,
          ratio: round(row.worker.samplesPerSecond / row.direct.samplesPerSecond, 2),
        },
        null,
        2,
      ),
    );
  } finally {
    await nats.stop();
  }
}
