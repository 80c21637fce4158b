import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, expect, it } from "vitest";
import {
  describeReplicas,
  recordEvidence,
  replicaStates,
  type EvidenceRecorder,
} from "./evidence.ts";
import { answersBetween, streamLeader as leaderOf } from "./cluster.ts";
import { firstSuccessAfter, startLoad } from "./load.ts";
import type { NatsNode, NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 2. A 3-node JetStream cluster on loopback with an R3 stream: the stream leader killed mid-load,
 * then a second node (no quorum: the edge must answer 503), then the nodes brought back.
 */
let nats: NatsSetup;
let system: System;
let evidence: EvidenceRecorder | undefined;

startForFile(
  { nodes: 3, sync: "always" },
  { database: "postgres", env: { STREAM_REPLICAS: "3", PUBLISH_TIMEOUT_MS: "2000" } },
  (n, s) => {
    nats = n;
    system = s;
  },
);
afterAll(() => evidence?.stop());

const streamLeader = (not?: NatsNode) => leaderOf(nats, system, not);

/**
 * The replicas once the backlog drained: when they agree (no message left on any), and if one
 * still holds messages the others removed 20 s later, what each holds.
 */
async function replicasSettle(): Promise<string> {
  const started = Date.now();
  let states: Awaited<ReturnType<typeof replicaStates>> = [];
  while (Date.now() - started < 20_000) {
    states = await replicaStates(nats, system.config.stream.name, system.config.consumer.name);
    if (states.every((r) => "messages" in r && r.messages === 0)) {
      return `all empty ${Math.round((Date.now() - started) / 1000)} s after the drain`;
    }
    await sleep(1000);
  }
  return `differ 20 s after the drain: ${describeReplicas(states)}`;
}

it("R3 cluster: leader killed, then a second node, then back: nothing acknowledged lost", async () => {
  evidence = await recordEvidence(system, nats);
  const step = size(6000, 4000);
  const options = loadOptions(system, "s2", {
    requests: size(3000, 900),
    ratePerSecond: size(80, 40),
    retryBudgetMs: 90_000,
  });
  const load = startLoad(options);

  await at(load, step);
  const first = await streamLeader();
  await first.kill();
  const firstKilledAt = load.now();
  const second = await streamLeader(first);
  const failoverAt = load.now();

  await at(load, failoverAt + step);
  await second.kill();
  const quorumLostAt = load.now();

  await at(load, quorumLostAt + step);
  await first.restart();
  const quorumBackAt = load.now();
  await streamLeader();

  await at(load, quorumBackAt + step);
  await second.restart();
  const allBackAt = load.now();

  await load.done;
  // Give the cluster a moment to see the node go: requests already past the stream leader may
  // still be acknowledged in the first second.
  const electing = answersBetween(load.records, firstKilledAt, failoverAt);
  const noQuorum = answersBetween(load.records, quorumLostAt + 1500, quorumBackAt);
  const afterFirstKill = firstSuccessAfter(load.records, firstKilledAt);
  const afterQuorum = firstSuccessAfter(load.records, quorumBackAt);
  const counts = await finish(
    {
      id: "2",
      slug: "cluster-failover",
      title: "3-node cluster, R3 stream: leader killed, then a second node",
      fault:
        `SIGKILL of the stream leader (${first.name}) ${Math.round(firstKilledAt / 1000)} s into the load; ` +
        `SIGKILL of the new leader (${second.name}) ${Math.round(quorumLostAt / 1000)} s in, leaving one node of three (no quorum); ` +
        `${first.name} restarted at ${Math.round(quorumBackAt / 1000)} s, ${second.name} at ${Math.round(allBackAt / 1000)} s.`,
    },
    system,
    nats,
    load,
    options,
    {
      replicas: 3,
      // What a worker had been sent but never received while the nodes changed comes again after
      // the ack wait (30 s), then after the backoff (60 s…): give it time before calling it lost.
      settleMs: 240_000,
      evidence,
      atEnd: async () => ({ "stream replicas once drained": await replicasSettle() }),
      recovery: [
        { what: "leader SIGKILL → new stream leader elected", ms: failoverAt - firstKilledAt },
        {
          what: "leader SIGKILL → first 2xx",
          ms: afterFirstKill === undefined ? null : afterFirstKill - firstKilledAt,
        },
        {
          what: "quorum back (node restarted) → first 2xx",
          ms: afterQuorum === undefined ? null : afterQuorum - quorumBackAt,
        },
      ],
      extra: {
        "503s while the new leader was elected": electing.unavailable,
        "2xx to requests sent without a quorum": noQuorum.ok,
        "503s to requests sent without a quorum": noQuorum.unavailable,
      },
    },
  );
  expect(noQuorum.ok, "no request may be acknowledged without a quorum").toBe(0);
  expect(noQuorum.unavailable).toBeGreaterThan(0);
  expect(counts.accepted).toBeGreaterThan(0);
});
