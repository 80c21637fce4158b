import type { JetStreamClient, JsMsg } from "nats";
import type { Logger } from "../shared/logger.ts";
import type { BatchOutcome } from "./batch-processor.ts";

export interface ConsumeLoopOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly consumer: string;
  /** Most messages stored in one transaction. */
  readonly batchSize: number;
  readonly processBatch: (messages: readonly JsMsg[]) => Promise<BatchOutcome>;
  readonly onBatch?: (outcome: BatchOutcome, messages: number) => void;
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
 * more than that many unacknowledged messages.
 */
export async function startConsumeLoop(options: ConsumeLoopOptions): Promise<ConsumeLoop> {
  const { logger } = options;
  const consumer = await options.js.consumers.get(options.stream, options.consumer);
  const queue: JsMsg[] = [];
  let wake: (() => void) | undefined;
  const stopping = new AbortController();

  const messages = await consumer.consume({
    max_messages: options.batchSize * 2,
    callback: (msg) => {
      queue.push(msg);
      wake?.();
    },
  });

  const done = (async () => {
    while (!stopping.signal.aborted) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      const batch = queue.splice(0, options.batchSize);
      const outcome = await options.processBatch(batch);
      options.onBatch?.(outcome, batch.length);
    }
  })();

  return {
    done,
    async stop() {
      stopping.abort();
      messages.stop();
      wake?.();
      await done;
      await messages.closed().catch(() => undefined);
      // Pulled but never begun: hand them back at once so another worker can take them.
      for (const msg of queue.splice(0)) msg.nak();
      logger.info("consumer stopped");
    },
  };
}
