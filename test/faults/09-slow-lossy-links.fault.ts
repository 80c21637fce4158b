import { afterAll, expect, it } from "vitest";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { removeLossRules, dropRandomly } from "./packet-loss.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 9. Slow and lossy links: the ingest server and the worker each reach NATS through a proxy of
 * their own that delays every chunk by 100 ms ± 50 ms each way (the kernel has no `netem`), and
 * 5 % of the packets to and from NATS' port are dropped (iptables' `statistic` match). With the
 * edge's publish timeout at 400 ms, a publish that waits for a retransmission (at least 200 ms on
 * top of the 200 ms round trip) becomes `503 publish_timeout` and a retry: never
 * a 2xx for a message the stream does not hold, never a duplicate row.
 */
let nats: NatsSetup;
let system: System;
let undoLoss: (() => void) | undefined;

startForFile(
  { nodes: 1, sync: "always" },
  { database: "sqlite", natsProxies: true, env: { PUBLISH_TIMEOUT_MS: "400" } },
  (n, s) => {
    nats = n;
    system = s;
  },
);
afterAll(() => {
  undoLoss?.();
  removeLossRules();
});

it("slow and lossy links to NATS: 503 or retries, never a 2xx unstored, never a duplicate", async () => {
  const proxies = system.natsProxies;
  const node = nats.nodes[0];
  if (proxies === undefined || node === undefined) throw new Error("no NATS proxies");
  const hold = size(30_000, 10_000);
  const ratePerSecond = size(60, 40);
  const options = loadOptions(system, "s9", {
    requests: Math.round(((5000 + hold + 10_000) / 1000) * ratePerSecond),
    ratePerSecond,
    retryBudgetMs: 90_000,
  });
  const load = startLoad(options);
  await at(load, 5000);
  proxies.serve.setDelay(100, 50);
  proxies.worker.setDelay(100, 50);
  undoLoss = dropRandomly([node.port], 0.05);
  const slowAt = load.now();
  const rowsAtSlow = await system.count();
  await at(load, slowAt + hold);
  undoLoss();
  undoLoss = undefined;
  proxies.serve.setDelay(0);
  proxies.worker.setDelay(0);
  const fastAt = load.now();
  const rowsAtFast = await system.count();
  await load.done;
  const during = load.records
    .flatMap((r) => r.attempts)
    .filter((a) => a.start >= slowAt && a.start < fastAt);
  const ok = during.filter((a) => typeof a.status === "number" && a.status < 300);
  const meanMs = ok.reduce((sum, a) => sum + (a.end - a.start), 0) / Math.max(1, ok.length);
  const timeouts = during.filter((a) => a.code === "publish_timeout").length;
  const counts = await finish(
    {
      id: "9",
      slug: "slow-lossy-links",
      title: "slow and lossy links between the edge, the worker and NATS",
      fault:
        `${Math.round(slowAt / 1000)} s into the load, for ${hold / 1000} s: every chunk between the ingest server and NATS, and between the worker and NATS, delayed 100 ms ± 50 ms each way by a proxy, ` +
        "and 5 % of the packets to and from NATS' port dropped (iptables `statistic --mode random`); the edge's `PUBLISH_TIMEOUT_MS` is 400 ms, so that a lost packet's retransmission makes a publish time out.",
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [],
      settleMs: 180_000,
      extra: {
        "2xx / 503 publish_timeout to requests sent over the slow links": `${ok.length} / ${timeouts}`,
        "mean time to a 2xx over the slow links": `${Math.round(meanMs)} ms`,
        "rows stored over the slow links": rowsAtFast - rowsAtSlow,
      },
    },
  );
  expect(counts.accepted).toBeGreaterThan(0);
  expect(ok.length, "the slow links still carry traffic").toBeGreaterThan(0);
  expect(timeouts, "some publishes time out").toBeGreaterThan(0);
});
