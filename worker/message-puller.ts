import { ConsumerDebugEvents, type Consumer, type ConsumerMessages } from "nats";
import type { Logger } from "../shared/logger.ts";
import { retryDelayMs } from "./batch-processor.ts";
import type { ConsumerRecovery } from "./consumer-recovery.ts";
import { BATCH_BYTES, type HeldMessages } from "./held-messages.ts";
import type { WakeSignal } from "./wake-signal.ts";

export interface MessagePullerOptions {
  /** The consumer to pull from: another one once it was recreated. */
  readonly consumer: () => Consumer;
  /** Where what arrives waits for the scheduler. */
  readonly held: HeldMessages;
  /** The largest message the server takes (its `max_payload`): a pull must have room for one. */
  readonly maxPayload: () => number;
  /** False while the database is down: nothing is pulled, and what still arrives is handed back. */
  readonly storeUp: () => boolean;
  readonly recovery: ConsumerRecovery;
  /** Waited on when there is nothing to do; notified when a message arrives or a pull ends. */
  readonly changed: WakeSignal;
  readonly stopping: AbortSignal;
  readonly onEvent: (event: string) => void;
  readonly logger: Logger;
}

export interface MessagePuller {
  /** Keeps pulls open while less than a batch is held, until the loop stops. */
  run(): Promise<void>;
  /** Ends every open pull: when the loop stops, and when the database goes down. */
  stopPulls(): void;
}

/**
 * Pulls from the durable consumer into the held messages. What a worker holds is bounded by
 * bytes, not only by the consumer's `max_ack_pending` (which counts messages, and lets 2,000
 * messages of a megabyte each arrive): it pulls again only while less than a batch is held, with
 * a few pulls of bounded size open. So a worker holds the batches being stored, a batch waiting
 * and those pulls, whatever the size of the messages.
 */
export function createMessagePuller(options: MessagePullerOptions): MessagePuller {
  const { held, recovery, changed, logger } = options;
  const pulls = new Set<ConsumerMessages>();
  // Functions, not values: TypeScript would otherwise narrow them across awaits.
  const stopped = () => options.stopping.aborted;
  const pulling = () => options.storeUp() && !stopped();
  /** A pull's byte limit; a message larger than it would never be delivered. */
  const pullBytes = () => Math.max(BATCH_BYTES, options.maxPayload() + PULL_BYTES_MARGIN);

  async function run(): Promise<void> {
    while (!stopped()) {
      if (recovery.running) {
        await recovery.running;
        continue;
      }
      if (!pulling() || held.hasFullBatch() || pulls.size >= PULLS_AT_ONCE) {
        await changed.wait();
        continue;
      }
      try {
        const pull = await options
          .consumer()
          .fetch({ max_bytes: pullBytes(), expires: PULL_EXPIRES_MS });
        pulls.add(pull);
        void receive(pull);
      } catch (err) {
        await recovery.recover(err);
      }
    }
  }

  async function receive(pull: ConsumerMessages): Promise<void> {
    void reportEvents(pull);
    let received = 0;
    try {
      for await (const msg of pull) {
        // nats-server 2.9 does not say when a pull with a byte limit has delivered its batch,
        // and nats.js would then wait for the pull to expire with every message in hand: a
        // pull that has its batch is ended here.
        if (++received === PULL_BATCH) pull.stop();
        if (stopped()) {
          // Arrived after the loop stopped: handed back at once, for another worker to take.
          msg.nak();
          continue;
        }
        if (!pulling()) {
          // Arrived after the database failed: handed back for later, as the held ones were.
          msg.nak(retryDelayMs(msg.info.deliveryCount));
          continue;
        }
        held.add(msg);
        changed.notify();
      }
      recovery.succeeded();
    } catch (err) {
      if (!stopped()) await recovery.recover(err);
    } finally {
      pulls.delete(pull);
      changed.notify();
    }
  }

  /** Consumer status events (missed heartbeats, consumer deleted…) become log lines and events. */
  async function reportEvents(pull: ConsumerMessages): Promise<void> {
    for await (const status of await pull.status()) {
      if (Object.values<string>(ConsumerDebugEvents).includes(status.type)) continue;
      options.onEvent(status.type);
      logger.warn({ event: status.type, data: status.data }, "consumer event");
    }
  }

  return {
    run,
    stopPulls() {
      for (const pull of pulls) pull.stop();
    },
  };
}

/**
 * Pulls open at once. nats.js ends a pull that has a byte limit at 100 messages, and a worker
 * storing into SQLite blocks its event loop for each insert: with more pulls open, the next
 * messages are already on their way while a batch is being stored. Draining 100-metric
 * messages into SQLite: ~140,000 metrics/s with 2, ~210,000/s with 4 (raw loop ~230,000/s).
 */
export const PULLS_AT_ONCE = 4;

/**
 * Room in a pull for a message's subject, reply subject and protocol: the server counts them in
 * a pull's bytes, and a message that does not fit even an empty pull is never delivered.
 */
export const PULL_BYTES_MARGIN = 64 * 1024;

/**
 * The messages a pull asks for: nats.js asks for 100 when a pull has a byte limit (it takes no
 * count beside one). From nats-server 2.9.10 a batch-complete pull otherwise ended only at
 * `PULL_EXPIRES_MS`, and the worker drained ~27× slower (bench/notes.md, 2026-12-05).
 */
export const PULL_BATCH = 100;

/**
 * How long each pull request lives. A pull is held by the consumer's leader and dies with it;
 * nats.js pulls again after two missed idle heartbeats (half this each), and after a reconnect
 * once the consumer answers, and the loop pulls afresh when a pull ends. With nats.js's 30 s the
 * worker idled 30 to 48 s with hundreds of messages pending after a leader failover (fault
 * scenario 2); the cost of a shorter one is an idle worker's pull request, and a heartbeat,
 * every few seconds.
 */
export const PULL_EXPIRES_MS = 5000;
