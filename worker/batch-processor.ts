import type { JsMsg } from "nats";
import { decodeMessage } from "../shared/envelope.ts";
import type { Logger } from "../shared/logger.ts";
import type { DeadLetterReason, DeadLetterSender } from "./dead-letters.ts";
import { rowsOfMessage, type MetricRow } from "./metric-rows.ts";
import type { MetricStore } from "./metric-store.ts";
import { RejectedRows } from "./store-errors.ts";

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
 * - the store refused some of its rows for good (`RejectedRows`): dead-lettered (`rejected`,
 *   the store's reason the detail), while the messages of the batch without such rows are acked.
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

  /**
   * Acks the messages none of whose rows the store refused, and dead-letters the others with
   * the reason given for their first refused row.
   */
  async function settleRejected(
    storable: readonly { msg: JsMsg; rows: MetricRow[] }[],
    refusal: RejectedRows,
    outcome: Pick<BatchOutcome, "expired" | "storeSeconds"> & {
      deadLettered: DeadLetterReason[];
    },
  ): Promise<BatchOutcome> {
    const { deadLettered } = outcome;
    let offset = 0;
    let stored = 0;
    let rows = 0;
    for (const { msg, rows: own } of storable) {
      let reason: string | undefined;
      for (let i = offset; i < offset + own.length && reason === undefined; i++) {
        reason = refusal.rejected.get(i);
      }
      offset += own.length;
      if (reason === undefined) {
        msg.ack();
        stored++;
        rows += own.length;
      } else {
        await toDeadLetters(msg, "rejected", reason, deadLettered);
      }
    }
    return {
      stored,
      rows,
      rowsAdded: refusal.rowsAdded,
      ...outcome,
      retried: 0,
      storeError: undefined,
    };
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
    const storable: { msg: JsMsg; rows: MetricRow[] }[] = [];
    for (const msg of messages) {
      const decoded = decodeMessage(msg.data);
      if (decoded.ok) storable.push({ msg, rows: rowsOfMessage(decoded) });
      else await toDeadLetters(msg, decoded.reason, decoded.message, deadLettered);
    }
    if (storable.length === 0) return nothingStored;

    let expired = 0;
    if (options.retentionMs !== undefined) {
      // Retention would delete them at its next run: they are acked without being stored. Each
      // message keeps its own rows, so that a store's refusal by row index finds its message.
      const cutoff = (options.now ?? Date.now)() - options.retentionMs;
      for (const item of storable) {
        const kept = item.rows.filter((r) => r.timeMs >= cutoff);
        expired += item.rows.length - kept.length;
        item.rows = kept;
      }
    }
    const rows = storable.flatMap((s) => s.rows);
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    let rowsAdded: number;
    try {
      rowsAdded = rows.length === 0 ? 0 : await store.insert(rows);
    } catch (err) {
      if (err instanceof RejectedRows) {
        return settleRejected(storable, err, { deadLettered, expired, storeSeconds: elapsed() });
      }
      const storeError = err instanceof Error ? err : new Error(String(err));
      let retried = 0;
      for (const { msg } of storable) {
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
    for (const { msg } of storable) msg.ack();
    return {
      ...nothingStored,
      stored: storable.length,
      rows: rows.length,
      rowsAdded,
      expired,
      storeSeconds,
    };
  };
}

export type BatchProcessor = ReturnType<typeof createBatchProcessor>;

/** 1 s after the first delivery, doubling up to a minute. */
export function retryDelayMs(deliveries: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, deliveries - 1));
}
