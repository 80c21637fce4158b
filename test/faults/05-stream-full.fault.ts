import { expect, it } from "vitest";
import { firstSuccessAfter, startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 5. The stream full: max_bytes reached with discard: new while no worker runs. The edge must
 * answer 503 stream_full, lose nothing, and accept again once a worker drains the backlog.
 */
let nats: NatsSetup;
let system: System;
const MAX_BYTES = 256 * 1024;

startForFile(
  { nodes: 1, sync: "always" },
  { database: "sqlite", workers: 0, env: { STREAM_MAX_BYTES: String(MAX_BYTES) } },
  (n, s) => {
    nats = n;
    system = s;
  },
);

it("stream full: 503 at the edge, nothing lost, ingest resumes as the worker catches up", async () => {
  // Many lanes, so that new requests keep arriving while earlier ones wait to retry, and a third
  // of them sent once only: those refused stay refused, and must not be stored.
  const options = loadOptions(system, "s5", {
    retryBudgetMs: 90_000,
    concurrency: 200,
    noRetryFraction: 0.3,
  });
  const load = startLoad(options);
  const workerAt = size(10_000, 6000);
  await at(load, workerAt);
  const backlogBytes = (
    await (await system.nc.jetstreamManager()).streams.info(system.config.stream.name)
  ).state.bytes;
  await system.startWorker();
  const startedAt = load.now();
  await load.done;
  const fullAnswers = load.records
    .flatMap((r) => r.attempts)
    .filter((a) => a.code === "stream_full");
  const lastFull = Math.max(...fullAnswers.map((a) => a.end));
  const firstOk = firstSuccessAfter(load.records, startedAt);
  await finish(
    {
      id: "5",
      slug: "stream-full",
      title: "stream full (max_bytes reached, discard: new)",
      fault: `STREAM_MAX_BYTES=${MAX_BYTES} (256 KiB) and no worker for the first ${workerAt / 1000} s of the load, so the stream fills; then one worker starts.`,
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [
        {
          what: "worker started → first 2xx",
          ms: firstOk === undefined ? null : firstOk - startedAt,
        },
        { what: "worker started → last 503 stream_full", ms: Math.max(0, lastFull - startedAt) },
      ],
      extra: {
        "503 stream_full answers": fullAnswers.length,
        "stream bytes when the worker started": backlogBytes,
      },
      workers: "none, then 1",
    },
  );
  expect(fullAnswers.length).toBeGreaterThan(0);
});
