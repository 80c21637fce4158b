import { rowsOfMessages, type StorableMessage } from "./metric-rows.ts";
import type { MessagesInserted, MetricStore } from "./metric-store.ts";

/**
 * Stores a batch's messages in one insert, leaving out the rows measured before `cutoffMs`
 * (retention would delete them at its next run): by the store's own `insertMessages` when it
 * has one, else as the rows of every message, each message's rows kept together.
 */
export async function insertMessages(
  store: MetricStore,
  messages: readonly StorableMessage[],
  cutoffMs: number | undefined,
): Promise<MessagesInserted> {
  if (store.insertMessages) return store.insertMessages(messages, cutoffMs);
  const { perMessage, expired } = rowsOfMessages(messages, cutoffMs);
  const rows = perMessage.flat();
  const added = rows.length === 0 ? 0 : await store.insert(rows);
  return { added, kept: perMessage.map((r) => r.length), expired, rejected: new Map() };
}
