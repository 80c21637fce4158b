import type { JsMsg } from "nats";

/**
 * Most bytes of messages in one transaction. A batch's rows are built in memory and, for
 * PostgreSQL, sent as one parameter, so a batch's bytes are what a worker's memory follows.
 * Draining a million metrics in 1,000-metric messages into PostgreSQL at 1 MiB a batch peaked
 * at ~400 MB, at 256 KiB at ~300 MB (~200 MB with the worker's young generation bounded, see
 * worker/command.ts), equally fast; at 128 KiB and below PostgreSQL's cost per statement shows.
 */
export const BATCH_BYTES = 256 * 1024;

/**
 * The messages pulled and not yet begun, in arrival order, with their bytes counted: the
 * puller fills it until a whole batch waits, the scheduler takes batches from its head.
 */
export interface HeldMessages extends Iterable<JsMsg> {
  readonly count: number;
  /** Whether a whole batch waits, by count (`batchSize`) or by bytes (`BATCH_BYTES`). */
  hasFullBatch(): boolean;
  add(msg: JsMsg): void;
  /** Takes the next batch from the head; empty only when nothing is held. */
  takeBatch(): JsMsg[];
  /** Takes every message held, to hand them back. */
  takeAll(): JsMsg[];
}

export function createHeldMessages(batchSize: number): HeldMessages {
  const messages: JsMsg[] = [];
  let bytes = 0;
  return {
    get count() {
      return messages.length;
    },
    hasFullBatch: () => messages.length >= batchSize || bytes >= BATCH_BYTES,
    add(msg) {
      messages.push(msg);
      bytes += msg.data.byteLength;
    },
    takeBatch() {
      const batch = messages.splice(0, batchLength(messages, batchSize));
      for (const msg of batch) bytes -= msg.data.byteLength;
      return batch;
    },
    takeAll() {
      bytes = 0;
      return messages.splice(0);
    },
    [Symbol.iterator]: () => messages[Symbol.iterator](),
  };
}

/** How many messages from the head of the queue make the next batch: at least one. */
export function batchLength(queue: readonly JsMsg[], batchSize: number): number {
  let bytes = 0;
  let n = 0;
  while (n < queue.length && n < batchSize) {
    bytes += queue[n]?.data.byteLength ?? 0;
    if (n > 0 && bytes > BATCH_BYTES) break;
    n++;
  }
  return n;
}
