/**
 * The baselines of the worker's drains, on the bare nats.js client, pulling the durable
 * consumer's backlog as the worker pulls it (worker/message-puller.ts: `PULLS_AT_ONCE` pulls of
 * `PULL_BATCH` messages, each bounded by bytes):
 * - raw pull: every message acked as it arrives, nothing decoded or stored: the ceiling of any
 *   worker on that client;
 * - raw send: messages gathered into batches of `BATCH_BYTES` (worker/held-messages.ts), each
 *   handed to `send` with at most `lanes` batches in hand, and acked once `send` resolved: the
 *   worker's store without its scheduler, dead letters, retries and metrics (as
 *   bench/raw-drain.ts is for SQLite and PostgreSQL).
 * The worker's drains are measured beside them on the same backlog (bench/remote-write-drain.ts).
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type JsMsg } from "nats";
import { maxPayloadOf } from "../shared/nats-connection.ts";
import { BATCH_BYTES } from "../worker/held-messages.ts";
import {
  PULL_BATCH,
  PULL_BYTES_MARGIN,
  PULL_EXPIRES_MS,
  PULLS_AT_ONCE,
} from "../worker/message-puller.ts";

export interface RawSend {
  /** Stores a batch's messages; the messages are acked once it resolves. */
  readonly send: (batch: readonly JsMsg[]) => Promise<void>;
  /** Most batches in hand at once (the worker's `WORKER_CONCURRENCY`). */
  readonly lanes: number;
}

/**
 * Pulls `messages` messages of the METRICS stream's durable consumer with a connection of its
 * own, acking each at once, or once `raw.send` stored its batch. The clock runs, as the worker's
 * does, from the first delivery to the consumer having nothing pending or unacked.
 */
export async function pullAndAck(
  natsUrl: string,
  messages: number,
  raw?: RawSend,
): Promise<number> {
  const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
  try {
    const jsm = await nc.jetstreamManager();
    const consumer = await nc.jetstream().consumers.get("METRICS", "metrics-worker");
    const maxBytes = Math.max(BATCH_BYTES, maxPayloadOf(nc) + PULL_BYTES_MARGIN);
    let received = 0;
    let first: number | undefined;
    const open = new Set<{ stop(): void }>();
    const batches = raw === undefined ? undefined : batchSender(raw);
    async function lane(): Promise<void> {
      while (received < messages) {
        const pull = await consumer.fetch({ max_bytes: maxBytes, expires: PULL_EXPIRES_MS });
        open.add(pull);
        // The last message may have come to another lane while this pull was being opened: it
        // would wait for more until it expired.
        if (received >= messages) pull.stop();
        let inPull = 0;
        for await (const msg of pull) {
          first ??= performance.now();
          if (++inPull === PULL_BATCH) pull.stop();
          // The other lanes' pulls would wait for messages until they expire.
          const last = ++received === messages;
          if (last) for (const other of open) other.stop();
          // Waiting for a free lane holds this pull's messages back, as the worker's does.
          if (batches === undefined) msg.ack();
          else await batches.add(msg, last);
        }
        open.delete(pull);
      }
    }
    await Promise.all(Array.from({ length: PULLS_AT_ONCE }, lane));
    await batches?.settled();
    await nc.flush();
    for (;;) {
      const info = await jsm.consumers.info("METRICS", "metrics-worker");
      if (info.num_pending === 0 && info.num_ack_pending === 0) break;
      await sleep(20);
    }
    return (performance.now() - (first ?? performance.now())) / 1000;
  } finally {
    await nc.close();
  }
}

/** Gathers messages into batches of `BATCH_BYTES` and sends each, `raw.lanes` at most at once. */
function batchSender(raw: RawSend) {
  let held: JsMsg[] = [];
  let bytes = 0;
  const inHand = new Set<Promise<void>>();
  return {
    async add(msg: JsMsg, last: boolean): Promise<void> {
      held.push(msg);
      bytes += msg.data.byteLength;
      if (bytes < BATCH_BYTES && !last) return;
      const batch = held;
      held = [];
      bytes = 0;
      while (inHand.size >= raw.lanes) await Promise.race(inHand);
      const sent = raw.send(batch).then(() => {
        for (const m of batch) m.ack();
        inHand.delete(sent);
      });
      inHand.add(sent);
    },
    async settled(): Promise<void> {
      await Promise.all(inHand);
    },
  };
}
