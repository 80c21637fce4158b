import { headers as natsHeaders, type JetStreamClient, type JsMsg, type MsgHdrs } from "nats";
import type { Config } from "../shared/config.ts";
import { deadLetterSubject } from "../shared/stream-setup.ts";

/**
 * Why a message went to the dead-letter stream: it can never be stored, ran out of tries, or
 * (`rejected`) the store refused it for good — a remote-write receiver's 4xx, its answer the
 * detail.
 */
export type DeadLetterReason =
  "undecodable" | "unknown_version" | "invalid_envelope" | "max_deliver" | "rejected";

/** Headers a dead-lettered message carries besides the original ones. */
export const DLQ_HEADERS = {
  reason: "Dlq-Reason",
  detail: "Dlq-Detail",
  stream: "Dlq-Stream",
  streamSeq: "Dlq-Stream-Seq",
  subject: "Dlq-Subject",
  deliveries: "Dlq-Deliveries",
  /** The message's `Nats-Msg-Id` in the source stream. */
  msgId: "Dlq-Msg-Id",
} as const;

export type DeadLetterSender = (
  msg: JsMsg,
  reason: DeadLetterReason,
  detail: string,
) => Promise<void>;

/** What the dead-letter stream needs to know of a message, wherever it was read from. */
export interface Letter {
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  readonly subject: string;
  readonly stream: string;
  readonly streamSeq: number;
  readonly deliveries: number;
}

/**
 * Publishes a copy of a message to the dead-letter stream: its body unchanged, its headers, and
 * headers saying why, from where and after how many deliveries. Its message id there is its place
 * in the source stream, so sending the same message twice (a crash before it was terminated)
 * keeps one copy.
 */
export function createDeadLetterPublisher(
  js: JetStreamClient,
  stream: Config["stream"],
): (letter: Letter, reason: DeadLetterReason, detail: string) => Promise<void> {
  return async (letter, reason, detail) => {
    const h = natsHeaders();
    // The original headers come along but for NATS's own: in the dead-letter stream the
    // message id is the message's place in its source stream (set below), the original kept as
    // Dlq-Msg-Id, and a Nats-Expected-* header would make the dead-letter stream refuse it.
    for (const [key, values] of letter.headers ?? []) {
      const lower = key.toLowerCase();
      if (lower === "nats-msg-id" && values[0] !== undefined) h.set(DLQ_HEADERS.msgId, values[0]);
      if (lower.startsWith("nats-")) continue;
      for (const value of values) h.append(key, value);
    }
    h.set(DLQ_HEADERS.reason, reason);
    // Header values are one line of visible text.
    h.set(DLQ_HEADERS.detail, detail.replace(/[^\x20-\x7e]/g, " ").slice(0, 512));
    h.set(DLQ_HEADERS.stream, letter.stream);
    h.set(DLQ_HEADERS.streamSeq, String(letter.streamSeq));
    h.set(DLQ_HEADERS.subject, letter.subject);
    h.set(DLQ_HEADERS.deliveries, String(letter.deliveries));
    await js.publish(deadLetterSubject(stream, reason), letter.data, {
      headers: h,
      msgID: `${letter.stream}:${letter.streamSeq}`,
    });
  };
}

/** Dead-letters a message as the consumer delivered it. */
export function createDeadLetterSender(
  js: JetStreamClient,
  stream: Config["stream"],
): DeadLetterSender {
  const publish = createDeadLetterPublisher(js, stream);
  return (msg, reason, detail) =>
    publish(
      {
        data: msg.data,
        headers: msg.headers,
        subject: msg.subject,
        stream: msg.info.stream,
        streamSeq: msg.info.streamSequence,
        deliveries: msg.info.deliveryCount,
      },
      reason,
      detail,
    );
}
