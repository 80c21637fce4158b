/**
 * What the agent protocols (InfluxDB line protocol, OTLP, Prometheus remote write) share once
 * their bodies are turned into metrics: the same schema and size limit as the JSON API, and
 * publishing keyed by series, so that an agent's retried batch adds nothing.
 */
import type { Authenticator } from "./auth.ts";
import { encodeEnvelope, ENVELOPE_VERSION } from "./envelope.ts";
import { ApiError, type ErrorDetail } from "./errors.ts";
import { REQUEST_LIMITS } from "./limits.ts";
import type { Logger } from "./logger.ts";
import type { Metric } from "./metric-schema.ts";
import type { Publisher } from "./publisher.ts";
import { seriesMessageId, seriesRowKey } from "./series-identity.ts";
import { toDetails, validateMetric } from "./validators.ts";

/** The problems of one refused metric, by its position among the request's points. */
export interface RefusedMetric {
  readonly index: number;
  readonly details: readonly ErrorDetail[];
}

export interface CheckedMetrics {
  /** The metrics that passed, in the request's order. */
  readonly valid: readonly Metric[];
  readonly refused: readonly RefusedMetric[];
}

/**
 * Checks each metric a protocol's point became against the Metric schema and the per-metric
 * size limit, as the JSON API does. Every metric is checked on its own, so that a protocol can
 * name the first bad point (line protocol) or accept the others (OTLP's partial success).
 */
export function checkMetrics(candidates: readonly unknown[]): CheckedMetrics {
  const valid: Metric[] = [];
  const refused: RefusedMetric[] = [];
  candidates.forEach((candidate, index) => {
    if (!validateMetric(candidate)) {
      refused.push({ index, details: toDetails(index, validateMetric.errors ?? []) });
      return;
    }
    const size = Buffer.byteLength(JSON.stringify(candidate));
    if (size > REQUEST_LIMITS.metricBytes) {
      const message = `is ${size} bytes as JSON; the limit is ${REQUEST_LIMITS.metricBytes}`;
      refused.push({ index, details: [{ index, path: "", message }] });
      return;
    }
    valid.push(candidate);
  });
  return { valid, refused };
}

export interface SeriesReceipt {
  /** JetStream messages the metrics were published as. */
  readonly messages: number;
  /** Of those, the ones JetStream already held (an agent's retry inside the duplicate window). */
  readonly duplicates: number;
}

/** The envelope's own bytes around the metrics: version, the message id, receive time, key. */
const ENVELOPE_OVERHEAD_BYTES = 512;

/**
 * Publishes valid metrics, each of which has a name and a timestamp, keyed by series, and
 * resolves once JetStream acknowledged every message. A batch larger than one broker message
 * is split into several; if any of them fails the whole request fails (retryable), and the
 * agent's retry adds only what was missing, since every row's key is its series and timestamp.
 */
export async function publishSeries(
  publisher: Publisher,
  message: {
    readonly subject: string;
    readonly metrics: readonly Metric[];
    readonly receivedAt: number;
    readonly headers?: Readonly<Record<string, string>>;
  },
): Promise<SeriesReceipt> {
  const { metrics, receivedAt } = message;
  if (metrics.length === 0) return { messages: 0, duplicates: 0 };
  const envelopeOf = (part: readonly Metric[]) => {
    const id = seriesMessageId(part.map((metric) => seriesRowKey(metric, receivedAt)));
    const data = encodeEnvelope({
      v: ENVELOPE_VERSION,
      id,
      receivedAt,
      key: "series",
      metrics: [...part],
    });
    return { id, data };
  };
  const maxPayload = await publisher.maxMessageBytes();
  // The usual batch fits one message, and is serialised once; only a larger one is measured
  // metric by metric and split.
  const whole = envelopeOf(metrics);
  const envelopes =
    whole.data.byteLength <= maxPayload && metrics.length <= REQUEST_LIMITS.metricsPerRequest
      ? [whole]
      : split(metrics, maxPayload - ENVELOPE_OVERHEAD_BYTES).map(envelopeOf);

  const receipts = await Promise.all(
    envelopes.map(({ id, data }) =>
      publisher.publish({
        subject: message.subject,
        data,
        msgId: id,
        headers: message.headers ?? {},
      }),
    ),
  );
  return {
    messages: receipts.length,
    duplicates: receipts.filter((receipt) => receipt.duplicate).length,
  };
}

/** Consecutive parts of at most `maxBytes` of metrics as JSON, and at most a request's count. */
function split(metrics: readonly Metric[], maxBytes: number): Metric[][] {
  const parts: Metric[][] = [];
  let part: Metric[] = [];
  let partBytes = 0;
  for (const metric of metrics) {
    // One comma between metrics; checkMetrics bounds one metric far below any broker's limit.
    const size = Buffer.byteLength(JSON.stringify(metric)) + 1;
    if (
      part.length > 0 &&
      (partBytes + size > maxBytes || part.length === REQUEST_LIMITS.metricsPerRequest)
    ) {
      parts.push(part);
      part = [];
      partBytes = 0;
    }
    part.push(metric);
    partBytes += size;
  }
  parts.push(part);
  return parts;
}

/** The refusal for a request holding more points than any request may. */
export function tooManyPoints(count: number): ApiError {
  const max = REQUEST_LIMITS.metricsPerRequest;
  return new ApiError(
    "too_many_metrics",
    `The request holds ${count} points; send at most ${max} per request.`,
  );
}

/** What every agent protocol's handler is made with (the JSON API's options, less CORS). */
export interface AgentHandlerOptions {
  readonly publisher: Publisher;
  readonly authenticate: Authenticator;
  /** The protocol's own subject (`agentSubject`); the stream must cover it. */
  readonly subject: string;
  readonly logger: Logger;
  /** The receive time; defaults to `Date.now`. */
  readonly now?: () => number;
}
