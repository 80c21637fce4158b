import { Type, type Static } from "@sinclair/typebox";
import { ENVELOPE_VERSION } from "./envelope-version.ts";
import { REQUEST_LIMITS } from "./limits.ts";
import { Metric } from "./metric-schema.ts";

/**
 * How the worker makes each stored row's unique key:
 * - `message`: `<message id>/<index>` — the JSON API, where the client's `Idempotency-Key` (or
 *   the id the edge made) names the request;
 * - `series`: the metric's name, tags and timestamp — the agent protocols, whose clients retry
 *   whole batches without any key, and whose own databases deduplicate the same way.
 */
export const RowKey = Type.Union([Type.Literal("message"), Type.Literal("series")]);
export type RowKey = Static<typeof RowKey>;

/** What one accepted request becomes in the stream: its metrics, receive time and message id. */
export const Envelope = Type.Object(
  {
    v: Type.Literal(ENVELOPE_VERSION),
    /** The JetStream message id (`Nats-Msg-Id`). */
    id: Type.String({ minLength: 1, maxLength: REQUEST_LIMITS.idempotencyKeyLength }),
    /** When the edge received the request, in milliseconds since the epoch. */
    receivedAt: Type.Integer({ minimum: 0 }),
    key: RowKey,
    // By reference, so that ajv compiles the metric schema once for both validators.
    metrics: Type.Array(Type.Unsafe<Metric>({ $ref: Metric.$id }), {
      minItems: 1,
      maxItems: REQUEST_LIMITS.metricsPerRequest,
    }),
  },
  { additionalProperties: false },
);
export type Envelope = Static<typeof Envelope>;
