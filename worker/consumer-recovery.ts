import type { Consumer } from "nats";
import { isNotFound } from "../shared/nats-errors.ts";
import type { Logger } from "../shared/logger.ts";
import { backoffMs, pauseUnlessStopped, retryUntilStopped } from "./retry-backoff.ts";
import type { WakeSignal } from "./wake-signal.ts";

export interface ConsumerRecoveryOptions {
  /** The consumer being pulled from. */
  readonly consumer: () => Consumer;
  /** Creates the consumer (and streams) again and makes it the one `consumer()` returns. */
  readonly recreateConsumer: () => Promise<void>;
  /** Notified when a recovery ends, so that pulling resumes. */
  readonly changed: WakeSignal;
  readonly stopping: AbortSignal;
  readonly onEvent: (event: string) => void;
  readonly logger: Logger;
}

/** What the puller does after a pull failed. */
export interface ConsumerRecovery {
  /** The recovery under way, if any: no pull starts before it ends. */
  readonly running: Promise<void> | undefined;
  /**
   * Creates the consumer again if the server lost it, else waits a little longer after each
   * failure in a row. One recovery at a time, whichever pull failed: the others wait for it.
   */
  recover(err: unknown): Promise<void>;
  /** A pull ended as it should: the next failure waits the shortest time again. */
  succeeded(): void;
}

export function createConsumerRecovery(options: ConsumerRecoveryOptions): ConsumerRecovery {
  const { logger, stopping } = options;
  let running: Promise<void> | undefined;
  let failures = 0;

  /**
   * Whatever the old consumer had delivered and not seen acked, the new one delivers again, and
   * storing it twice adds no row.
   */
  async function recreate(): Promise<void> {
    options.onEvent("consumer_lost");
    const recreated = await retryUntilStopped(options.recreateConsumer, stopping, (err) => {
      logger.error({ err }, "recreating the consumer failed; trying again");
    });
    if (!recreated) return;
    options.onEvent("consumer_recreated");
    logger.info("consumer recreated");
  }

  return {
    get running() {
      return running;
    },
    recover(err) {
      running ??= (async () => {
        failures++;
        if (await consumerGone(options.consumer())) {
          await recreate();
        } else {
          options.onEvent("pull_failed");
          logger.warn({ err }, "pulling failed; trying again");
          await pauseUnlessStopped(backoffMs(failures), stopping);
        }
      })().finally(() => {
        running = undefined;
        options.changed.notify();
      });
      return running;
    },
    succeeded() {
      failures = 0;
    },
  };
}

/** Whether the server says the consumer (or its stream) no longer exists. */
export async function consumerGone(consumer: Consumer): Promise<boolean> {
  try {
    await consumer.info();
    return false;
  } catch (err) {
    return isNotFound(err);
  }
}
