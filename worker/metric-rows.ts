import { runToEnd } from "../shared/cooperative.ts";
import type { Envelope } from "../shared/envelope.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { seriesRowKeys } from "../shared/series-identity.ts";
import { measurementTimeMs } from "../shared/timestamp.ts";

/** One row of the `metrics` table. */
export interface MetricRow {
  /**
   * The row's identity, unique in the table: `<message id>/<index in the message>` for the JSON
   * API, a digest of the series and timestamp for the agent protocols (`shared/series-identity.ts`).
   * A redelivered message, or an agent's retried batch, yields the same keys, so storing it again
   * adds nothing.
   */
  readonly dedupKey: string;
  readonly name: string | null;
  readonly value: number;
  /** When the metric was measured: its own timestamp, else when its request was received. */
  readonly timeMs: number;
  readonly receivedMs: number;
  /** The tags as a JSON object (`{}` when there were none). */
  readonly tags: string;
  /** The metric exactly as sent, as JSON. */
  readonly metric: string;
  readonly msgId: string;
}

/**
 * The rows of a message's metrics. The work that depends only on a series is done once for all
 * its points: its part of the row key's digest, and its tags' JSON (the points of a series, or
 * of a version 3 group, share one tags object).
 */
export function rowsOfEnvelope(envelope: Envelope): MetricRow[] {
  const { id, receivedAt, key, metrics } = envelope;
  const seriesKeys = key === "series" ? runToEnd(seriesRowKeys(metrics, receivedAt)) : undefined;
  const tagsJson = new WeakMap<object, string>();
  const tagsOf = (metric: Metric) => {
    if (metric.tags === undefined) return "{}";
    let json = tagsJson.get(metric.tags);
    if (json === undefined) {
      json = JSON.stringify(metric.tags);
      tagsJson.set(metric.tags, json);
    }
    return json;
  };
  return metrics.map((metric, index) => ({
    dedupKey: seriesKeys?.[index] ?? `${id}/${index}`,
    name: metric.name ?? null,
    value: metric.value,
    timeMs: measurementTimeMs(metric.timestamp, receivedAt),
    receivedMs: receivedAt,
    tags: tagsOf(metric),
    metric: JSON.stringify(metric),
    msgId: id,
  }));
}
