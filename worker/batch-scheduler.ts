import { setImmediate } from "node:timers/promises";
import type { JsMsg } from "nats";
import type { Logger } from "../shared/logger.ts";
import { retryDelayMs, type BatchOutcome } from "./batch-processor.ts";
import type { HeldMessages } from "./held-messages.ts";
import type { StoreOutage } from "./store-outage.ts";
import type { WakeSignal } from "./wake-signal.ts";

export interface BatchSchedulerOptions {
  /** Where batches are taken from. */
  readonly held: HeldMessages;
  /** Most batches being stored at once, each on its own database connection. */
  readonly concurrency: number;
  /** The first delivery's ack wait: held messages report progress well within it. */
  readonly ackWaitMs: number;
  readonly processBatch: (messages: readonly JsMsg[]) => Promise<BatchOutcome>;
  readonly onBatch?: ((outcome: BatchOutcome, messages: readonly JsMsg[]) => void) | undefined;
  /** Told when a batch failed to store; while down, no batch starts. */
  readonly outage: StoreOutage;
  /** Waited on when there is nothing to do; notified when a batch starts or ends. */
  readonly changed: WakeSignal;
  readonly stopping: AbortSignal;
  readonly logger: Logger;
}

export interface BatchScheduler {
  /** Starts batches until the loop stops, then waits for the batches in hand to end. */
  run(): Promise<void>;
  /**
   * Reports progress (`working()`) on every message in hand or held, a few times per ack wait,
   * until the function returned is called: a message waiting for a slow commit, or for its turn
   * behind one, is then never redelivered to another worker (which would store it a second time).
   */
  keepInProgress(): () => void;
}

/**
 * Stores what is held in batches: whatever has arrived while earlier batches were being stored,
 * up to a batch, becomes the next batch, and up to `concurrency` batches are stored at once. A
 * PostgreSQL server spends a core on each insert, so a second batch in flight uses the machine's
 * other cores; a message is still acked only after the transaction holding it committed,
 * whichever batch it is in.
 */
export function createBatchScheduler(options: BatchSchedulerOptions): BatchScheduler {
  const { held, outage, changed, logger } = options;
  const inHand = new Set<readonly JsMsg[]>();
  // A function, not the property itself: TypeScript would otherwise narrow it across awaits.
  const stopped = () => options.stopping.aborted;

  async function run(): Promise<void> {
    let gathered = false;
    while (!stopped()) {
      if (outage.down && inHand.size === 0) {
        await outage.waitUntilAnswers();
        continue;
      }
      if (outage.down || held.count === 0 || inHand.size >= options.concurrency) {
        await changed.wait();
        continue;
      }
      if (!held.hasFullBatch() && !gathered) {
        // Messages come one by one from a pull's iterator: let the ones already read from the
        // socket join them, or a free lane would store a batch of one message per commit.
        await setImmediate();
        gathered = true;
        continue;
      }
      gathered = false;
      void storeBatch(held.takeBatch());
      changed.notify();
    }
    while (inHand.size > 0) await changed.wait();
  }

  async function storeBatch(batch: readonly JsMsg[]): Promise<void> {
    inHand.add(batch);
    try {
      const outcome = await options.processBatch(batch);
      options.onBatch?.(outcome, batch);
      if (outcome.storeError) outage.begin();
    } catch (err) {
      // Not expected: the processor settles every message itself. Handed back, to be tried again.
      logger.error({ err }, "processing a batch failed; its messages will be redelivered");
      for (const msg of batch) msg.nak(retryDelayMs(msg.info.deliveryCount));
    } finally {
      inHand.delete(batch);
      changed.notify();
    }
  }

  function keepInProgress(): () => void {
    const heartbeat = setInterval(
      () => {
        for (const batch of inHand) for (const msg of batch) msg.working();
        for (const msg of held) msg.working();
      },
      Math.max(1000, options.ackWaitMs / 3),
    );
    return () => {
      clearInterval(heartbeat);
    };
  }

  return { run, keepInProgress };
}
