/**
 * The processes a measurement starts: the self-hosted server, the worker, the baselines. Their
 * output goes to /dev/null (logging stays at its default level, so its cost is measured).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { NatsConnection } from "nats";
import { descendants } from "../test/helpers/process-tree.ts";
import { freePort, PROJECT_ROOT } from "../test/helpers/processes.ts";
import { WORKER_NODE_ARGS } from "../worker/command.ts";

export interface BenchProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The kernel's peak resident set size of the process so far (VmHWM), in MB. */
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** Node's arguments to run a script of the project: the worker with its own flags. */
function nodeArgsOf(script: string): readonly string[] {
  return script === WORKER_NODE_ARGS.at(-1) ? WORKER_NODE_ARGS : [script];
}

export function startProcess(script: string, env: Readonly<Record<string, string>>): BenchProcess {
  const child = spawn(process.execPath, nodeArgsOf(script), {
    cwd: PROJECT_ROOT,
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${script} did not start`);
  return {
    child,
    pid,
    peakRssMb() {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
      return Math.round((kb / 1024) * 10) / 10;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What a process and every process below it have used so far. */
export interface TreeUsage {
  /** User and system CPU time. */
  readonly cpuSeconds: number;
  /** Minor and major page faults. */
  readonly pageFaults: number;
}

/** Clock ticks per second, the unit of /proc's CPU times (`getconf CLK_TCK`: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** What `pid` and its descendants have used so far, from /proc/<pid>/stat. */
export function treeUsage(pid: number): TreeUsage {
  let ticks = 0;
  let pageFaults = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command name (which may hold spaces), from field 3: minflt is field
      // 10, majflt 12, utime 14 and stime 15 (proc(5)).
      const fields = stat
        .slice(stat.lastIndexOf(")") + 2)
        .split(" ")
        .map(Number);
      pageFaults += (fields[7] ?? 0) + (fields[9] ?? 0);
      ticks += (fields[11] ?? 0) + (fields[12] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return { cpuSeconds: ticks / TICKS_PER_SECOND, pageFaults };
}

/** An HTTP server process on a free port, once it answers. */
export async function startHttpProcess(
  script: string,
  env: Readonly<Record<string, string>>,
): Promise<BenchProcess & { base: string }> {
  const port = await freePort();
  const proc = startProcess(script, { HOST: "127.0.0.1", PORT: String(port), ...env });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${script} exited at start`);
    try {
      await fetch(`${base}/api/v1/health`);
      return { ...proc, base };
    } catch {
      await sleep(50);
    }
  }
  await proc.stop();
  throw new Error(`${script} did not answer within 15 s`);
}

/**
 * Starts a worker with `env` on the backlog in `nats`, waits until its consumer has nothing
 * pending or unacknowledged, and stops it: seconds from its first delivery (a rate, not the
 * process's start-up), seconds from its start, its peak RSS, and the CPU time it used from its
 * first delivery. The consumer is read every 20 ms, so `seconds` is within 20 ms.
 * `BENCH_CPU_PROF=<dir>` writes the worker's CPU profile there as it exits.
 */
export async function drainWithWorker(
  nats: { readonly url: string; readonly nc: NatsConnection },
  env: Readonly<Record<string, string>>,
): Promise<{ seconds: number; withStartSeconds: number; peakRssMb: number; cpuSeconds: number }> {
  const profile = process.env["BENCH_CPU_PROF"];
  const jsm = await nats.nc.jetstreamManager();
  const deliveredBefore = (await jsm.consumers.info("METRICS", "metrics-worker")).delivered
    .stream_seq;
  const start = performance.now();
  const worker = startProcess(WORKER_NODE_ARGS.at(-1) ?? "worker/main.ts", {
    NATS_URL: nats.url,
    WORKER_HTTP_PORT: "0",
    ...(profile === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` }),
    ...env,
  });
  try {
    let firstDelivery: number | undefined;
    let cpuAtFirstDelivery = 0;
    for (;;) {
      const info = await jsm.consumers.info("METRICS", "metrics-worker");
      const now = performance.now();
      if (firstDelivery === undefined && info.delivered.stream_seq > deliveredBefore) {
        firstDelivery = now;
        cpuAtFirstDelivery = treeUsage(worker.pid).cpuSeconds;
      }
      if (info.num_pending === 0 && info.num_ack_pending === 0) {
        return {
          seconds: (now - (firstDelivery ?? start)) / 1000,
          withStartSeconds: (now - start) / 1000,
          peakRssMb: worker.peakRssMb(),
          cpuSeconds: treeUsage(worker.pid).cpuSeconds - cpuAtFirstDelivery,
        };
      }
      await sleep(20);
    }
  } finally {
    await worker.stop();
  }
}
