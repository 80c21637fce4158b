import type { JsMsg } from "nats";
import { decodeMessage } from "../shared/envelope.ts";
import type { Logger } from "../shared/logger.ts";
import type { DeadLetterReason, DeadLetterSender } from "./dead-letters.ts";
import { insertMessages } from "./insert-messages.ts";
import type { StorableMessage } from "./metric-rows.ts";
import type { MessagesInserted, MetricStore } from "./metric-store.ts";

export interface BatchOutcome {
  /** Messages whose metrics are committed (or were already) and that were acked. */
  readonly stored: number;
  /** Metrics of the stored messages. */
  readonly rows: number;
  /** Rows the commit added; fewer than `rows` when some were stored before (a redelivery). */
  readonly rowsAdded: number;
  /** Metrics of the stored messages measured before the retention window: not stored. */
  readonly expired: number;
  /** The reason of each message dead-lettered. */
  readonly deadLettered: readonly DeadLetterReason[];
  /** Messages handed back for a later delivery because the database failed. */
  readonly retried: number;
  /** The database error that made this batch retry, if any. */
  readonly storeError: Error | undefined;
  /** How long the insert took, to its commit (or its failure). */
  readonly storeSeconds: number | undefined;
}

export interface BatchProcessorOptions {
  readonly store: MetricStore;
  readonly deadLetter: DeadLetterSender;
  readonly maxDeliver: number;
  readonly logger: Logger;
  /** `RETENTION` in milliseconds: metrics measured longer ago are not stored. */
  readonly retentionMs?: number | undefined;
  /** The clock the retention window is measured by. */
  readonly now?: () => number;
}

/**
 * Decides every message's fate, in this one place, exactly once per delivery:
 * - it cannot ever be stored (undecodable, failing the schema, unknown version): dead-lettered,
 *   then terminated;
 * - its metrics committed: acked, only after the commit;
 * - the database failed: nak'd with a delay growing with its deliveries, or dead-lettered when
 *   this was its last allowed delivery, so that nothing is dropped in silence;
 * - the store refused some of its rows for good (a remote-write receiver's 4xx): dead-lettered
 *   (`rejected`, the store's reason the detail), while the other messages of the batch are acked.
 * A message whose dead-lettering fails is nak'd, to be tried again.
 */
export function createBatchProcessor(options: BatchProcessorOptions) {
  const { store, deadLetter, logger } = options;

  /** Dead-letters and terminates `msg`, noting the reason in `done`; naks it when that failed. */
  async function toDeadLetters(
    msg: JsMsg,
    reason: DeadLetterReason,
    detail: string,
    done: DeadLetterReason[],
  ): Promise<void> {
    try {
      await deadLetter(msg, reason, detail);
      // No reason: servers before 2.10.4 do not understand "+TERM <reason>" and ignore it,
      // leaving the message to be delivered again. The reason is in the dead letter.
      msg.term();
      done.push(reason);
      logger.warn({ seq: msg.info.streamSequence, reason, detail }, "message dead-lettered");
    } catch (err) {
      msg.nak(retryDelayMs(msg.info.deliveryCount));
      logger.error(
        { seq: msg.info.streamSequence, reason, err },
        "dead-lettering failed; will retry",
      );
    }
  }

  return async function processBatch(messages: readonly JsMsg[]): Promise<BatchOutcome> {
    const deadLettered: DeadLetterReason[] = [];
    const nothingStored = {
      stored: 0,
      rows: 0,
      rowsAdded: 0,
      expired: 0,
      deadLettered,
      retried: 0,
      storeError: undefined,
      storeSeconds: undefined,
    };
    const storable: JsMsg[] = [];
    let decoded: StorableMessage[] = [];
    for (const msg of messages) {
      const message = decodeMessage(msg.data);
      if (message.ok) {
        storable.push(msg);
        decoded.push(message);
      } else {
        await toDeadLetters(msg, message.reason, message.message, deadLettered);
      }
    }
    if (storable.length === 0) return nothingStored;

    // Measured before the retention window: retention would delete them at its next run, so
    // they are acked without being stored.
    const cutoffMs =
      options.retentionMs === undefined
        ? undefined
        : (options.now ?? Date.now)() - options.retentionMs;
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    let inserted: MessagesInserted;
    try {
      // Handed over, not kept: what lives while the store waits for its commit is the store's.
      const insertion = insertMessages(store, decoded, cutoffMs);
      decoded = [];
      inserted = await insertion;
    } catch (err) {
      const storeError = err instanceof Error ? err : new Error(String(err));
      let retried = 0;
      for (const msg of storable) {
        if (msg.info.deliveryCount >= options.maxDeliver) {
          await toDeadLetters(msg, "max_deliver", storeError.message, deadLettered);
        } else {
          msg.nak(retryDelayMs(msg.info.deliveryCount));
          retried++;
        }
      }
      logger.error(
        { err: storeError, messages: storable.length },
        "store failed; messages will be redelivered",
      );
      return { ...nothingStored, retried, storeError, storeSeconds: elapsed() };
    }
    const storeSeconds = elapsed();
    // Acks the messages none of whose rows the store refused, and dead-letters the others with
    // the store's reason.
    let stored = 0;
    let rows = 0;
    for (const [i, msg] of storable.entries()) {
      const reason = inserted.rejected.get(i);
      if (reason === undefined) {
        msg.ack();
        stored++;
        rows += inserted.kept[i] ?? 0;
      } else {
        await toDeadLetters(msg, "rejected", reason, deadLettered);
      }
    }
    return {
      ...nothingStored,
      stored,
      rows,
      rowsAdded: inserted.added,
      expired: inserted.expired,
      storeSeconds,
    };
  };
}

export type BatchProcessor = ReturnType<typeof createBatchProcessor>;

/** 1 s after the first delivery, doubling up to a minute. */
export function retryDelayMs(deliveries: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, deliveries - 1));
}
