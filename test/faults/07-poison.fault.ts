import { setTimeout as sleep } from "node:timers/promises";
import { expect, it } from "vitest";
import { jsonSubject } from "../../shared/stream-setup.ts";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";

/**
 * 7. Poison messages published straight into the stream among the load's: each must end in the
 * dead-letter stream with its reason and source sequence, and everything else must be stored.
 */
let nats: NatsSetup;
let system: System;

startForFile({ nodes: 1, sync: "always" }, { database: "sqlite" }, (n, s) => {
  nats = n;
  system = s;
});

const POISON: { reason: string; body: () => Uint8Array }[] = [
  { reason: "undecodable", body: () => Uint8Array.from([0xff, 0xfe, 0x7b, 0x00]) },
  {
    reason: "unknown_version",
    body: () => Buffer.from(JSON.stringify({ v: 99, id: "p", receivedAt: 1, metrics: [] })),
  },
  {
    reason: "invalid_envelope",
    body: () =>
      Buffer.from(
        JSON.stringify({
          v: 1,
          id: "p",
          receivedAt: 1,
          metrics: [{ value: "oops", tags: { req: "poison", i: "0" } }],
        }),
      ),
  },
];

it("poison messages end in the dead-letter stream; everything else is stored", async () => {
  const options = loadOptions(system, "s7");
  const load = startLoad(options);
  const js = system.nc.jetstream();
  const subject = jsonSubject(system.config.stream);
  const perKind = size(30, 10);
  const sent = new Map<number, string>(); // stream sequence → reason
  const spacing = ((options.requests / options.ratePerSecond) * 1000 * 0.8) / (perKind * 3);
  for (let n = 0; n < perKind; n++) {
    for (const p of POISON) {
      const ack = await js.publish(subject, p.body(), { msgID: `poison-${p.reason}-${n}` });
      sent.set(ack.seq, p.reason);
      await sleep(spacing);
    }
  }
  await load.done;
  const counts = await finish(
    {
      id: "7",
      slug: "poison",
      title: "poison messages among the load",
      fault: `${perKind * 3} messages that can never be stored (${perKind} each undecodable, unknown version, invalid envelope) published straight into the stream, spread over the load.`,
    },
    system,
    nats,
    load,
    options,
    { recovery: [], extra: { "poison messages published": sent.size } },
  );

  const jsm = await system.nc.jetstreamManager();
  const dlq = await jsm.streams.info(system.config.stream.dlqName);
  const dead = new Map<number, string>();
  for (let seq = dlq.state.first_seq; seq <= dlq.state.last_seq && seq > 0; seq++) {
    const m = await jsm.streams.getMessage(system.config.stream.dlqName, { seq });
    dead.set(Number(m.header.get("Dlq-Stream-Seq")), m.header.get("Dlq-Reason"));
  }
  expect(dead, "every poison message dead-lettered once, with its reason").toEqual(sent);
  expect(counts.stored).toBe(counts.metricsAcknowledged + counts.unknownStored);
});
