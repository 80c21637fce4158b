import { expect, it } from "vitest";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/** 3. The worker SIGKILLed while storing, twice, and restarted each time (PostgreSQL). */
let nats: NatsSetup;
let system: System;

startForFile(
  { nodes: 1, sync: "always" },
  {
    database: "postgres",
    // Redelivery of what the killed worker held after 5 s rather than 30 s and then 60 s.
    env: { WORKER_BATCH_SIZE: "50", CONSUMER_ACK_WAIT_SECONDS: "5", CONSUMER_BACKOFF_SECONDS: "5" },
  },
  (n, s) => {
    nats = n;
    system = s;
  },
);

it("worker SIGKILLed mid-batch and restarted, twice: nothing lost, nothing twice", async () => {
  const options = loadOptions(system, "s3");
  const load = startLoad(options);
  const recovery: { what: string; ms: number | null }[] = [];
  const extra: Record<string, number> = {};
  for (const [n, killAt] of [size(5000, 3000), size(12_000, 6500)].entries()) {
    await at(load, killAt);
    const worker = system.workers.at(-1);
    if (worker === undefined) throw new Error("no worker");
    // Mid-batch: the worker is storing the load as it arrives; wait for a row to be sure.
    const before = await system.count();
    expect(await system.rowsGrowBeyond(before, 10_000)).not.toBeNull();
    await worker.stop("SIGKILL", 0);
    const killedAt = load.now();
    const atRestart = await system.count();
    extra[`rows at kill ${n + 1}`] = atRestart;
    await system.startWorker();
    const restartedAt = load.now();
    const grew = await system.rowsGrowBeyond(atRestart, 30_000);
    recovery.push({
      what: `kill ${n + 1}: SIGKILL → restarted worker storing (restart took ${restartedAt - killedAt} ms)`,
      ms: grew === null ? null : load.now() - killedAt,
    });
  }
  await finish(
    {
      id: "3",
      slug: "worker-killed",
      title: "worker SIGKILLed mid-batch and restarted, twice",
      fault: `SIGKILL of the only worker while it was storing, ${size(5000, 3000) / 1000} s and ${size(12_000, 6500) / 1000} s into the load; a new worker started at once each time. Ack wait 5 s.`,
    },
    system,
    nats,
    load,
    options,
    { recovery, extra, workers: "1 at a time: SIGKILLed twice, restarted each time" },
  );
});
