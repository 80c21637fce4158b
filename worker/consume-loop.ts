import { setImmediate, setTimeout as sleep } from "node:timers/promises";
import {
  ConsumerDebugEvents,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
  type NatsError,
} from "nats";
import type { Logger } from "../shared/logger.ts";
import { retryDelayMs, type BatchOutcome } from "./batch-processor.ts";

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
 * Pulls from the durable consumer and stores what arrives in batches: whatever has arrived while
 * earlier batches were being stored, up to `batchSize` messages and `BATCH_BYTES`, becomes the
 * next batch, and up to `concurrency` batches are stored at once. A PostgreSQL server spends a
 * core on each insert, so a second batch in flight uses the machine's other cores; a message is
 * still acked only after the transaction holding it committed, whichever batch it is in.
 *
 * What the worker holds is bounded by bytes, not only by the consumer's `max_ack_pending` (which
 * counts messages, and lets 2,000 messages of a megabyte each arrive): the loop pulls again only
 * while less than a batch waits, with a few pulls of bounded size open. So a worker holds the
 * batches being stored, a batch waiting and those pulls, whatever the size of the messages.
 * Every message held reports progress (`working()`) so that none is redelivered while it waits.
 *
 * When the database fails, the loop stops pulling, hands back what waits, and resumes only once
 * the database answers again, so that an outage does not burn deliveries.
 */
export async function startConsumeLoop(options: ConsumeLoopOptions): Promise<ConsumeLoop> {
  const { logger, batchSize } = options;
  const event = (name: string) => options.onEvent?.(name);
  const waiting: JsMsg[] = [];
  let waitingBytes = 0;
  const inHand = new Set<readonly JsMsg[]>();
  const changed = createSignal();
  const stopping = new AbortController();
  // A function, not the property itself: TypeScript would otherwise narrow it across awaits.
  const stopped = () => stopping.signal.aborted;
  const pause = (ms: number) =>
    sleep(ms, undefined, { signal: stopping.signal }).catch(() => undefined);
  const pulls = new Set<ConsumerMessages>();
  // Objects, not variables: TypeScript would otherwise narrow them across awaits.
  const state = { storeDown: false };
  const recovery: { running: Promise<void> | undefined; failures: number } = {
    running: undefined,
    failures: 0,
  };
  let consumer: Consumer = await options.js.consumers.get(options.stream, options.consumer);

  // A function, for the same reason as `stopped`.
  const pulling = () => !state.storeDown && !stopped();
  const hasRoom = () => waiting.length < batchSize && waitingBytes < BATCH_BYTES;
  /** A pull's byte limit; a message larger than it would never be delivered. */
  const pullBytes = () => Math.max(BATCH_BYTES, options.maxPayload() + PULL_BYTES_MARGIN);

  /** Keeps up to PULLS_AT_ONCE pulls open while there is room. */
  async function pullMessages(): Promise<void> {
    while (!stopped()) {
      if (recovery.running) {
        await recovery.running;
        continue;
      }
      if (!pulling() || !hasRoom() || pulls.size >= PULLS_AT_ONCE) {
        await changed.wait();
        continue;
      }
      try {
        const pull = await consumer.fetch({ max_bytes: pullBytes(), expires: PULL_EXPIRES_MS });
        pulls.add(pull);
        void receive(pull);
      } catch (err) {
        await recover(err);
      }
    }
  }

  async function receive(pull: ConsumerMessages): Promise<void> {
    void reportEvents(pull);
    try {
      for await (const msg of pull) {
        if (stopped()) {
          // Arrived after the loop stopped: handed back at once, for another worker to take.
          msg.nak();
          continue;
        }
        if (!pulling()) {
          // Arrived after the database failed: handed back for later, as the waiting ones were.
          msg.nak(retryDelayMs(msg.info.deliveryCount));
          continue;
        }
        waiting.push(msg);
        waitingBytes += msg.data.byteLength;
        changed.notify();
      }
      recovery.failures = 0;
    } catch (err) {
      if (!stopped()) await recover(err);
    } finally {
      pulls.delete(pull);
      changed.notify();
    }
  }

  /**
   * After a failed pull: creates the consumer again if the server lost it, else waits a little
   * longer after each failure in a row. One recovery at a time, whichever pull failed.
   */
  function recover(err: unknown): Promise<void> {
    recovery.running ??= (async () => {
      recovery.failures++;
      if (await consumerGone()) {
        await recreate();
      } else {
        event("pull_failed");
        logger.warn({ err }, "pulling failed; trying again");
        await pause(Math.min(10_000, 250 * 2 ** recovery.failures));
      }
    })().finally(() => {
      recovery.running = undefined;
      changed.notify();
    });
    return recovery.running;
  }

  async function reportEvents(pull: ConsumerMessages): Promise<void> {
    for await (const status of await pull.status()) {
      if (Object.values<string>(ConsumerDebugEvents).includes(status.type)) continue;
      event(status.type);
      logger.warn({ event: status.type, data: status.data }, "consumer event");
    }
  }

  /** Whether the server says the consumer (or its stream) no longer exists. */
  async function consumerGone(): Promise<boolean> {
    try {
      await consumer.info();
      return false;
    } catch (err) {
      const code = (err as Partial<NatsError>).api_error?.err_code;
      return code === CONSUMER_NOT_FOUND || code === STREAM_NOT_FOUND;
    }
  }

  /**
   * Creates the consumer again. Whatever the old consumer had delivered and not seen acked, the
   * new one delivers again, and storing it twice adds no row.
   */
  async function recreate(): Promise<void> {
    event("consumer_lost");
    for (let delay = 500; !stopped(); delay = Math.min(delay * 2, 10_000)) {
      try {
        await options.recreateConsumer();
        consumer = await options.js.consumers.get(options.stream, options.consumer);
        event("consumer_recreated");
        logger.info("consumer recreated");
        return;
      } catch (err) {
        logger.error({ err }, "recreating the consumer failed; trying again");
        await pause(delay);
      }
    }
  }

  /** Starts storing batches while there are messages waiting and a free lane. */
  async function storeBatches(): Promise<void> {
    let gathered = false;
    while (!stopped()) {
      if (state.storeDown && inHand.size === 0) {
        await waitForStore();
        continue;
      }
      if (state.storeDown || waiting.length === 0 || inHand.size >= options.concurrency) {
        await changed.wait();
        continue;
      }
      if (waiting.length < batchSize && waitingBytes < BATCH_BYTES && !gathered) {
        // Messages come one by one from a pull's iterator: let the ones already read from the
        // socket join them, or a free lane would store a batch of one message per commit.
        await setImmediate();
        gathered = true;
        continue;
      }
      gathered = false;
      const batch = waiting.splice(0, batchLength(waiting, batchSize));
      for (const msg of batch) waitingBytes -= msg.data.byteLength;
      void storeBatch(batch);
      changed.notify();
    }
    while (inHand.size > 0) await changed.wait();
  }

  async function storeBatch(batch: readonly JsMsg[]): Promise<void> {
    inHand.add(batch);
    try {
      const outcome = await options.processBatch(batch);
      options.onBatch?.(outcome, batch);
      if (outcome.storeError && !state.storeDown) stopForStore();
    } catch (err) {
      // Not expected: the processor settles every message itself. Handed back, to be tried again.
      logger.error({ err }, "processing a batch failed; its messages will be redelivered");
      for (const msg of batch) msg.nak(retryDelayMs(msg.info.deliveryCount));
    } finally {
      inHand.delete(batch);
      changed.notify();
    }
  }

  /** Until the database answers: nothing pulled, nothing waiting. */
  function stopForStore(): void {
    state.storeDown = true;
    event("paused");
    logger.warn("database unavailable: pulling paused until it answers");
    for (const pull of pulls) pull.stop();
    for (const msg of waiting.splice(0)) msg.nak(retryDelayMs(msg.info.deliveryCount));
    waitingBytes = 0;
  }

  async function waitForStore(): Promise<void> {
    for (let delay = 500; !stopped(); delay = Math.min(delay * 2, 10_000)) {
      try {
        await options.pingStore();
        state.storeDown = false;
        event("resumed");
        logger.info("database answers again: pulling resumed");
        changed.notify();
        return;
      } catch {
        await pause(delay);
      }
    }
  }

  const heartbeat = setInterval(
    () => {
      for (const batch of inHand) for (const msg of batch) msg.working();
      for (const msg of waiting) msg.working();
    },
    Math.max(1000, options.ackWaitMs / 3),
  );

  const done = Promise.all([pullMessages(), storeBatches()])
    .then(() => undefined)
    .finally(() => {
      clearInterval(heartbeat);
    });

  return {
    done,
    async stop() {
      stopping.abort();
      for (const pull of pulls) pull.stop();
      changed.notify();
      await done;
      // Pulled but never begun: hand them back at once so another worker can take them.
      for (const msg of waiting.splice(0)) msg.nak();
      logger.info("consumer stopped");
    },
  };
}

/** Wakes whoever waits for the loop's state to change: a message arrived, a batch ended, a stop. */
function createSignal() {
  let waiters: (() => void)[] = [];
  return {
    wait: () => new Promise<void>((resolve) => waiters.push(resolve)),
    notify() {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
  };
}

/**
 * Pulls open at once. nats.js ends a pull that has a byte limit at 100 messages, and a worker
 * storing into SQLite blocks its event loop for each insert: with more pulls open, the next
 * messages are already on their way while a batch is being stored. Draining 100-metric
 * messages into SQLite: ~140,000 metrics/s with 2, ~210,000/s with 4 (raw loop ~230,000/s).
 */
const PULLS_AT_ONCE = 4;

/** JetStream's error codes for a consumer, or a stream, that does not exist. */
const CONSUMER_NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;

/**
 * Room in a pull for a message's subject, reply subject and protocol: the server counts them in
 * a pull's bytes, and a message that does not fit even an empty pull is never delivered.
 */
const PULL_BYTES_MARGIN = 64 * 1024;

/**
 * How long each pull request lives. A pull is held by the consumer's leader and dies with it;
 * nats.js pulls again after two missed idle heartbeats (half this each), and after a reconnect
 * once the consumer answers, and the loop pulls afresh when a pull ends. With nats.js's 30 s the worker idled 30 to
 * 48 s with hundreds of messages pending after a leader failover (fault scenario 2); the cost of
 * a shorter one is an idle worker's pull request, and a heartbeat, every few seconds.
 */
export const PULL_EXPIRES_MS = 5000;

/**
 * Most bytes of messages in one transaction. A batch's rows are built in memory and, for
 * PostgreSQL, sent as one parameter, so a batch's bytes are what a worker's memory follows.
 * Draining a million metrics in 1,000-metric messages into PostgreSQL at 1 MiB a batch peaked
 * at ~400 MB, at 256 KiB at ~300 MB (~200 MB with the worker's young generation bounded, see
 * worker/command.ts), equally fast; at 128 KiB and below PostgreSQL's cost per statement shows.
 */
export const BATCH_BYTES = 256 * 1024;

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
