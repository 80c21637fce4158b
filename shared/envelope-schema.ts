import { Type, type Static } from "@sinclair/typebox";
import { REQUEST_LIMITS } from "./limits.ts";
import { Metric, Tags } from "./metric-schema.ts";

/**
 * How the worker makes each stored row's unique key:
 * - `message`: `<message id>/<index>` — the JSON API, where the client's `Idempotency-Key` (or
 *   the id the edge made) names the request;
 * - `series`: the metric's name, tags and timestamp — the agent protocols, whose clients retry
 *   whole batches without any key, and whose own databases deduplicate the same way.
 */
export const RowKey = Type.Union([Type.Literal("message"), Type.Literal("series")]);
export type RowKey = Static<typeof RowKey>;

/** The JetStream message id (`Nats-Msg-Id`). */
const MessageId = Type.String({ minLength: 1, maxLength: REQUEST_LIMITS.idempotencyKeyLength });
/** When the edge received the request, in milliseconds since the epoch. */
const ReceivedAt = Type.Integer({ minimum: 0 });
// By reference, so that ajv compiles the metric schema once for every validator.
const MetricRef = Type.Unsafe<Metric>({ $ref: Metric.$id });

/** Version 2: what one accepted request became, its metrics as one list. */
export const EnvelopeV2 = Type.Object(
  {
    v: Type.Literal(2),
    id: MessageId,
    receivedAt: ReceivedAt,
    key: RowKey,
    metrics: Type.Array(MetricRef, { minItems: 1, maxItems: REQUEST_LIMITS.metricsPerRequest }),
  },
  { additionalProperties: false },
);
export type EnvelopeV2 = Static<typeof EnvelopeV2>;

/**
 * Consecutive metrics of a message that share tags: each metric stands for itself with the
 * group's `tags` in front of its own (its own taking the place of a shared one of the same
 * key). A group without `tags` holds metrics as they are.
 */
export const MetricGroup = Type.Object(
  {
    tags: Type.Optional(Tags),
    metrics: Type.Array(MetricRef, { minItems: 1, maxItems: REQUEST_LIMITS.metricsPerRequest }),
  },
  { additionalProperties: false },
);
export type MetricGroup = Static<typeof MetricGroup>;

/**
 * Version 3: the metrics in groups, in the request's order, so that tags shared by many points
 * (an InfluxDB line's tag set, a series' labels, an OTLP resource's attributes) travel once.
 * The metrics of all groups together are at most a request's; the decoder checks that, and
 * each metric's tags once merged.
 */
export const EnvelopeV3 = Type.Object(
  {
    v: Type.Literal(3),
    id: MessageId,
    receivedAt: ReceivedAt,
    key: RowKey,
    groups: Type.Array(MetricGroup, {
      minItems: 1,
      maxItems: REQUEST_LIMITS.metricsPerRequest,
    }),
  },
  { additionalProperties: false },
);
export type EnvelopeV3 = Static<typeof EnvelopeV3>;

/**
 * A message as the worker stores it, whichever version it was written in: its metrics in
 * order, each whole (its tags all its own), and how its rows are keyed.
 */
export interface Envelope {
  readonly id: string;
  readonly receivedAt: number;
  readonly key: RowKey;
  readonly metrics: readonly Metric[];
}
