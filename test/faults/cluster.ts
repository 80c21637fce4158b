import { setTimeout as sleep } from "node:timers/promises";
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

/**
 * The stream leader as `asked` (nodes' monitoring endpoints) see it, once they agree on one that
 * is not `not`: unlike `streamLeader`, this needs no client connection, which may be stuck on a
 * frozen or cut-off node. Undefined if none within `timeoutMs`.
 */
export async function leaderSeenBy(
  asked: readonly NatsNode[],
  stream: string,
  not: NatsNode,
  timeoutMs: number,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const seen = await Promise.all(
      asked.map(async (n) => {
        const res = await fetch(`http://${n.host}:${n.monitorPort}/jsz?streams=true`, {
          signal: AbortSignal.timeout(1000),
        }).catch(() => undefined);
        const jsz = (await res?.json().catch(() => undefined)) as
          | {
              account_details?: {
                stream_detail?: { name: string; cluster?: { leader?: string } }[];
              }[];
            }
          | undefined;
        return jsz?.account_details
          ?.flatMap((a) => a.stream_detail ?? [])
          .find((s) => s.name === stream)?.cluster?.leader;
      }),
    );
    const first = seen[0];
    if (first !== undefined && first !== not.name && seen.every((l) => l === first)) return first;
    await sleep(100);
  }
  return undefined;
}
