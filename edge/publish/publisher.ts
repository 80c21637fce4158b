import {
  headers as natsHeaders,
  NatsError,
  type JetStreamClient,
  type NatsConnection,
  type PubAck,
} from "nats";
import { maxPayloadOf, type ConnectionProvider } from "../../shared/nats-connection.ts";
import { ApiError } from "../http/errors.ts";
import { natsErrorKind } from "../../shared/nats-errors.ts";

/** What JetStream said about a stored message. */
export interface PublishReceipt {
  readonly stream: string;
  readonly seq: number;
  /** True when the stream already held a message with this id (a retry inside its window). */
  readonly duplicate: boolean;
}

export interface OutgoingMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Becomes `Nats-Msg-Id`, by which JetStream drops a repeated message. */
  readonly msgId: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Stores a message durably in JetStream; resolves only once the stream acknowledged it. */
export interface Publisher {
  publish(message: OutgoingMessage): Promise<PublishReceipt>;
  /** The largest message the broker takes (its `max_payload`), learned from the connection. */
  maxMessageBytes(): Promise<number>;
}

export function createJetStreamPublisher(
  connections: ConnectionProvider,
  options: { timeoutMs: number },
): Publisher {
  async function connection() {
    try {
      return await connections.get();
    } catch (err) {
      throw new ApiError("nats_unavailable", "The message broker cannot be reached.", {
        cause: err,
      });
    }
  }
  // One JetStream client per connection: making one per publish cost ~3% of the CPU per request.
  const clients = new WeakMap<NatsConnection, JetStreamClient>();
  const jetstreamOf = (nc: NatsConnection) => {
    let js = clients.get(nc);
    if (!js) clients.set(nc, (js = nc.jetstream()));
    return js;
  };

  return {
    async maxMessageBytes() {
      return maxPayloadOf(await connection());
    },
    async publish(message) {
      const nc = await connection();
      const maxPayload = maxPayloadOf(nc);
      if (message.data.byteLength > maxPayload) {
        throw new ApiError(
          "body_too_large",
          `The request's metrics take ${message.data.byteLength} bytes as a message; the broker accepts at most ${maxPayload}.`,
        );
      }
      const h = natsHeaders();
      for (const [key, value] of Object.entries(message.headers ?? {})) h.set(key, value);
      let ack: PubAck;
      try {
        ack = await jetstreamOf(nc).publish(message.subject, message.data, {
          msgID: message.msgId,
          headers: h,
          timeout: options.timeoutMs,
        });
      } catch (err) {
        throw publishError(err);
      }
      return receiptOf(ack);
    },
  };
}

/**
 * What a PubAck proves. A clustered nats-server 2.10 answers a message id that its stream leader
 * has proposed but not stored with `"duplicate": true` and sequence 0, and goes on answering so
 * for the whole duplicate window when a leader change dropped that proposal, though the stream
 * never stores the message (nats-server 2.11 clears such ids on a leader change). Only a
 * sequence proves the message is in the stream; without one the outcome is unknown, as after a
 * timeout, and a retry with the same message id is what settles it.
 */
export function receiptOf(ack: Pick<PubAck, "stream" | "seq" | "duplicate">): PublishReceipt {
  if (!(ack.seq >= 1)) {
    throw new ApiError(
      "publish_timeout",
      "The broker has not confirmed that an earlier copy of this message is stored; retry it unchanged.",
    );
  }
  return {
    stream: ack.stream,
    seq: ack.seq,
    // The server leaves the field out when it is false.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-boolean-literal-compare
    duplicate: ack.duplicate === true,
  };
}

/** Maps what a failed publish threw to the API's errors; every one of them is retryable. */
export function publishError(err: unknown): ApiError {
  const kind = err instanceof NatsError ? natsErrorKind(err) : "other";
  switch (kind) {
    // JetStream refuses a message when the stream is at a limit and its discard policy is "new".
    case "stream_full":
      return new ApiError("stream_full", "The stream is full; retry after the backlog drains.", {
        cause: err,
      });
    case "timeout":
      return new ApiError(
        "publish_timeout",
        "The broker did not acknowledge the message in time.",
        { cause: err },
      );
    // The server's store cannot take it: its disk is full, or JetStream's storage limit is
    // reached. Not stored, like stream_full, but what frees room is an operator, not the worker.
    case "insufficient_resources":
      return new ApiError("storage_full", "The broker's storage is full; retry later.", {
        cause: err,
      });
    // No stream listens on the subject.
    case "no_responders":
      return new ApiError("stream_unavailable", "No stream takes these metrics yet.", {
        cause: err,
      });
    default:
      return new ApiError("nats_unavailable", "The message broker did not take the message.", {
        cause: err,
      });
  }
}
