/**
 * Every limit the service enforces, in one place. The limits table in docs/api.md repeats these
 * numbers; the schemas in `metric-schema.ts` and `envelope.ts` and the body reader use them.
 */

/** Bounds on the parts of one metric, enforced by the Metric schema. */
export const METRIC_BOUNDS = {
  nameLength: 256,
  tagCount: 64,
  tagKeyLength: 128,
  tagValueLength: 256,
  /** Length of any other string inside a metric, and of any property name. */
  stringLength: 4096,
  /** Items of any array inside a metric. */
  arrayItems: 1000,
  /** Properties of any object inside a metric (the metric itself included). */
  objectProperties: 100,
  /** Levels of arrays and objects inside a metric's extra fields. */
  extraDepth: 8,
  /** 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, in milliseconds since the epoch. */
  minTimestampMs: 0,
  maxTimestampMs: 253_402_300_799_999,
} as const;

/** Bounds on one request. */
export const REQUEST_LIMITS = {
  /**
   * Decompressed body size. The published message must also fit the NATS server's
   * `max_payload` (1 MiB by default); a body that does not is refused with 413 as well.
   */
  bodyBytes: 1024 * 1024,
  /** Metrics in one request. */
  metricsPerRequest: 10_000,
  /** One metric, serialised as JSON. */
  metricBytes: 64 * 1024,
  /** Length of an `Idempotency-Key` (visible ASCII only). */
  idempotencyKeyLength: 128,
  /** Entries in an `invalid_metrics` answer's `details`; the message says when more were cut. */
  errorDetails: 100,
} as const;

/**
 * Bounds on what one request becomes. A request's points are counted above; these bound their
 * bytes: every metric as the worker stores it (as JSON, with all its tags), summed over the
 * request. Tags sent once for many points (an InfluxDB line's tag set, a Prometheus series'
 * labels, an OTLP resource's attributes) are stored once per point, so a small body can
 * become far more: these bounds refuse that (413) while the metrics are being made, before
 * anything is encoded or published. The messages a request is published as total no more than
 * this either, and usually much less: they carry each series once (envelope version 4).
 */
export const EXPANSION_LIMITS = {
  /** The stored metrics' bytes, as a multiple of the decoded body's bytes. */
  bodyMultiple: 64,
  /** What any request may become, whatever its body's size (the multiple counts from here). */
  floorBytes: 1024 * 1024,
  /** What any request may become, whatever the multiple allows. */
  maxBytes: 16 * 1024 * 1024,
} as const;
