import { waitFor } from "../helpers/wait.ts";
import type { RequestRecord } from "./load.ts";
import type { NatsNode, NatsSetup } from "./nats-nodes.ts";
import type { System } from "./system.ts";

/** The node leading the metrics stream, once one leads it (and is not `not`). */
export async function streamLeader(
  nats: NatsSetup,
  system: System,
  not?: NatsNode,
  timeoutMs = 30_000,
): Promise<NatsNode> {
  return waitFor(
    "a stream leader",
    async () => {
      const jsm = await system.nc.jetstreamManager({ timeout: 1000 });
      const info = await jsm.streams.info(system.config.stream.name);
      const leader = nats.nodes.find((n) => n.name === info.cluster?.leader);
      return leader === not ? undefined : leader;
    },
    timeoutMs,
  );
}

/** 2xx and 503 answers to the attempts started in [from, to) (ms of the load's clock). */
export function answersBetween(
  records: readonly RequestRecord[],
  from: number,
  to: number,
): { ok: number; unavailable: number } {
  let ok = 0;
  let unavailable = 0;
  for (const r of records) {
    for (const a of r.attempts) {
      if (a.start < from || a.start >= to) continue;
      if (typeof a.status === "number" && a.status < 300) ok++;
      else if (a.status === 503) unavailable++;
    }
  }
  return { ok, unavailable };
}
