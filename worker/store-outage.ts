import type { Logger } from "../shared/logger.ts";
import { retryUntilStopped } from "./retry-backoff.ts";

export interface StoreOutageOptions {
  /** Resolves when the database answers. */
  readonly pingStore: () => Promise<void>;
  /** Stops taking messages as the outage begins: pulls end, what waits is handed back. */
  readonly onDown: () => void;
  /** The database answers again: whoever waits to pull or store may go on. */
  readonly onUp: () => void;
  readonly stopping: AbortSignal;
  readonly onEvent: (event: string) => void;
  readonly logger: Logger;
}

/**
 * The database's state as the consume loop sees it. After a batch failed to store, nothing is
 * pulled and nothing waits until the database answers a ping: an outage then costs each message
 * the one delivery that found the database down, not every delivery it has left.
 */
export interface StoreOutage {
  /** Whether a batch failed to store and the database has not answered since. */
  readonly down: boolean;
  /** A batch failed to store: pulling pauses. Once per outage, whichever batches failed. */
  begin(): void;
  /** Pings, waiting longer after each failure, until the database answers or the loop stops. */
  waitUntilAnswers(): Promise<void>;
}

export function createStoreOutage(options: StoreOutageOptions): StoreOutage {
  const { logger } = options;
  let down = false;
  return {
    get down() {
      return down;
    },
    begin() {
      if (down) return;
      down = true;
      options.onEvent("paused");
      logger.warn("database unavailable: pulling paused until it answers");
      options.onDown();
    },
    async waitUntilAnswers() {
      if (!(await retryUntilStopped(options.pingStore, options.stopping))) return;
      down = false;
      options.onEvent("resumed");
      logger.info("database answers again: pulling resumed");
      options.onUp();
    },
  };
}
