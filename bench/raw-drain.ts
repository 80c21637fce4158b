/**
 * The baseline of the drain and end-to-end measurements: a raw consume → insert → ack loop on
 * the same durable consumer and into the same store, with the worker's batch size and as many
 * batches stored at once (`WORKER_CONCURRENCY`). It decodes
 * with JSON.parse alone (no schema, no dead letters, no retries, no metrics).
 * Run: `NATS_URL=… DATABASE_URL=… node bench/raw-drain.ts`; it runs until SIGTERM, or 10 min.
 */
import { connect, type JsMsg } from "nats";
import type { Envelope } from "../shared/envelope.ts";
import { loadConfig } from "../shared/config.ts";
import { rowsOfEnvelope } from "../worker/metric-rows.ts";
import { openStore } from "../worker/open-store.ts";

const config = loadConfig(process.env);
const store = await openStore(config.database);
const nc = await connect({ servers: [...config.nats.servers], noAsyncTraces: true });
const consumer = await nc.jetstream().consumers.get(config.stream.name, config.consumer.name);
const batchSize = config.worker.batchSize;
const queue: JsMsg[] = [];
const messages = await consumer.consume({
  max_messages: batchSize * 2,
  callback: (msg) => {
    queue.push(msg);
    wakeAll();
  },
});

/** The bench's own envelopes, or a raw request body `{"data": …}` as the raw server sent it. */
function envelopeOf(msg: JsMsg): Envelope {
  const parsed = JSON.parse(new TextDecoder().decode(msg.data)) as
    | Envelope
    | (Omit<Envelope, "metrics"> & { groups: { tags?: object; metrics: Envelope["metrics"] }[] })
    | { data: unknown };
  if ("metrics" in parsed) return parsed;
  // Version 3: metrics in groups sharing their tags.
  if ("groups" in parsed) {
    const { groups, ...rest } = parsed;
    const metrics = groups.flatMap((g) =>
      g.metrics.map((m) => (g.tags === undefined ? m : { ...m, tags: { ...g.tags, ...m.tags } })),
    );
    return { ...rest, metrics };
  }
  return {
    key: "message",
    id: msg.headers?.get("Nats-Msg-Id") ?? String(msg.seq),
    receivedAt: Math.floor(msg.info.timestampNanos / 1e6),
    metrics: [parsed.data].flat() as Envelope["metrics"],
  };
}

// An object, not a variable: TypeScript would otherwise take it as always true in the loop.
const state = { running: true };
const wake: (() => void)[] = [];
const wakeAll = () => {
  for (const resume of wake.splice(0)) resume();
};
const stop = () => {
  state.running = false;
  wakeAll();
};
process.on("SIGTERM", stop);
setTimeout(stop, 600_000).unref();

/** One of `concurrency` lanes, each storing a batch at a time, as the worker does. */
async function lane(): Promise<void> {
  while (state.running) {
    if (queue.length === 0) {
      await new Promise<void>((resolve) => wake.push(resolve));
      continue;
    }
    const batch = queue.splice(0, batchSize);
    await store.insert(batch.flatMap((m) => rowsOfEnvelope(envelopeOf(m))));
    for (const m of batch) m.ack();
  }
}
await Promise.all(Array.from({ length: config.worker.concurrency }, lane));
messages.stop();
await nc.drain();
await store.close();
process.exit(0);
