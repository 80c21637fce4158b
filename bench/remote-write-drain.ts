/**
 * `npm run bench -- --only remote-write-drain` (or `node bench/remote-write-drain.ts` alone):
 * the worker draining a backlog of a million samples into VictoriaMetrics
 * (`DATABASE_URL=remote-write+http://…`), into SQLite and into PostgreSQL, beside
 * VictoriaMetrics ingesting the same samples posted directly by a bare remote-write client
 * (pre-encoded requests, 4 at once; the median of three posts), in the same run, against the
 * same VictoriaMetrics; and the worker's peak RSS. Each drain is run on three backlogs: the JSON
 * API's messages (version 2, keyed by message, 100 metrics a message), an agent's in messages
 * of 100 samples (version 4, keyed by series, as the edge publishes a remote-write batch), and
 * an agent's in messages of 2,000 samples (the protocol benchmark's bodies, each one message).
 * Before each drain, a backlog of the same kind is pulled and acked by the bare nats.js client
 * as the worker pulls (raw pull: the ceiling of any worker on that client) and, into
 * VictoriaMetrics, sent by a bare loop with the worker's own encoding (raw send; both in
 * bench/raw-pull.ts). Every clock runs from the first delivery to the consumer having nothing
 * pending or unacked (the worker's process start-up is reported beside it, as
 * `withStartSeconds`); each process's CPU time a million samples is reported beside. Every
 * sample is read back from where it went.
 * `BENCH_QUICK=1` drains a tenth; `BENCH_CPU_PROF=<dir>` profiles each worker;
 * `BENCH_DRAINS=victoriametrics:agent,sqlite:json` runs only those drains.
 * Goals: into VictoriaMetrics ≥ 0.5 × direct with peak RSS ≤ 200 MB (issue 16); into SQLite
 * ≥ 0.25 × and PostgreSQL ≥ 0.15 × direct (issue 17's worker goals).
 */
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { JsMsg } from "nats";
import { runToEnd } from "../shared/cooperative.ts";
import { decodeMessage, encodeEnvelope } from "../shared/envelope.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { encodeSeriesMessagesV4 } from "../test/helpers/envelope-v4-by-metric.ts";
import { testConfig } from "../test/helpers/ingest.ts";
import { startVictoriaMetrics, type Receiver } from "../test/helpers/receivers.ts";
import { createReceiverClient, type ReceiverClient } from "../worker/receiver-client.ts";
import { seriesOfMessages } from "../worker/remote-write-labels.ts";
import { encodeWriteRequest, remoteWriteHeaders } from "../worker/remote-write-request.ts";
import { drainWithWorker, treeUsage } from "./processes.ts";
import { pullAndAck } from "./raw-pull.ts";
import { log, median, QUICK, round, startBenchNats, type BenchNats } from "./support.ts";
import { countRows, freshDatabase } from "./worker-drain.ts";

const SAMPLES = QUICK ? 100_000 : 1_000_000;
const HOSTS = 8;
/** Samples in each request posted directly. */
const DIRECT_REQUEST_SAMPLES = 10_000;
/** Times the samples are posted directly: the figure is the median. */
const DIRECT_ROUNDS = 3;
const BASE_MS = Date.parse("2026-11-01T00:00:00Z");

export type DrainTarget = "victoriametrics" | "sqlite" | "postgres";
/** The JSON API's messages (version 2) or an agent's (version 4), and how many samples each. */
export type DrainMessages = "json" | "agent" | "agent-2000";
const TARGETS: readonly DrainTarget[] = ["victoriametrics", "sqlite", "postgres"];
const KINDS: readonly DrainMessages[] = ["json", "agent", "agent-2000"];
const SAMPLES_PER_MESSAGE: Readonly<Record<DrainMessages, number>> = {
  json: 100,
  agent: 100,
  "agent-2000": 2000,
};

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

/** Sample `j`: its series (by host) and a timestamp unique in that series. */
const pointOf = (j: number) => ({
  host: `web-${j % HOSTS}`,
  timestamp: BASE_MS + j,
  value: j % 997,
});

/** The backlog of `kind` messages holding `samples`, labelled `run`; resolves to its messages. */
export async function fill(
  nats: BenchNats,
  kind: DrainMessages,
  run: string,
  samples = SAMPLES,
): Promise<number> {
  const js = nats.nc.jetstream();
  const perMessage = SAMPLES_PER_MESSAGE[kind];
  const messages = samples / perMessage;
  let next = 0;
  async function lane() {
    while (next < messages) {
      const m = next++;
      const metrics = Array.from({ length: perMessage }, (_, i) => {
        const p = pointOf(m * perMessage + i);
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
  return messages;
}

/**
 * The same samples as remote-write requests of 10,000 samples, encoded before the clock starts,
 * labelled `run`.
 */
function directRequests(run: string): Uint8Array[] {
  const requests: Uint8Array[] = [];
  for (let first = 0; first < SAMPLES; first += DIRECT_REQUEST_SAMPLES) {
    const series = new Map<string, { timestamps: number[]; values: number[] }>();
    for (let j = first; j < Math.min(SAMPLES, first + DIRECT_REQUEST_SAMPLES); j++) {
      const p = pointOf(j);
      let samples = series.get(p.host);
      if (samples === undefined) series.set(p.host, (samples = { timestamps: [], values: [] }));
      samples.timestamps.push(p.timestamp);
      samples.values.push(p.value);
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
  /** Samples in each message. */
  readonly samplesPerMessage?: number;
  /** From the worker's first delivery to the last ack. */
  readonly seconds: number;
  readonly samplesPerSecond: number;
  /** The same backlog pulled and acked by the bare nats.js client, nothing stored (raw-pull.ts). */
  readonly rawPull?: RawDrain;
  /**
   * Into VictoriaMetrics: the same backlog pulled by the bare nats.js client and sent with the
   * worker's own decoding, encoding and HTTP client, acked after each 2xx (raw-pull.ts).
   */
  readonly rawSend?: RawDrain;
  /** CPU time per million samples during the drain: the worker, nats-server, the receiver. */
  readonly cpu?: { readonly worker: number; readonly nats: number; readonly receiver?: number };
  /** From starting the worker's process to the last ack. */
  readonly withStartSeconds: number;
  readonly peakRssMb: number;
}

export interface RawDrain {
  readonly seconds: number;
  readonly samplesPerSecond: number;
  /** CPU time per million samples: the client's process, nats-server's, the receiver's. */
  readonly cpu: { readonly client: number; readonly nats: number; readonly receiver?: number };
}

/**
 * A backlog of `kind` messages labelled `run`, drained by a baseline of bench/raw-pull.ts: acked
 * as pulled, or (`send`) sent to `vm` as the worker sends and every sample read back.
 */
async function rawDrain(
  nats: BenchNats,
  vm: Receiver,
  kind: DrainMessages,
  run: string,
  send: boolean,
): Promise<RawDrain> {
  const messages = await fill(nats, kind, run);
  const client = createReceiverClient({
    url: new URL(vm.writeUrl),
    authorization: undefined,
    ca: undefined,
    headers: remoteWriteHeaders("bench-raw-send"),
    timeoutMs: 30_000,
  });
  try {
    const used = cpuOf({
      client: process.pid,
      nats: nats.server.pid(),
      ...(send ? { receiver: vm.pid() } : {}),
    });
    const seconds = await pullAndAck(
      nats.url,
      messages,
      // As many batches in hand as the worker keeps by default (`WORKER_CONCURRENCY`).
      send
        ? {
            send: (batch) => sendBatch(client, batch),
            lanes: testConfig(nats.url).worker.concurrency,
          }
        : undefined,
    );
    const cpu = used();
    if (send) {
      const stored = await storedSamples(vm, run);
      if (stored !== SAMPLES)
        throw new Error(`raw send: VictoriaMetrics holds ${stored} of ${SAMPLES}`);
    }
    return {
      seconds: round(seconds, 2),
      samplesPerSecond: round(SAMPLES / seconds),
      cpu: {
        client: perMillion(cpu["client"]),
        nats: perMillion(cpu["nats"]),
        ...(send ? { receiver: perMillion(cpu["receiver"]) } : {}),
      },
    };
  } finally {
    client.close();
  }
}

/** A batch decoded, gathered into series, encoded and posted as the worker does. */
async function sendBatch(client: ReceiverClient, batch: readonly JsMsg[]): Promise<void> {
  const messages = batch.map((msg) => {
    const decoded = decodeMessage(msg.data);
    if (!decoded.ok) throw new Error(`raw send: ${decoded.message}`);
    return decoded;
  });
  const answer = await client.post(
    encodeWriteRequest(seriesOfMessages(messages, undefined).series),
  );
  if (answer.status >= 300) throw new Error(`raw send: ${answer.status} ${answer.text}`);
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
    /** CPU time per million samples, the mean of the rounds: the client's, VictoriaMetrics'. */
    readonly cpu?: { readonly client: number; readonly receiver: number };
  };
}

/**
 * A clock of CPU time for each process named: the function returned gives each one's CPU
 * seconds since. A SQLite or PostgreSQL drain has no receiver process of its own to count.
 */
function cpuOf(
  pids: Readonly<Record<string, number | undefined>>,
): () => Record<string, number | undefined> {
  const named = Object.entries(pids).flatMap(([name, pid]) =>
    pid === undefined ? [] : [{ name, pid, before: treeUsage(pid).cpuSeconds }],
  );
  return () =>
    Object.fromEntries(
      named.map(({ name, pid, before }) => [name, treeUsage(pid).cpuSeconds - before]),
    );
}

/** CPU seconds per million of the backlog's samples. */
function perMillion(seconds: number | undefined): number {
  if (seconds === undefined) throw new Error("a process's CPU time was not read");
  return round((seconds * 1e6) / SAMPLES, 2);
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
  // A label of its own per backlog: message ids derive from it, and the stream would drop the
  // messages of a second backlog as duplicates of the first's.
  const rawPull = await rawDrain(nats, vm, messages, `raw-${target}-${messages}`, false);
  // Into VictoriaMetrics: the worker's own decoding, encoding and client, without the rest of it.
  const rawSend =
    target === "victoriametrics"
      ? await rawDrain(nats, vm, messages, `rawsend-${messages}`, true)
      : undefined;
  const run = `${target}-${messages}`;
  await fill(nats, messages, run);
  const database =
    target === "victoriametrics"
      ? { url: `remote-write+${vm.writeUrl}`, drop: () => Promise.resolve() }
      : await freshDatabase(target);
  try {
    // The worker's own CPU time is counted from its first delivery, nats-server's and the
    // receiver's from its start (a worker starting up asks little of either).
    const serversCpu = cpuOf({
      nats: nats.server.pid(),
      receiver: target === "victoriametrics" ? vm.pid() : undefined,
    });
    const drain = await drainWithWorker(nats, { DATABASE_URL: database.url });
    const serversUsed = serversCpu();
    const stored =
      target === "victoriametrics" ? await storedSamples(vm, run) : await countRows(database.url);
    if (stored !== SAMPLES) {
      throw new Error(`${target} holds ${stored} of the ${SAMPLES} samples drained (${messages})`);
    }
    const row = {
      target,
      messages,
      samplesPerMessage: SAMPLES_PER_MESSAGE[messages],
      seconds: round(drain.seconds, 2),
      samplesPerSecond: round(SAMPLES / drain.seconds),
      rawPull,
      ...(rawSend === undefined ? {} : { rawSend }),
      cpu: {
        worker: perMillion(drain.cpuSeconds),
        nats: perMillion(serversUsed["nats"]),
        ...(target === "victoriametrics" ? { receiver: perMillion(serversUsed["receiver"]) } : {}),
      },
      withStartSeconds: round(drain.withStartSeconds, 2),
      peakRssMb: drain.peakRssMb,
    };
    log(
      `drain into ${target} (${messages} messages): ${row.samplesPerSecond}/s, ${row.peakRssMb} MB; raw pull and ack ${row.rawPull.samplesPerSecond}/s`,
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
    const cpu = { client: 0, receiver: 0 };
    for (let r = 1; r <= DIRECT_ROUNDS; r++) {
      const run = `direct-${r}`;
      const requests = directRequests(run);
      const used = cpuOf({ client: process.pid, receiver: vm.pid() });
      rounds.push(await postDirect(vm, requests));
      const { client, receiver } = used();
      cpu.client += (client ?? NaN) / DIRECT_ROUNDS;
      cpu.receiver += (receiver ?? NaN) / DIRECT_ROUNDS;
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
      cpu: { client: perMillion(cpu.client), receiver: perMillion(cpu.receiver) },
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
