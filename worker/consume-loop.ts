import type { JetStreamClient, JsMsg } from "nats";
import type { Logger } from "../shared/logger.ts";
import { retryDelayMs, type BatchOutcome } from "./batch-processor.ts";
import { createBatchScheduler } from "./batch-scheduler.ts";
import { createConsumerRecovery } from "./consumer-recovery.ts";
import { createHeldMessages } from "./held-messages.ts";
import { createMessagePuller } from "./message-puller.ts";
import { createStoreOutage } from "./store-outage.ts";
import { createWakeSignal } from "./wake-signal.ts";

export interface ConsumeLoopOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly consumer: string;
  /** Most messages stored in one transaction. */
  readonly batchSize: number;
  /** Most batches being stored at once, each on its own database connection. */
  readonly concurrency: number;
  /** The largest message the server takes (its `max_payload`): a pull must have room for one. */
  readonly maxPayload: () => number;
  /** The first delivery's ack wait: held messages report progress well within it. */
  readonly ackWaitMs: number;
  readonly processBatch: (messages: readonly JsMsg[]) => Promise<BatchOutcome>;
  /** Resolves when the database answers; after a failed batch, pulling resumes only then. */
  readonly pingStore: () => Promise<void>;
  /** Creates the consumer (and streams) again after the server lost or deleted it. */
  readonly recreateConsumer: () => Promise<void>;
  readonly onBatch?: (outcome: BatchOutcome, messages: readonly JsMsg[]) => void;
  /** Consumer and loop events, by name: heartbeats_missed, consumer_recreated, paused, resumed… */
  readonly onEvent?: (event: string) => void;
  readonly logger: Logger;
}

export interface ConsumeLoop {
  /** Stops pulling, finishes the batches in hand, and hands back what was pulled but not begun. */
  stop(): Promise<void>;
  /** Settles when the loop has ended. */
  readonly done: Promise<void>;
}

/**
 * Pulls from the durable consumer and stores what arrives in batches, acking each message only
 * after its batch committed. The parts, each in its own module:
 * - the puller (message-puller.ts) keeps a few pulls of bounded size open while less than a
 *   batch is held (held-messages.ts);
 * - the scheduler (batch-scheduler.ts) stores what is held, up to `concurrency` batches at once,
 *   and keeps every message in hand or held from being redelivered (`working()`);
 * - when a batch fails for the database (store-outage.ts), pulling stops, what is held is handed
 *   back, and both resume only once the database answers, so that an outage does not burn
 *   deliveries; when a pull fails (consumer-recovery.ts), the consumer is recreated if the
 *   server lost it, else pulling resumes after a growing pause.
 * They share the held messages and a signal (wake-signal.ts) that wakes whichever part waits.
 */
export async function startConsumeLoop(options: ConsumeLoopOptions): Promise<ConsumeLoop> {
  const { logger } = options;
  const onEvent = (name: string) => options.onEvent?.(name);
  const stopping = new AbortController();
  const changed = createWakeSignal();
  const held = createHeldMessages(options.batchSize);
  let consumer = await options.js.consumers.get(options.stream, options.consumer);

  const recovery = createConsumerRecovery({
    consumer: () => consumer,
    async recreateConsumer() {
      await options.recreateConsumer();
      consumer = await options.js.consumers.get(options.stream, options.consumer);
    },
    changed,
    stopping: stopping.signal,
    onEvent,
    logger,
  });
  const outage = createStoreOutage({
    pingStore: options.pingStore,
    onDown() {
      // Until the database answers: nothing pulled, nothing held.
      puller.stopPulls();
      for (const msg of held.takeAll()) msg.nak(retryDelayMs(msg.info.deliveryCount));
    },
    onUp: () => {
      changed.notify();
    },
    stopping: stopping.signal,
    onEvent,
    logger,
  });
  const puller = createMessagePuller({
    consumer: () => consumer,
    held,
    maxPayload: options.maxPayload,
    storeUp: () => !outage.down,
    recovery,
    changed,
    stopping: stopping.signal,
    onEvent,
    logger,
  });
  const scheduler = createBatchScheduler({
    held,
    concurrency: options.concurrency,
    ackWaitMs: options.ackWaitMs,
    processBatch: options.processBatch,
    onBatch: options.onBatch,
    outage,
    changed,
    stopping: stopping.signal,
    logger,
  });

  const stopReportingProgress = scheduler.keepInProgress();
  const done = Promise.all([puller.run(), scheduler.run()])
    .then(() => undefined)
    .finally(stopReportingProgress);

  return {
    done,
    async stop() {
      stopping.abort();
      puller.stopPulls();
      changed.notify();
      await done;
      // Pulled but never begun: hand them back at once so another worker can take them.
      for (const msg of held.takeAll()) msg.nak();
      logger.info("consumer stopped");
    },
  };
}
