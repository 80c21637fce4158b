import { headers as natsHeaders, type JetStreamClient, type JsMsg } from "nats";
import type { Config } from "../shared/config.ts";
import { deadLetterSubject } from "../shared/stream-setup.ts";

/** Why a message went to the dead-letter stream: it can never be stored, or ran out of tries. */
export type DeadLetterReason =
  "undecodable" | "unknown_version" | "invalid_envelope" | "max_deliver";

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

/**
 * Publishes a copy of a message to the dead-letter stream: its body unchanged, its headers, and
 * headers saying why, from where and after how many deliveries. Its message id there is its place
 * in the source stream, so sending the same message twice (a crash before it was terminated)
 * keeps one copy.
 */
export function createDeadLetterSender(
  js: JetStreamClient,
  stream: Config["stream"],
): DeadLetterSender {
  return async (msg, reason, detail) => {
    const h = natsHeaders();
    // The original headers come along, but for the message id: in the dead-letter stream the
    // id is the message's place in its source stream (set below), kept as Dlq-Msg-Id.
    for (const [key, values] of msg.headers ?? []) {
      if (key.toLowerCase() === "nats-msg-id") {
        if (values[0] !== undefined) h.set(DLQ_HEADERS.msgId, values[0]);
        continue;
      }
      for (const value of values) h.append(key, value);
    }
    h.set(DLQ_HEADERS.reason, reason);
    // Header values are one line of visible text.
    h.set(DLQ_HEADERS.detail, detail.replace(/[^\x20-\x7e]/g, " ").slice(0, 512));
    h.set(DLQ_HEADERS.stream, msg.info.stream);
    h.set(DLQ_HEADERS.streamSeq, String(msg.info.streamSequence));
    h.set(DLQ_HEADERS.subject, msg.subject);
    h.set(DLQ_HEADERS.deliveries, String(msg.info.deliveryCount));
    await js.publish(deadLetterSubject(stream, reason), msg.data, {
      headers: h,
      msgID: `${msg.info.stream}:${msg.info.streamSequence}`,
    });
  };
}
