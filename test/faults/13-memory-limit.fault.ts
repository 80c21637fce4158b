import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLoad } from "./load.ts";
import { memoryGroup, type MemoryGroup } from "./memory-cgroup.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 13. The worker in a cgroup v1 memory group while large messages (batches of up to 8,000
 * metrics, a few hundred KiB each) arrive. First with a limit far under what it needs (what it
 * held at start plus 8 MiB): the kernel kills it, the test starts another under the same limit,
 * and it is killed again (the loop a limit under the worker's bound makes). Then one started
 * under a limit above the bound drains the backlog. Nothing lost, nothing twice.
 */
let nats: NatsSetup;
let system: System;
const group: MemoryGroup = memoryGroup("faults-worker");
/** A limit above the worker's bound with the defaults (see docs/worker.md). */
const BOUND = 512 * 1024 * 1024;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

// Made as the file loads (startForFile's worker starts inside it), above the bound until the
// worker has started.
beforeAll(() => {
  group.setLimit(BOUND);
});
// Registered before startForFile's hooks, so run after them: the workers are gone by then (and
// any left are moved back to the root group).
afterAll(() => {
  group.remove();
});

startForFile(
  { nodes: 1, sync: "always" },
  { database: "sqlite", workerPrefix: group.prefix },
  (n, s) => {
    nats = n;
    system = s;
  },
);

it("worker past its memory limit: killed by the kernel, restarted, nothing lost or twice", async () => {
  const g = group;
  const options = loadOptions(system, "s13", {
    requests: size(160, 40),
    ratePerSecond: 4,
    batchFraction: 1,
    maxBatch: 8000,
    concurrency: 8,
    retryBudgetMs: 90_000,
  });
  const first = system.workers[0];
  if (first === undefined) throw new Error("no worker");
  const atStart = g.usage().now;
  const low = atStart + 8 * 1024 * 1024;
  g.setLimit(low);
  const load = startLoad(options);

  // Under the low limit: each worker the kernel kills, the test replaces, three times at most.
  const kills: string[] = [];
  let worker = first;
  for (let i = 0; i < 3; i++) {
    const exit = await Promise.race([worker.exited, sleep(30_000).then(() => "running")]);
    if (exit === "running") break;
    kills.push(`${Math.round(load.now() / 1000)} s (${String(exit)})`);
    const next = await system.startWorker().catch(() => undefined);
    if (next === undefined) {
      kills.push(`${Math.round(load.now() / 1000)} s (at start)`);
      continue;
    }
    worker = next;
  }
  const oomKillsLow = g.oomKills();
  // Above the bound: the last worker takes the backlog.
  g.setLimit(BOUND);
  g.resetPeak();
  if (worker.process.exitCode !== null || worker.process.signalCode !== null) {
    worker = await system.startWorker();
  }
  const raisedAt = load.now();
  await load.done;
  const counts = await finish(
    {
      id: "13",
      slug: "memory-limit",
      title: "the worker past its memory limit (cgroup v1), large messages",
      fault:
        `The worker in a memory cgroup limited to what it held at start plus 8 MiB (${mib(low)}) while batches of up to 8,000 metrics arrive: ` +
        `killed by the kernel ${kills.length} time(s) (${kills.join(", ")}), each time replaced by the test under the same limit; ` +
        `then the limit raised to ${mib(BOUND)} ${Math.round(raisedAt / 1000)} s into the load.`,
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [],
      settleMs: 180_000,
      workers: `${system.workers.length} in turn`,
      extra: {
        "OOM kills under the low limit": oomKillsLow,
        "OOM kills under the raised limit": g.oomKills() - oomKillsLow,
        "the worker's peak under the raised limit": mib(g.usage().peak),
      },
    },
  );
  expect(kills.length, "the kernel kills a worker under the low limit").toBeGreaterThan(0);
  expect(g.oomKills() - oomKillsLow, "no kill once the limit is above the bound").toBe(0);
  expect(worker.process.exitCode, "the last worker runs").toBeNull();
  expect(counts.accepted).toBeGreaterThan(0);
});
