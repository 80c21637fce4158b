import { Type, type Static, type TSchema } from "@sinclair/typebox";
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

/** What a version 2 envelope holds besides its metrics. */
const V2_FRAME = { v: Type.Literal(2), id: MessageId, receivedAt: ReceivedAt, key: RowKey };
const METRICS_A_MESSAGE = { minItems: 1, maxItems: REQUEST_LIMITS.metricsPerRequest };

/** Version 2: what one accepted request became, its metrics as one list. */
export const EnvelopeV2 = Type.Object(
  { ...V2_FRAME, metrics: Type.Array(MetricRef, METRICS_A_MESSAGE) },
  { additionalProperties: false },
);
export type EnvelopeV2 = Static<typeof EnvelopeV2>;

/**
 * A version 2 envelope with its metrics unchecked: the worker checks each metric by its bounds
 * (shared/metric-bounds.ts) and asks the whole schema only when one is outside them.
 */
export const EnvelopeV2Frame = Type.Object(
  { ...V2_FRAME, metrics: Type.Array(Type.Unknown(), METRICS_A_MESSAGE) },
  { additionalProperties: false },
);
export type EnvelopeV2Frame = Static<typeof EnvelopeV2Frame>;

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
 * Version 4, series-keyed messages of the agent protocols (shared/envelope-v4-encoder.ts): each
 * series once, then the points as columns of numbers, so that no object is written or parsed
 * per point. `series` holds what the metrics of a series share — a metric without `value` and
 * (usually) `timestamp` — checked against the Metric schema once per series by the decoder.
 * `points` holds four columns of equal length: the index of the point's series, its time as
 * integer milliseconds, the nanoseconds past that millisecond (0 to 999,999: the time is the
 * RFC 3339 text `rfc3339FromNanos` writes; -1: the time is the number `ms` itself) and its
 * value. A series holding a `timestamp` (a time in any other RFC 3339 text) gives its points that
 * time, and their `ms` and `ns` are 0.
 */
const Column = <T extends TSchema>(item: T) =>
  Type.Array(item, { minItems: 1, maxItems: REQUEST_LIMITS.metricsPerRequest });
export const EnvelopeV4 = Type.Object(
  {
    v: Type.Literal(4),
    id: MessageId,
    receivedAt: ReceivedAt,
    key: Type.Literal("series"),
    series: Column(Type.Record(Type.String(), Type.Unknown())),
    points: Type.Object(
      {
        series: Column(Type.Integer({ minimum: 0, maximum: REQUEST_LIMITS.metricsPerRequest - 1 })),
        ms: Column(Type.Number()),
        ns: Column(Type.Integer({ minimum: -1, maximum: 999_999 })),
        value: Column(Type.Number()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type EnvelopeV4 = Static<typeof EnvelopeV4>;

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
