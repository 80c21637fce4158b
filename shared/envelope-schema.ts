import { Type, type Static } from "@sinclair/typebox";
import { REQUEST_LIMITS } from "./limits.ts";
import { Metric } from "./metric-schema.ts";

/**
 * Version of the message envelope. A worker refuses (dead-letters) any other version, so a
 * change to the envelope's meaning must come with a new number and a worker that reads it.
 */
export const ENVELOPE_VERSION = 1;

/** What one accepted request becomes in the stream: its metrics, receive time and message id. */
export const Envelope = Type.Object(
  {
    v: Type.Literal(ENVELOPE_VERSION),
    /** The JetStream message id (`Nats-Msg-Id`): the request's `Idempotency-Key` or a new id. */
    id: Type.String({ minLength: 1, maxLength: REQUEST_LIMITS.idempotencyKeyLength }),
    /** When the edge received the request, in milliseconds since the epoch. */
    receivedAt: Type.Integer({ minimum: 0 }),
    // By reference, so that ajv compiles the metric schema once for both validators.
    metrics: Type.Array(Type.Unsafe<Metric>({ $ref: Metric.$id }), {
      minItems: 1,
      maxItems: REQUEST_LIMITS.metricsPerRequest,
    }),
  },
  { additionalProperties: false },
);
export type Envelope = Static<typeof Envelope>;
