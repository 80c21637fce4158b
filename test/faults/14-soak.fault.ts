import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { streamLeader } from "./cluster.ts";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { dropRandomly, removeLossRules } from "./packet-loss.ts";
import { finish, loadOptions, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";
import { mountSmallDisk, type SmallDisk } from "./tmpfs.ts";

/**
 * 14. Soak: steady load for FAULTS_SOAK_MINUTES (30) on a 3-node cluster with an R3 stream, one
 * fault every FAULTS_SOAK_FAULT_EVERY_S (180) seconds, in turn: the stream leader paused past
 * the election timeout, the stream leader killed and restarted, the worker paused, the SQLite
 * file's disk full, 5 % packet loss to and from every node. At the end: 0 lost, 0 duplicated,
 * and the ingest server's and the worker's RSS within 10 % of their value after the first sixth
 * of the run (5 min of 30). Run by
 * `npm run test:faults` only: vitest.faults.config.ts leaves it out of the short run.
 */
let nats: NatsSetup;
let system: System;
let disk: SmallDisk | undefined;
const minutes = Number(process.env["FAULTS_SOAK_MINUTES"] ?? "30");
const faultEveryMs = Number(process.env["FAULTS_SOAK_FAULT_EVERY_S"] ?? "180") * 1000;
const ratePerSecond = Number(process.env["FAULTS_SOAK_RATE"] ?? "50");

beforeAll(() => {
  disk = mountSmallDisk("soak", 1024 * 1024 * 1024);
});
afterAll(() => {
  removeLossRules();
  disk?.unmount();
});

startForFile(
  { nodes: 3, sync: "always" },
  {
    database: "sqlite",
    sqliteDir: "/tmp/faults-tmpfs-soak",
    env: { STREAM_REPLICAS: "3", PUBLISH_TIMEOUT_MS: "2000" },
  },
  (n, s) => {
    nats = n;
    system = s;
  },
);

/** Resident memory of a process, in bytes (0 once it is gone). */
function rss(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${String(pid)}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+)/m.exec(status)?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

it(
  `soak: ${minutes} min of load, a fault every ${faultEveryMs / 1000} s: nothing lost, memory flat`,
  async () => {
    const d = disk;
    if (d === undefined) throw new Error("no disk");
    const durationMs = minutes * 60_000;
    const options = loadOptions(system, "s14", {
      requests: Math.round((durationMs / 1000) * ratePerSecond),
      ratePerSecond,
      concurrency: 32,
      retryBudgetMs: 120_000,
    });
    const faults: { name: string; run: () => Promise<string> }[] = [
      {
        name: "stream leader paused 12 s",
        async run() {
          const leader = await streamLeader(nats, system);
          leader.pause();
          await sleep(12_000);
          leader.resume();
          return leader.name;
        },
      },
      {
        name: "stream leader killed, restarted 10 s later",
        async run() {
          const leader = await streamLeader(nats, system);
          await leader.kill();
          await sleep(10_000);
          await leader.restart();
          return leader.name;
        },
      },
      {
        // Paused, not killed (scenario 3 kills it): the same process runs throughout, so that its
        // memory at the end can be compared with its memory after the first sixth.
        name: "worker paused 20 s (SIGSTOP, past the 30 s ack wait's first third)",
        async run() {
          const worker = system.workers.at(-1);
          worker?.process.kill("SIGSTOP");
          await sleep(20_000);
          worker?.process.kill("SIGCONT");
          return String(worker?.process.pid);
        },
      },
      {
        name: "SQLite disk full 20 s",
        async run() {
          const filled = d.fill();
          await sleep(20_000);
          d.free();
          return mib(filled);
        },
      },
      {
        name: "5 % packet loss to and from every node 30 s",
        async run() {
          const undo = dropRandomly(
            nats.nodes.map((n) => n.port),
            0.05,
          );
          await sleep(30_000);
          undo();
          return "";
        },
      },
    ];
    const load = startLoad(options);
    const firstWorker = system.workers.at(-1);
    const done: string[] = [];
    let baseline: { serve: number; worker: number } | undefined;
    const baselineAt = durationMs / 6;
    // Both processes' RSS each minute, printed as the run goes and kept for the report.
    const memory: string[] = [];
    let nextSample = 0;
    const sample = () => {
      if (load.now() < nextSample) return;
      nextSample += 60_000;
      const line = `${Math.round(load.now() / 60_000)} min: ${mib(rss(system.serve.child.process.pid))} / ${mib(rss(system.workers.at(-1)?.process.pid))}`;
      memory.push(line);
      console.log(`[soak] RSS (ingest server / worker) at ${line}`);
    };
    for (let i = 0, next = faultEveryMs; next < durationMs - 30_000; i++, next += faultEveryMs) {
      while (load.now() < next) {
        await sleep(Math.min(1000, next - load.now()));
        sample();
        if (baseline === undefined && load.now() >= baselineAt) {
          baseline = {
            serve: rss(system.serve.child.process.pid),
            worker: rss(system.workers.at(-1)?.process.pid),
          };
        }
      }
      const fault = faults[i % faults.length];
      if (fault === undefined) continue;
      const what = await fault.run();
      done.push(`${Math.round(next / 1000)} s ${fault.name}${what === "" ? "" : ` (${what})`}`);
    }
    const loadDone = { now: false };
    void load.done.then(() => (loadDone.now = true));
    while (!loadDone.now) {
      await sleep(1000);
      sample();
    }
    await load.done;
    const end = {
      serve: rss(system.serve.child.process.pid),
      worker: rss(system.workers.at(-1)?.process.pid),
    };
    const sameWorker = system.workers.at(-1) === firstWorker;
    const counts = await finish(
      {
        id: "14",
        slug: "soak",
        title: `soak: ${minutes} min of load, one fault every ${faultEveryMs / 1000} s`,
        fault: `${done.length} faults in turn: ${done.join("; ")}.`,
      },
      system,
      nats,
      load,
      options,
      {
        replicas: 3,
        settleMs: 240_000,
        workers: sameWorker ? "1" : `1 at a time, ${system.workers.length} in all`,
        recovery: [],
        extra: {
          "ingest server RSS after the first sixth / at the end": `${mib(baseline?.serve ?? 0)} / ${mib(end.serve)}`,
          "RSS each minute (ingest server / worker)": memory.join("; "),
          "worker RSS after the first sixth / at the end": `${mib(baseline?.worker ?? 0)} / ${mib(end.worker)}${sameWorker ? "" : " (another process: the first one exited)"}`,
        },
      },
    );
    expect(counts.accepted).toBeGreaterThan(0);
    expect(baseline, "the run lasted past its first sixth").toBeDefined();
    if (baseline !== undefined) {
      expect(end.serve, "the ingest server's memory stays flat").toBeLessThanOrEqual(
        baseline.serve * 1.1,
      );
      expect(sameWorker, "the worker ran throughout").toBe(true);
      expect(end.worker, "the worker's memory stays flat").toBeLessThanOrEqual(
        baseline.worker * 1.1,
      );
    }
    // Beyond the suite's 10-minute test timeout: the load, then the drain (up to 4 min) and margin.
  },
  minutes * 60_000 + 600_000,
);
