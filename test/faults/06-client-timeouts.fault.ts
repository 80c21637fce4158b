import { expect, it } from "vitest";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 6. Clients that time out and retry with the same Idempotency-Key. nats-server is frozen
 * (SIGSTOP) for 1.5 s at a time while clients wait only 500 ms: their requests time out at the
 * client, yet the server publishes them once it thaws. The retries, with the same key, must not
 * store anything twice; a request without a key that timed out may be stored once, never twice.
 */
let nats: NatsSetup;
let system: System;

startForFile({ nodes: 1, sync: "always" }, { database: "sqlite" }, (n, s) => {
  nats = n;
  system = s;
});

it("clients time out and retry with the same key: no duplicates", async () => {
  const options = loadOptions(system, "s6", { clientTimeoutMs: 500 });
  const load = startLoad(options);
  const node = nats.nodes[0];
  if (node === undefined) throw new Error("no node");
  const freezes = size(4, 2);
  for (let i = 0; i < freezes; i++) {
    await at(load, 3000 + i * 4000);
    node.pause();
    await at(load, 3000 + i * 4000 + 1500);
    node.resume();
  }
  await load.done;
  const attempts = load.records.flatMap((r) => r.attempts);
  const timeouts = attempts.filter((a) => a.status === "timeout").length;
  const duplicates = attempts.filter((a) => a.duplicate === true).length;
  const counts = await finish(
    {
      id: "6",
      slug: "client-timeouts",
      title: "clients time out and retry with the same Idempotency-Key",
      fault: `nats-server frozen (SIGSTOP) for 1.5 s, ${freezes} times, 4 s apart, while every client gives up on an attempt after 500 ms; keyed requests retry with the same key, keyless ones stop (outcome unknown).`,
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [],
      extra: {
        "client timeouts": timeouts,
        "retries answered 202 duplicate: true": duplicates,
      },
    },
  );
  expect(timeouts).toBeGreaterThan(0);
  expect(duplicates).toBeGreaterThan(0);
  expect(counts.unknownStored).toBeLessThanOrEqual(counts.unknownMetrics);
});
