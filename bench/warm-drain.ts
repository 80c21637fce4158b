/**
 * `node bench/warm-drain.ts`: one worker process draining four million samples into
 * VictoriaMetrics, reported a million at a time, so that the first million (the process
 * compiling its hot paths, as in every drain of bench/remote-write-drain.ts, which starts a
 * worker per backlog) is told apart from the rate of a worker that has been running. The
 * backlog is published before the worker starts; each million's clock runs from the consumer's
 * ack floor passing the million before to its passing this one (read every 20 ms).
 * `BENCH_SAMPLES_PER_MESSAGE=100` drains the drain benchmark's agent backlog of 100-sample messages
 * (default: its 2,000-sample one, filled by the same code).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startVictoriaMetrics } from "../test/helpers/receivers.ts";
import { WORKER_NODE_ARGS } from "../worker/command.ts";
import { startProcess, treeUsage } from "./processes.ts";
import { fill, type DrainMessages } from "./remote-write-drain.ts";
import { startBenchNats } from "./support.ts";

const KIND: DrainMessages =
  process.env["BENCH_SAMPLES_PER_MESSAGE"] === "100" ? "agent" : "agent-2000";
const MILLIONS = 4;

const nats = await startBenchNats("default");
const vm = await startVictoriaMetrics();
try {
  const jsm = await nats.nc.jetstreamManager();
  const messagesAMillion = (await fill(nats, KIND, "warm", MILLIONS * 1_000_000)) / MILLIONS;

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
      if (since !== undefined && info.ack_floor.stream_seq - base >= million * messagesAMillion) {
        const cpuSeconds = treeUsage(worker.pid).cpuSeconds;
        console.log(
          `million ${million} (${KIND} messages): ${Math.round(1e6 / ((at - since.at) / 1000))} samples/s, worker CPU ${(cpuSeconds - since.cpuSeconds).toFixed(2)} s, peak RSS ${worker.peakRssMb()} MB`,
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
