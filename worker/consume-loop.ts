import { setTimeout as sleep } from "node:timers/promises";
import {
  ConsumerDebugEvents,
  ConsumerEvents,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from "nats";
import type { Logger } from "../shared/logger.ts";
import { retryDelayMs, type BatchOutcome } from "./batch-processor.ts";

export interface ConsumeLoopOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly consumer: string;
  /** Most messages stored in one transaction. */
  readonly batchSize: number;
  /** The first delivery's ack wait: held messages report progress well within it. */
  readonly ackWaitMs: number;
  readonly processBatch: (messages: readonly JsMsg[]) => Promise<BatchOutcome>;
  /** Resolves when the database answers; after a failed batch, pulling resumes only then. */
  readonly pingStore: () => Promise<void>;
  /** Creates the consumer (and streams) again after the server lost or deleted it. */
  readonly recreateConsumer: () => Promise<void>;
  readonly onBatch?: (outcome: BatchOutcome, messages: readonly JsMsg[]) => void;
  /** Consumer and loop events, by name: heartbeats_missed, consumer_deleted, paused, resumed… */
  readonly onEvent?: (event: string) => void;
  readonly logger: Logger;
}

export interface ConsumeLoop {
  /** Stops pulling, finishes the batch in hand, and hands back what was pulled but not begun. */
  stop(): Promise<void>;
  /** Settles when the loop has ended. */
  readonly done: Promise<void>;
}

/**
 * Pulls from the durable consumer and stores what arrives in batches: whatever has arrived while
 * the previous batch was being stored, up to `batchSize`, becomes the next batch. Messages wait
 * in a queue this loop owns, which the consumer's `max_ack_pending` bounds: the server sends no
 * more than that many unacknowledged messages. Every message held reports progress (`working()`)
 * so that none is redelivered while it waits its turn.
 *
 * When the database fails, the loop stops pulling, hands back what it holds, and resumes only
 * once the database answers again, so that an outage does not burn deliveries.
 */
export async function startConsumeLoop(options: ConsumeLoopOptions): Promise<ConsumeLoop> {
  const { logger } = options;
  const event = (name: string) => options.onEvent?.(name);
  const queue: JsMsg[] = [];
  let inHand: readonly JsMsg[] = [];
  let wake: (() => void) | undefined;
  const stopping = new AbortController();
  // A function, not the property itself: TypeScript would otherwise narrow it across awaits.
  const stopped = () => stopping.signal.aborted;

  async function subscribe(): Promise<ConsumerMessages> {
    const consumer = await options.js.consumers.get(options.stream, options.consumer);
    const messages = await consumer.consume({
      max_messages: options.batchSize * 2,
      expires: PULL_EXPIRES_MS,
      callback: (msg) => {
        queue.push(msg);
        wake?.();
      },
    });
    void watch(messages);
    return messages;
  }

  // An object, not a variable: TypeScript would otherwise narrow it across awaits.
  const consumerState = { lost: false };
  async function watch(messages: ConsumerMessages): Promise<void> {
    for await (const status of await messages.status()) {
      if (Object.values<string>(ConsumerDebugEvents).includes(status.type)) continue;
      event(status.type);
      logger.warn({ event: status.type, data: status.data }, "consumer event");
      const gone =
        status.type === ConsumerEvents.ConsumerDeleted ||
        status.type === ConsumerEvents.ConsumerNotFound ||
        status.type === ConsumerEvents.StreamNotFound;
      if (gone) {
        consumerState.lost = true;
        wake?.();
      }
    }
  }

  /**
   * Creates the consumer again and pulls from it afresh: a running consume() does not resume
   * by itself once its consumer was deleted. Whatever the old consumer had delivered and not
   * seen acked, the new one delivers again, and storing it twice adds no row.
   */
  async function recreate(old: ConsumerMessages): Promise<ConsumerMessages | undefined> {
    old.stop();
    for (let delay = 500; !stopped(); delay = Math.min(delay * 2, 10_000)) {
      consumerState.lost = false;
      try {
        await options.recreateConsumer();
        const messages = await subscribe();
        event("consumer_recreated");
        logger.info("consumer recreated");
        return messages;
      } catch (err) {
        logger.error({ err }, "recreating the consumer failed; trying again");
        await sleep(delay, undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
    return undefined;
  }

  /** Until the database answers: nothing pulled, nothing held. */
  async function pauseForStore(messages: ConsumerMessages): Promise<ConsumerMessages | undefined> {
    event("paused");
    logger.warn("database unavailable: pulling paused until it answers");
    messages.stop();
    for (const msg of queue.splice(0)) msg.nak(retryDelayMs(msg.info.deliveryCount));
    for (let delay = 500; !stopped(); delay = Math.min(delay * 2, 10_000)) {
      try {
        await options.pingStore();
        event("resumed");
        logger.info("database answers again: pulling resumed");
        return await subscribe();
      } catch {
        await sleep(delay, undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
    return undefined;
  }

  let messages: ConsumerMessages | undefined = await subscribe();
  const heartbeat = setInterval(
    () => {
      for (const msg of inHand) msg.working();
      for (const msg of queue) msg.working();
    },
    Math.max(1000, options.ackWaitMs / 3),
  );

  const done = (async () => {
    while (!stopped() && messages) {
      if (consumerState.lost) {
        messages = await recreate(messages);
        continue;
      }
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      inHand = queue.splice(0, batchLength(queue, options.batchSize));
      const outcome = await options.processBatch(inHand);
      options.onBatch?.(outcome, inHand);
      inHand = [];
      if (outcome.storeError && !stopped()) messages = await pauseForStore(messages);
    }
  })().finally(() => {
    clearInterval(heartbeat);
  });

  return {
    done,
    async stop() {
      stopping.abort();
      messages?.stop();
      wake?.();
      await done;
      await messages?.closed().catch(() => undefined);
      // Pulled but never begun: hand them back at once so another worker can take them.
      for (const msg of queue.splice(0)) msg.nak();
      logger.info("consumer stopped");
    },
  };
}

/**
 * How long each pull request lives. A pull is held by the consumer's leader and dies with it;
 * nats.js pulls again after two missed idle heartbeats (half this each), and after a reconnect
 * once the consumer answers, retrying every this long. With nats.js's 30 s the worker idled 30 to
 * 48 s with hundreds of messages pending after a leader failover (fault scenario 2); the cost of
 * a shorter one is an idle worker's pull request, and a heartbeat, every few seconds.
 */
export const PULL_EXPIRES_MS = 5000;

/**
 * Most bytes of messages in one transaction. A batch's rows are built in memory and, for
 * PostgreSQL, sent as one parameter: bounding it by bytes as well as by messages keeps a batch of
 * large messages (a backlog of 1,000-metric requests) from taking hundreds of megabytes.
 */
export const BATCH_BYTES = 1024 * 1024;

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
