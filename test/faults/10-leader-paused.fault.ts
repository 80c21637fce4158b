import { afterAll, expect, it } from "vitest";
import { leaderSeenBy, streamLeader } from "./cluster.ts";
import { recordEvidence, type EvidenceRecorder } from "./evidence.ts";
import { firstSuccessAfter, startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 10. The stream leader of a 3-node cluster frozen (SIGSTOP) for longer than an election takes
 * (nats-server's election timeout is 4–9 s), then thawed (SIGCONT), as Jepsen's pause fault does:
 * the other two elect a leader while the old one still believes it leads, and wakes with
 * proposals of its own in flight. Nothing acknowledged may be lost or stored twice.
 */
let nats: NatsSetup;
let system: System;
let evidence: EvidenceRecorder | undefined;

startForFile(
  { nodes: 3, sync: "always" },
  { database: "sqlite", env: { STREAM_REPLICAS: "3", PUBLISH_TIMEOUT_MS: "2000" } },
  (n, s) => {
    nats = n;
    system = s;
  },
);
afterAll(() => evidence?.stop());

it("stream leader paused past the election timeout, then resumed: nothing acknowledged lost", async () => {
  evidence = await recordEvidence(system, nats);
  const pause = size(15_000, 12_000);
  const pauses = size(2, 1);
  const ratePerSecond = size(60, 30);
  const options = loadOptions(system, "s10", {
    requests: Math.round(((5000 + pauses * (pause + 5000) + 5000) / 1000) * ratePerSecond),
    ratePerSecond,
    retryBudgetMs: 90_000,
  });
  const load = startLoad(options);
  const timeline: { pausedAt: number; resumedAt: number; elected: number | null }[] = [];
  const paused: string[] = [];
  let next = 5000;
  for (let i = 0; i < pauses; i++) {
    await at(load, next);
    const leader = await streamLeader(nats, system);
    leader.pause();
    const pausedAt = load.now();
    const others = nats.nodes.filter((n) => n !== leader);
    const elected = await leaderSeenBy(others, system.config.stream.name, leader, pause - 500);
    const electedAt = load.now();
    await at(load, pausedAt + pause);
    leader.resume();
    const resumedAt = load.now();
    paused.push(
      `${leader.name} at ${Math.round(pausedAt / 1000)} s (new leader: ${elected ?? "none within the pause"})`,
    );
    timeline.push({ pausedAt, resumedAt, elected: elected === undefined ? null : electedAt });
    next = resumedAt + 5000;
  }
  await load.done;
  const recovery = timeline.flatMap((t, i) => {
    const firstOk = firstSuccessAfter(load.records, t.pausedAt);
    const afterResume = firstSuccessAfter(load.records, t.resumedAt);
    return [
      {
        what: `pause ${i + 1} → new stream leader elected`,
        ms: t.elected === null ? null : t.elected - t.pausedAt,
      },
      {
        what: `pause ${i + 1} → first 2xx`,
        ms: firstOk === undefined ? null : firstOk - t.pausedAt,
      },
      {
        what: `resume ${i + 1} → first 2xx`,
        ms: afterResume === undefined ? null : afterResume - t.resumedAt,
      },
    ];
  });
  const counts = await finish(
    {
      id: "10",
      slug: "leader-paused",
      title: "3-node cluster, R3 stream: stream leader paused (SIGSTOP) past the election timeout",
      fault: `The stream leader frozen with SIGSTOP for ${pause / 1000} s, then SIGCONT, ${pauses} time(s) 5 s apart: ${paused.join("; ")}.`,
    },
    system,
    nats,
    load,
    options,
    { replicas: 3, settleMs: 240_000, evidence, recovery },
  );
  expect(counts.accepted).toBeGreaterThan(0);
  expect(
    timeline.every((t) => t.elected !== null),
    "the other two nodes elect a leader during the pause",
  ).toBe(true);
});
