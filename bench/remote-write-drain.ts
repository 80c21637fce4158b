/**
 * `npm run bench -- --only remote-write-drain` (or `node bench/remote-write-drain.ts` alone):
 * the worker draining a backlog of a million samples into VictoriaMetrics
 * (`DATABASE_URL=remote-write+http://…`), into SQLite and into PostgreSQL, beside
 * VictoriaMetrics ingesting the same samples posted directly by a bare remote-write client
 * (pre-encoded requests, 4 at once; the median of three posts), in the same run, against the
 * same VictoriaMetrics; and the worker's peak RSS. Each drain is run twice over: on the JSON
 * API's messages (version 3, keyed by message) and on an agent's (version 4, keyed by series,
 * as the edge publishes a remote-write batch), 100 samples a message. The worker's clock runs from its first delivery
 * to the consumer having nothing pending or unacked (its process's start-up is reported beside
 * it, as `withStartSeconds`). Every sample is read back from where it went.
 * `BENCH_QUICK=1` drains a tenth; `BENCH_CPU_PROF=<dir>` profiles each worker;
 * `BENCH_DRAINS=victoriametrics:agent,sqlite:json` runs only those drains.
 * Goals: into VictoriaMetrics ≥ 0.5 × direct with peak RSS ≤ 200 MB (issue 16); into SQLite
 * ≥ 0.25 × and PostgreSQL ≥ 0.15 × direct (issue 17's worker goals).
 */
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeEnvelope } from "../shared/envelope.ts";
import { encodeSeriesMessagesV4 } from "../test/helpers/envelope-v4-by-metric.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { startVictoriaMetrics, type Receiver } from "../test/helpers/receivers.ts";
import { encodeWriteRequest, remoteWriteHeaders } from "../worker/remote-write-request.ts";
import { drainWithWorker } from "./processes.ts";
import { log, median, QUICK, round, startBenchNats, type BenchNats } from "./support.ts";
import { countRows, freshDatabase } from "./worker-drain.ts";

const PER_MESSAGE = 100;
const MESSAGES = QUICK ? 1000 : 10_000;
const SAMPLES = MESSAGES * PER_MESSAGE;
const HOSTS = 8;
/** Times the samples are posted directly: the figure is the median. */
const DIRECT_ROUNDS = 3;
const BASE_MS = Date.parse("2026-11-01T00:00:00Z");

export type DrainTarget = "victoriametrics" | "sqlite" | "postgres";
/** The JSON API's messages (version 3) or an agent's (version 4). */
export type DrainMessages = "json" | "agent";
const TARGETS: readonly DrainTarget[] = ["victoriametrics", "sqlite", "postgres"];
const KINDS: readonly DrainMessages[] = ["json", "agent"];

/** Message `m` as the JSON API publishes it, or as the edge publishes an agent's batch. */
function messageOf(
  kind: DrainMessages,
  run: string,
  m: number,
  metrics: readonly Metric[],
): { id: string; data: Uint8Array } {
  if (kind === "json") {
    const id = `${run}-${m}`;
    return { id, data: encodeEnvelope({ id, receivedAt: Date.now(), key: "message", metrics }) };
  }
  const [message, ...rest] = runToEnd(encodeSeriesMessagesV4(metrics, Date.now(), 1024 * 1024));
  if (message === undefined || rest.length > 0) throw new Error("not one message");
  return message;
}

/** Sample `i` of message `m`: its series (by host) and a timestamp unique in that series. */
const pointOf = (m: number, i: number) => ({
  host: `web-${i % HOSTS}`,
  timestamp: BASE_MS + m * PER_MESSAGE + i,
  value: (m * PER_MESSAGE + i) % 997,
});

/** The backlog of `kind` messages, its samples labelled `run`. */
async function fill(nats: BenchNats, kind: DrainMessages, run: string): Promise<void> {
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
          tags: { host: p.host, run },
        };
      });
      const { id, data } = messageOf(kind, run, m, metrics);
      await js.publish(kind === "json" ? "metrics.json" : "metrics.prometheus", data, {
        msgID: id,
      });
    }
  }
  await Promise.all(Array.from({ length: 256 }, lane));
}

/**
 * The same samples as remote-write requests of 10,000 samples, encoded before the clock starts,
 * labelled `run`.
 */
function directRequests(run: string): Uint8Array[] {
  const requests: Uint8Array[] = [];
  const messagesPerRequest = 100;
  for (let first = 0; first < MESSAGES; first += messagesPerRequest) {
    const series = new Map<string, { timestamps: number[]; values: number[] }>();
    for (let m = first; m < Math.min(MESSAGES, first + messagesPerRequest); m++) {
      for (let i = 0; i < PER_MESSAGE; i++) {
        const p = pointOf(m, i);
        let samples = series.get(p.host);
        if (samples === undefined) series.set(p.host, (samples = { timestamps: [], values: [] }));
        samples.timestamps.push(p.timestamp);
        samples.values.push(p.value);
      }
    }
    const timeseries = [...series].map(([host, samples]) => ({
      labels: [
        { name: "__name__", value: "bench_cpu" },
        { name: "host", value: host },
        { name: "run", value: run },
      ],
      ...samples,
    }));
    requests.push(encodeWriteRequest(timeseries));
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

export interface WorkerDrain {
  readonly target: DrainTarget;
  readonly messages: DrainMessages;
  /** From the worker's first delivery to the last ack. */
  readonly seconds: number;
  readonly samplesPerSecond: number;
  /** From starting the worker's process to the last ack. */
  readonly withStartSeconds: number;
  readonly peakRssMb: number;
}

export interface RemoteWriteDrainRow {
  readonly samples: number;
  readonly drains: readonly WorkerDrain[];
  readonly direct: {
    /** The median round's. */
    readonly seconds: number;
    readonly samplesPerSecond: number;
    /** Each round's seconds, in order. */
    readonly roundsSeconds?: readonly number[];
  };
}

/** The drains `BENCH_DRAINS` names (`target:messages`, comma-separated), else all six. */
function drainsWanted(): { target: DrainTarget; messages: DrainMessages }[] {
  const all = TARGETS.flatMap((target) => KINDS.map((messages) => ({ target, messages })));
  const named = process.env["BENCH_DRAINS"]?.split(",");
  if (named === undefined) return all;
  const wanted = all.filter((d) => named.includes(`${d.target}:${d.messages}`));
  if (wanted.length !== named.length)
    throw new Error(`BENCH_DRAINS: unknown drain in ${named.join(",")}`);
  return wanted;
}

async function drainInto(
  nats: BenchNats,
  vm: Receiver,
  target: DrainTarget,
  messages: DrainMessages,
): Promise<WorkerDrain> {
  await nats.purge();
  // A label of its own per drain: message ids derive from it, and the stream would drop the
  // messages of a second drain as duplicates of the first's.
  const run = `${target}-${messages}`;
  await fill(nats, messages, run);
  const database =
    target === "victoriametrics"
      ? { url: `remote-write+${vm.writeUrl}`, drop: () => Promise.resolve() }
      : await freshDatabase(target);
  try {
    const drain = await drainWithWorker(nats, { DATABASE_URL: database.url });
    const stored =
      target === "victoriametrics" ? await storedSamples(vm, run) : await countRows(database.url);
    if (stored !== SAMPLES) {
      throw new Error(`${target} holds ${stored} of the ${SAMPLES} samples drained (${messages})`);
    }
    const row = {
      target,
      messages,
      seconds: round(drain.seconds, 2),
      samplesPerSecond: round(SAMPLES / drain.seconds),
      withStartSeconds: round(drain.withStartSeconds, 2),
      peakRssMb: drain.peakRssMb,
    };
    log(
      `drain into ${target} (${messages} messages): ${row.samplesPerSecond}/s, ${row.peakRssMb} MB`,
    );
    return row;
  } finally {
    await database.drop();
  }
}

/** The drains asked for, then the same samples posted to VictoriaMetrics directly. */
export async function measureRemoteWriteDrain(nats: BenchNats): Promise<RemoteWriteDrainRow> {
  const vm = await startVictoriaMetrics();
  try {
    const drains: WorkerDrain[] = [];
    for (const { target, messages } of drainsWanted()) {
      drains.push(await drainInto(nats, vm, target, messages));
    }
    // A direct post lasts a fraction of a second, and one alone moved twofold from run to run:
    // the median of three, each under a label of its own.
    const rounds: number[] = [];
    for (let r = 1; r <= DIRECT_ROUNDS; r++) {
      const run = `direct-${r}`;
      rounds.push(await postDirect(vm, directRequests(run)));
      const stored = await storedSamples(vm, run);
      if (stored !== SAMPLES) {
        throw new Error(
          `VictoriaMetrics holds ${stored} of the ${SAMPLES} samples posted directly`,
        );
      }
    }
    const directSeconds = median(rounds);
    const direct = {
      seconds: round(directSeconds, 2),
      samplesPerSecond: round(SAMPLES / directSeconds),
      roundsSeconds: rounds.map((seconds) => round(seconds, 3)),
    };
    log(`VictoriaMetrics directly: ${direct.samplesPerSecond}/s (median of ${DIRECT_ROUNDS})`);
    return { samples: SAMPLES, drains, direct };
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
          ratios: Object.fromEntries(
            row.drains.map((d) => [
              `${d.target}:${d.messages}`,
              round(d.samplesPerSecond / row.direct.samplesPerSecond, 3),
            ]),
          ),
        },
        null,
        2,
      ),
    );
  } finally {
    await nats.stop();
  }
}
