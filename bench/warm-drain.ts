/**
 * `node bench/warm-drain.ts`: one worker process draining four million samples into
 * VictoriaMetrics, reported a million at a time, so that the first million (the process
 * compiling its hot paths, as in every drain of bench/remote-write-drain.ts, which starts a
 * worker per backlog) is told apart from the rate of a worker that has been running. The
 * backlog is published before the worker starts; each million's clock runs from the consumer's
 * ack floor passing the million before to its passing this one (read every 20 ms).
 * `BENCH_SAMPLES_PER_MESSAGE=100` makes messages of 100 samples (default 2,000).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeSeriesMessagesV4 } from "../test/helpers/envelope-v4-by-metric.ts";
import { startVictoriaMetrics } from "../test/helpers/receivers.ts";
import { WORKER_NODE_ARGS } from "../worker/command.ts";
import { startProcess, treeUsage } from "./processes.ts";
import { startBenchNats } from "./support.ts";

const PER_MESSAGE = Number(process.env["BENCH_SAMPLES_PER_MESSAGE"] ?? 2000);
const MILLIONS = 4;
const MESSAGES_A_MILLION = 1_000_000 / PER_MESSAGE;
const BASE_MS = Date.parse("2026-11-01T00:00:00Z");

const nats = await startBenchNats("default");
const vm = await startVictoriaMetrics();
try {
  const js = nats.nc.jetstream();
  const jsm = await nats.nc.jetstreamManager();
  const total = MILLIONS * MESSAGES_A_MILLION;
  let next = 0;
  async function lane() {
    while (next < total) {
      const m = next++;
      const metrics = Array.from({ length: PER_MESSAGE }, (_, i) => {
        const j = m * PER_MESSAGE + i;
        return {
          name: "bench_cpu",
          value: j % 997,
          timestamp: BASE_MS + j,
          tags: { host: `web-${j % 8}`, run: "warm" },
        };
      });
      const [message] = runToEnd(encodeSeriesMessagesV4(metrics, Date.now(), 1024 * 1024));
      if (message === undefined) throw new Error("no message");
      await js.publish("metrics.prometheus", message.data, { msgID: message.id });
    }
  }
  await Promise.all(Array.from({ length: 64 }, lane));

  const consumerInfo = () => jsm.consumers.info("METRICS", "metrics-worker");
  const base = (await consumerInfo()).ack_floor.stream_seq;
  const worker = startProcess(WORKER_NODE_ARGS.at(-1) ?? "worker/main.ts", {
    NATS_URL: nats.url,
    WORKER_HTTP_PORT: "0",
    DATABASE_URL: `remote-write+${vm.writeUrl}`,
  });
  try {
    let since: { at: number; cpuSeconds: number } | undefined;
    for (let million = 1; million <= MILLIONS;) {
      const info = await consumerInfo();
      const at = performance.now();
      if (since === undefined && info.delivered.stream_seq > base) {
        since = { at, cpuSeconds: treeUsage(worker.pid).cpuSeconds };
      }
      if (since !== undefined && info.ack_floor.stream_seq - base >= million * MESSAGES_A_MILLION) {
        const cpuSeconds = treeUsage(worker.pid).cpuSeconds;
        console.log(
          `million ${million} (${PER_MESSAGE} samples a message): ${Math.round(1e6 / ((at - since.at) / 1000))} samples/s, worker CPU ${(cpuSeconds - since.cpuSeconds).toFixed(2)} s, peak RSS ${worker.peakRssMb()} MB`,
        );
        since = { at, cpuSeconds };
        million++;
        continue;
      }
      await sleep(20);
    }
  } finally {
    await worker.stop();
  }
} finally {
  await vm.close();
  await nats.stop();
}
