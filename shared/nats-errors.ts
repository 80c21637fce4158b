/**
 * What a NATS or JetStream failure means, recognised in one place: nats.js reports a request's
 * failure by a string `code`, the JetStream API's by a numeric `api_error.err_code`, and a
 * refused publish sometimes only by its message. Everything that reacts to a NATS error asks
 * `natsErrorKind` instead of comparing codes or matching messages itself.
 */
import { ErrorCode } from "nats";

export type NatsErrorKind =
  /** No answer within the request's timeout. */
  | "timeout"
  /** Nobody listens on the subject: for a publish, no stream takes it. */
  | "no_responders"
  | "stream_not_found"
  | "consumer_not_found"
  /** No message at the sequence asked for (never stored, or deleted). */
  | "message_not_found"
  /** The stream is at a limit (messages, bytes) and its discard policy refuses new messages. */
  | "stream_full"
  /** The server or account has no storage (or memory) left for the stream. */
  | "insufficient_resources"
  /** A publish's expected last sequence did not match the stream's. */
  | "wrong_last_sequence"
  /** The message is larger than the server's or the stream's maximum. */
  | "message_too_large"
  /** Anything else: a NATS error this service has no special answer for, or not a NATS error. */
  | "other";

/** JetStream's API error codes (`api_error.err_code`) for the kinds above. */
const API_CODES: ReadonlyMap<number, NatsErrorKind> = new Map([
  [10014, "consumer_not_found"],
  // JSInsufficientResourcesErr: the server's JetStream storage limit reached.
  [10023, "insufficient_resources"],
  [10037, "message_not_found"],
  [10047, "insufficient_resources"],
  [10054, "message_too_large"],
  [10059, "stream_not_found"],
  [10071, "wrong_last_sequence"],
  // JSStreamStoreFailedF: how a stream at its limits with discard "new" refuses a publish.
  [10077, "stream_full"],
]);

/** nats.js's own codes (`code`) for the kinds above. */
const CLIENT_CODES: ReadonlyMap<string, NatsErrorKind> = new Map([
  [ErrorCode.Timeout, "timeout"],
  [ErrorCode.NoResponders, "no_responders"],
  [ErrorCode.MaxPayloadExceeded, "message_too_large"],
]);

/**
 * Messages for errors that come without a code: a publish refused at a stream's limits says
 * so only in its message on some server versions; a fake or a wrapped error may too.
 */
const MESSAGES: readonly (readonly [RegExp, NatsErrorKind])[] = [
  [/maximum (messages|bytes) exceeded|resource limits exceeded/i, "stream_full"],
  [/insufficient resources/i, "insufficient_resources"],
  [/wrong last sequence/i, "wrong_last_sequence"],
  [/stream not found/i, "stream_not_found"],
  [/consumer not found/i, "consumer_not_found"],
  [/no message found/i, "message_not_found"],
];

/** What a failure of a NATS request, publish or JetStream API call means. */
export function natsErrorKind(err: unknown): NatsErrorKind {
  if (typeof err !== "object" || err === null) return "other";
  const { api_error: apiError, code } = err as {
    api_error?: { err_code?: unknown; description?: string };
    code?: unknown;
  };
  // nats-server 2.10 answers a block write that hit ENOSPC with JSStreamStoreFailedF (10077),
  // the code of a stream at its limits; only the description, the OS's error, tells them apart.
  if (apiError?.err_code === 10077 && /no space left on device/i.test(apiError.description ?? "")) {
    return "insufficient_resources";
  }
  const apiKind =
    typeof apiError?.err_code === "number" ? API_CODES.get(apiError.err_code) : undefined;
  if (apiKind !== undefined) return apiKind;
  const message = err instanceof Error ? err.message : "";
  for (const [pattern, kind] of MESSAGES) if (pattern.test(message)) return kind;
  const clientKind = typeof code === "string" ? CLIENT_CODES.get(code) : undefined;
  return clientKind ?? "other";
}

/** Whether the server says a stream or consumer (or the consumer's stream) does not exist. */
export function isNotFound(err: unknown): boolean {
  const kind = natsErrorKind(err);
  return kind === "stream_not_found" || kind === "consumer_not_found";
}
