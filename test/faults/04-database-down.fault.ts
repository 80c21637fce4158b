import { expect, it } from "vitest";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/** 4. PostgreSQL unreachable for 10 s under load (a proxy in between drops and refuses). */
let nats: NatsSetup;
let system: System;

startForFile({ nodes: 1, sync: "always" }, { database: "postgres", dbProxy: true }, (n, s) => {
  nats = n;
  system = s;
});

it("database unavailable for 10 s under load: the edge keeps accepting, nothing lost", async () => {
  const options = loadOptions(system, "s4");
  const load = startLoad(options);
  const proxy = system.dbProxy;
  if (proxy === undefined) throw new Error("no proxy");
  await at(load, size(5000, 3000));
  await proxy.cut();
  const cutAt = load.now();
  const rowsAtCut = await system.count();
  await at(load, cutAt + 10_000);
  await proxy.restore();
  const restoredAt = load.now();
  const rowsAtRestore = await system.count();
  const grew = await system.rowsGrowBeyond(rowsAtRestore, 60_000);
  let okDuringOutage = 0;
  for (const r of load.records) {
    for (const a of r.attempts) {
      if (a.start >= cutAt && a.end < restoredAt && a.status === 202) okDuringOutage++;
    }
  }
  await finish(
    {
      id: "4",
      slug: "database-down",
      title: "database unavailable for 10 s under load",
      fault:
        "Every connection between the worker and PostgreSQL dropped and new ones refused for 10 s " +
        `(a TCP proxy cut ${Math.round(cutAt / 1000)} s into the load), then restored.`,
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [
        {
          what: "database back → worker storing again",
          ms: grew,
        },
      ],
      extra: {
        "rows at the cut": rowsAtCut,
        "rows added during the outage": rowsAtRestore - rowsAtCut,
        "2xx answered during the outage": okDuringOutage,
      },
    },
  );
  // The stream absorbs the outage: the edge kept answering 2xx.
  expect(okDuringOutage).toBeGreaterThan(0);
});
