/** What `npm run dlq` prints: pure functions, so that the unit tests can check them. */
import type { MsgHdrs } from "nats";
import { DLQ_HEADERS } from "../worker/dead-letters.ts";

/** What `list` shows of one dead letter: its place in the dead-letter stream and its Dlq-* headers. */
export interface DeadLetterSummary {
  readonly seq: number;
  /** When it was stored in the dead-letter stream. */
  readonly time: Date;
  readonly reason: string | undefined;
  readonly detail: string | undefined;
  readonly stream: string | undefined;
  readonly streamSeq: number | undefined;
  readonly subject: string | undefined;
  readonly deliveries: number | undefined;
  readonly msgId: string | undefined;
}

/** Reads the Dlq-* headers; a header that is missing (a message put there by hand) is undefined. */
export function summarize(
  seq: number,
  time: Date,
  headers: MsgHdrs | undefined,
): DeadLetterSummary {
  // MsgHdrs.get answers "" for a missing header.
  const get = (name: string) => headers?.get(name) || undefined;
  const int = (name: string) => {
    const text = get(name);
    return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
  };
  return {
    seq,
    time,
    reason: get(DLQ_HEADERS.reason),
    detail: get(DLQ_HEADERS.detail),
    stream: get(DLQ_HEADERS.stream),
    streamSeq: int(DLQ_HEADERS.streamSeq),
    subject: get(DLQ_HEADERS.subject),
    deliveries: int(DLQ_HEADERS.deliveries),
    msgId: get(DLQ_HEADERS.msgId),
  };
}

/** `text` cut to `max` characters, an ellipsis marking the cut. */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The columns of `list`, title and width; a negative width aligns right. */
const COLUMNS = [
  ["SEQ", -6],
  ["DEAD-LETTERED", 20],
  ["REASON", 16],
  ["DETAIL", 40],
  ["SOURCE", 16],
  ["DELIVERIES", -10],
  ["MSG-ID", 0],
] as const;
const DETAIL_WIDTH = 40;

/** Fixed-width columns, so that a list reads as a table. */
function columns(cells: readonly string[]): string {
  return cells
    .map((cell, i) => {
      const width = COLUMNS[i]?.[1] ?? 0;
      return width < 0 ? cell.padStart(-width) : cell.padEnd(width);
    })
    .join("  ")
    .trimEnd();
}

export const LIST_HEADER = columns(COLUMNS.map(([title]) => title));

/** One line of `list`: `-` stands for a missing header. */
export function formatListLine(d: DeadLetterSummary): string {
  return columns([
    String(d.seq),
    d.time.toISOString().replace(/\.\d+Z$/, "Z"),
    d.reason ?? "-",
    shorten(d.detail ?? "-", DETAIL_WIDTH),
    d.stream === undefined ? "-" : `${d.stream}:${d.streamSeq ?? "?"}`,
    d.deliveries === undefined ? "-" : String(d.deliveries),
    d.msgId ?? "-",
  ]);
}

/** The last line of `list`. */
export function formatCount(count: number, dlqStream: string): string {
  if (count === 0) return `no dead letters in ${dlqStream}`;
  return `${count} dead letter${count === 1 ? "" : "s"} in ${dlqStream}`;
}

/** One line of `list --json`: every field, the detail in full, the time in ISO 8601. */
export function formatJsonLine(d: DeadLetterSummary): string {
  return JSON.stringify({ ...d, time: d.time.toISOString() });
}

/**
 * The JetStream message id of a replay. It is the same every time the same dead letter is
 * replayed, so that running replay again after a crash between the publish and the delete is
 * refused as a duplicate (within the main stream's duplicate window) instead of publishing twice.
 */
export function replayMsgId(dlqStream: string, seq: number): string {
  return `replay:${dlqStream}:${seq}`;
}
