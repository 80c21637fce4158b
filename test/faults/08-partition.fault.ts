import { afterAll, beforeAll, expect, it } from "vitest";
import { answersBetween, streamLeader } from "./cluster.ts";
import { recordEvidence, type EvidenceRecorder } from "./evidence.ts";
import { firstSuccessAfter, startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { privateNetwork } from "./netns.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 8. A network partition of a 3-node cluster with an R3 stream, each nats-server in a network
 * namespace of its own (see netns.ts). First the stream leader is cut off from the other two
 * nodes (the ingest server and the worker still reach all three); then, healed, the ingest
 * server and the worker end up on the minority side with the new leader, the other two nodes
 * cut off from both. On the minority side nothing can be acknowledged by a quorum: the edge must
 * answer 503, never 2xx.
 */
let nats: NatsSetup;
let system: System;
let evidence: EvidenceRecorder | undefined;
const net = privateNetwork(3);

// Registered before startForFile's hooks: made first, removed last (after hooks run in reverse).
beforeAll(() => {
  net.create();
});
afterAll(() => {
  evidence?.stop();
  net.remove();
});

startForFile(
  { nodes: 3, sync: "always", network: { hosts: net.nodeAddresses, exec: net.exec } },
  { database: "sqlite", env: { STREAM_REPLICAS: "3", PUBLISH_TIMEOUT_MS: "2000" } },
  (n, s) => {
    nats = n;
    system = s;
  },
);

it("partitions: leader cut off, then the ingest server on the minority side: 503, nothing lost", async () => {
  evidence = await recordEvidence(system, nats);
  const hold = size(15_000, 8000);
  const start = 5000;
  const settle = 5000;
  const ratePerSecond = size(60, 30);
  const options = loadOptions(system, "s8", {
    requests: Math.round(((start + 2 * hold + settle + 10_000) / 1000) * ratePerSecond),
    ratePerSecond,
    retryBudgetMs: 90_000,
  });
  const load = startLoad(options);
  const index = (name: string) => nats.nodes.findIndex((n) => n.name === name);

  // 1. The stream leader cut off from the other two nodes.
  await at(load, start);
  const first = await streamLeader(nats, system);
  const others = nats.nodes.filter((n) => n !== first);
  net.cut(
    index(first.name),
    others.map((n) => n.host),
  );
  const cut1At = load.now();
  await at(load, cut1At + hold);
  net.heal(index(first.name));
  const heal1At = load.now();
  const afterFirst = await streamLeader(nats, system);

  // 2. The ingest server, the worker and the leader on one side, the other two nodes on the other.
  await at(load, heal1At + settle);
  const minority = await streamLeader(nats, system);
  const majority = nats.nodes.filter((n) => n !== minority);
  for (const n of majority) net.cut(index(n.name), [net.hostAddress, minority.host]);
  const cut2At = load.now();
  await at(load, cut2At + hold);
  for (const n of majority) net.heal(index(n.name));
  const heal2At = load.now();
  const afterSecond = await streamLeader(nats, system, undefined, 60_000);

  await load.done;
  // Requests already past the stream leader when the cut came may still be acknowledged.
  const grace = 1500;
  const leaderCut = answersBetween(load.records, cut1At + grace, heal1At);
  const onMinority = answersBetween(load.records, cut2At + grace, heal2At);
  const firstOk1 = firstSuccessAfter(load.records, cut1At);
  const firstOk2 = firstSuccessAfter(load.records, heal2At);
  const counts = await finish(
    {
      id: "8",
      slug: "partition",
      title: "3-node cluster, R3 stream: network partitions",
      fault:
        `Each nats-server in its own network namespace on a private bridge. The stream leader (${first.name}) cut off from the other two nodes (iptables DROP both ways) ${Math.round(cut1At / 1000)} s into the load for ${hold / 1000} s, the ingest server and worker still reaching all three; ` +
        `healed, then ${Math.round(cut2At / 1000)} s in the ingest server, the worker and the stream leader (${minority.name}) on one side and ${majority.map((n) => n.name).join(" and ")} on the other for ${hold / 1000} s, then healed.`,
    },
    system,
    nats,
    load,
    options,
    {
      replicas: 3,
      // A delivery whose ack was dropped comes again after the ack wait (30 s).
      settleMs: 240_000,
      evidence,
      recovery: [
        {
          what: "leader cut off → first 2xx",
          ms: firstOk1 === undefined ? null : firstOk1 - cut1At,
        },
        {
          what: "minority partition healed → first 2xx",
          ms: firstOk2 === undefined ? null : firstOk2 - heal2At,
        },
      ],
      extra: {
        "stream leader after the first partition healed": afterFirst.name,
        "stream leader after the second partition healed": afterSecond.name,
        "2xx / 503 to requests sent while the leader was cut off": `${leaderCut.ok} / ${leaderCut.unavailable}`,
        "2xx to requests sent while the ingest server was on the minority side": onMinority.ok,
        "503s to requests sent while the ingest server was on the minority side":
          onMinority.unavailable,
      },
    },
  );
  expect(onMinority.ok, "nothing may be acknowledged on the minority side").toBe(0);
  expect(onMinority.unavailable).toBeGreaterThan(0);
  expect(counts.accepted).toBeGreaterThan(0);
});
